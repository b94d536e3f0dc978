"""Settings of photos attached to requests (``OPEN311_MEDIA__*`` once attached to Settings).

A group of its own so that app/settings.py can take it as ``media: MediaSettings``. Every limit
bounds the cost of one upload before the work it guards: ``max_files`` and ``max_file_bytes``
before a byte is parsed, ``max_pixels`` from the image header before any pixel is decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

# Pillow's own decompression-bomb threshold, PIL.Image.MAX_IMAGE_PIXELS (not imported here:
# Pillow is not needed to read settings). Ours may not exceed it, so that our check decides.
PILLOW_MAX_PIXELS = 89_478_485


class S3Settings(BaseModel):
    """An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, R2, ...)."""

    # Empty: AWS S3 itself (the region's endpoint). Otherwise the service's base URL.
    endpoint_url: str = ""
    bucket: str = ""
    region: str = "us-east-1"
    # Empty key id: boto3's own chain (AWS_* environment variables, shared files, the
    # instance or task role).
    access_key_id: str = ""
    secret_access_key: SecretStr = SecretStr("")
    # "path" (bucket in the path) works with every S3-compatible service; AWS prefers
    # "virtual" for new buckets.
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    read_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Attempts per call, the first included (botocore's "standard" retry mode).
    max_attempts: int = Field(default=3, ge=1, le=10)


class MediaSettings(BaseModel):
    """Photos attached to POST requests: accepted files, limits and where they are kept."""

    enabled: bool = True
    backend: Literal["local", "s3"] = "local"
    # The local backend's directory (created when missing).
    local_dir: Path = Path("media")
    s3: S3Settings = Field(default_factory=S3Settings)
    # What media_url starts with (no trailing slash), e.g. a CDN in front of the bucket.
    # Empty: "/media" on this server for the local backend (to be made absolute with the
    # server's public URL), the bucket's own URL for S3.
    public_base_url: str = ""
    # Uploaded files: per file, per request and per image (width x height, read from the
    # header before decoding).
    max_file_bytes: int = Field(default=8 << 20, ge=1024, le=256 << 20)
    max_files: int = Field(default=5, ge=1, le=50)
    max_pixels: int = Field(default=50_000_000, ge=1, le=PILLOW_MAX_PIXELS)
    # Stored photos are scaled down to this long edge; thumbnails to thumbnail_size.
    max_dimension: int = Field(default=2560, ge=64, le=16384)
    thumbnail_size: int = Field(default=320, ge=16, le=2048)
    jpeg_quality: int = Field(default=85, ge=50, le=95)
    # Accept HEIC/HEIF (decoded by libheif + libde265 through pi-heif). Off: refused as an
    # unsupported type, and that decoder is never reached by an upload.
    heic: bool = True
    # Images decoded at once per server process (each in a worker thread); more wait their
    # turn, so photo uploads never take every core from the other callers.
    max_concurrent: int = Field(default=2, ge=1, le=64)

    @model_validator(mode="after")
    def _consistent(self) -> MediaSettings:
        if self.enabled and self.backend == "s3" and not self.s3.bucket:
            raise ValueError("media.backend is s3 but media.s3.bucket is empty")
        if self.thumbnail_size > self.max_dimension:
            raise ValueError("media.thumbnail_size exceeds media.max_dimension")
        if self.public_base_url.endswith("/"):
            raise ValueError("media.public_base_url must not end with a slash")
        return self
