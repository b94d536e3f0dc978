"""Photos attached to service requests: checked, re-encoded without metadata, and stored.

No database, domain or HTTP code here: the API calls ``images.PhotoProcessor.process`` on the
uploaded files, ``photos.store_photos`` with the result, and maps ``errors.InvalidMedia`` (a 400
GeoReport error) and ``errors.ObjectStoreError`` to its answers. Nothing is imported here, so
that ``app.media.settings`` stays cheap to import (Pillow and boto3 load with their modules).
"""
