"""Images made for the tests with Pillow (no binary fixtures but one tiny HEIC file)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageCms

RED = (220, 30, 30)
BLUE = (30, 30, 220)
DATA = Path(__file__).parent / "data"
# tests/media/data/gps-exif.heic (790 bytes): 64 x 32, left half RED, right half BLUE, EXIF
# with GPS (43°39'1.5"N 79°23'2.5"W), Make "TestPhoneMaker", Model "TestPhone 15", Artist
# "Jane Owner" and Orientation 6. pi-heif only decodes, so it was made once with pillow-heif
# (which bundles the x265 encoder):
#   img = Image.new("RGB", (64, 32), RED); img.paste(BLUE, (32, 0, 64, 32))
#   img.save("gps-exif.heic", exif=private_exif(orientation=6), quality=50)
HEIC_FILE = DATA / "gps-exif.heic"
# Strings of the private EXIF/XMP/comment fields: none may appear in any output.
PRIVATE = (b"TestPhoneMaker", b"TestPhone 15", b"Jane Owner", b"private-note", b"xmp-secret")


def two_colour(size: tuple[int, int] = (64, 32), mode: str = "RGB") -> Image.Image:
    """Left half RED, right half BLUE (so turns and flips can be seen)."""
    width, height = size
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return image.convert(mode)


def half_transparent() -> Image.Image:
    """The two-colour image with its left quarter fully transparent."""
    image = two_colour(mode="RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 16, 32))
    return image


def private_exif(orientation: int = 1) -> Image.Exif:
    """EXIF with GPS, device and owner fields, as a phone camera writes them."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhoneMaker"
    exif[ExifTags.Base.Model] = "TestPhone 15"
    exif[ExifTags.Base.Artist] = "Jane Owner"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (43.0, 39.0, 1.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (79.0, 23.0, 2.5)
    return exif


def srgb_icc() -> bytes:
    """An ICC profile (sRGB) to embed."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """The image encoded by Pillow in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(image: Image.Image | None = None, **params: Any) -> bytes:
    """A JPEG of ``image`` (the two-colour one by default)."""
    return encode(image or two_colour(), "JPEG", quality=95, **params)


def png(image: Image.Image | None = None, **params: Any) -> bytes:
    """A PNG of ``image`` (the two-colour one by default)."""
    return encode(image or two_colour(), "PNG", **params)


def webp(image: Image.Image | None = None, **params: Any) -> bytes:
    """A WebP of ``image`` (the two-colour one by default)."""
    return encode(image or two_colour(), "WEBP", **params)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height 1-bit pixels, with one tiny compressed row.

    A decompression bomb's shape: the header promises billions of pixels from a few bytes.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is rewritten to declare width x height."""
    data = bytearray(jpeg(two_colour((16, 16))))
    sof = data.index(b"\xff\xc0")
    # SOF0: marker, length (2), precision (1), height (2), width (2).
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def webp_with_size(width: int, height: int) -> bytes:
    """A real small lossless WebP whose VP8L header is rewritten to declare width x height."""
    data = bytearray(webp(two_colour((16, 16)), lossless=True))
    start = data.index(b"VP8L") + 8  # chunk type, chunk size, then the 0x2f signature
    assert data[start] == 0x2F
    # 14 bits width - 1, 14 bits height - 1, then the alpha and version bits (kept).
    bits = int.from_bytes(data[start + 1 : start + 5], "little") & ~((1 << 28) - 1)
    bits |= (width - 1) | ((height - 1) << 14)
    data[start + 1 : start + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def decoded(data: bytes) -> Image.Image:
    """The image in ``data``, fully decoded."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def close_to(pixel: Any, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    """Whether an RGB(A) pixel is within ``tolerance`` of ``colour`` on every channel."""
    return all(abs(int(p) - c) <= tolerance for p, c in zip(pixel[:3], colour, strict=True))
