"""What a photo costs a POST (issue 18): POST requests.json with a 2 MB photo ÷ without.

Information, no target: the photo is told by its content, decoded in full, scaled to
``media.max_dimension``, re-encoded with a thumbnail and written to the object store (the
local directory); a POST without one is a single INSERT. Sequential POSTs on one connection,
with and without interleaved, so both see the same machine; medians of the latencies.
"""

from __future__ import annotations

import io
import random
import statistics
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any

from bench.common import log

PHOTO_BYTES = 2 << 20
# A phone camera's 12 MP frame.
PHOTO_SIZE = (4000, 3000)


def photo(target: int = PHOTO_BYTES) -> bytes:
    """A 12 MP JPEG of about ``target`` bytes (a smooth scene with fine grain, like a photo)."""
    from PIL import Image, ImageFilter

    rng = random.Random(18)  # noqa: S311 - test data
    small = Image.frombytes(
        "RGB", (80, 60), bytes(rng.getrandbits(8) for _ in range(80 * 60 * 3))
    ).filter(ImageFilter.GaussianBlur(2))
    scene = small.resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(PHOTO_SIZE, 24).convert("RGB")
    image = Image.blend(scene, grain, 0.12)
    best = b""
    low, high = 30, 98
    while low <= high:  # the quality whose size comes closest to the target from below
        quality = (low + high) // 2
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        data = buffer.getvalue()
        if len(data) <= target:
            best, low = data, quality + 1
        else:
            high = quality - 1
    assert best, "no quality gives a photo under the target size"  # noqa: S101 - bench setup
    return best


def _multipart(fields: Sequence[tuple[str, str]], data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="media"; '
        f'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _post(url: str, body: bytes, content_type: str) -> float:
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"POST answered {answer.status}")
    return time.perf_counter() - started


def measure(
    url: str, fields: Sequence[tuple[str, str]], points: Sequence[tuple[float, float]], runs: int
) -> dict[str, Any]:
    """Median latency (ms) of POSTs with and without a 2 MB photo, and their ratio."""
    data = photo()
    log(f"  photo: {len(data):,} bytes, {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG; {runs} POSTs each")
    with_photo: list[float] = []
    without: list[float] = []
    for i in range(runs + 1):
        lat, lon = points[i % len(points)]
        form = [*fields, ("lat", repr(lat)), ("long", repr(lon))]
        plain = urllib.parse.urlencode(form).encode()
        seconds = _post(url, plain, "application/x-www-form-urlencoded")
        body, content_type = _multipart(form, data)
        photo_seconds = _post(url, body, content_type)
        if i:  # the first pair warms up (Pillow's import, the first store directory)
            without.append(seconds)
            with_photo.append(photo_seconds)
    with_ms = statistics.median(with_photo) * 1000
    without_ms = statistics.median(without) * 1000
    return {
        "photo_bytes": len(data),
        "photo_pixels": PHOTO_SIZE[0] * PHOTO_SIZE[1],
        "runs": runs,
        "with_ms": round(with_ms, 2),
        "without_ms": round(without_ms, 2),
        "ratio": with_ms / without_ms if without_ms else None,
    }
