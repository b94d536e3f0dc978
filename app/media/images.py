"""Uploaded photos: identified by content, bounded, decoded, re-encoded without metadata.

The steps, each cheaper than the next, so that a hostile file costs little:

1. count and size of the files (``max_files``, ``max_file_bytes``): no byte parsed yet;
2. type from the magic bytes: JPEG, PNG, WebP, HEIC (a file's name and declared content type
   are never read); anything else is refused, GIF, SVG, PDF and text included;
3. the header is parsed by that format's decoder only, and the pixel count it declares is
   checked (``max_pixels``) before one pixel is decoded; Pillow's decompression-bomb warning
   and error are the same refusal;
4. the pixels are decoded in full: a truncated or malformed file, or one that only starts
   like an image (HTML behind JPEG magic bytes), is refused;
5. the EXIF orientation is applied, the colours are converted to sRGB from an embedded ICC
   profile, the image is scaled to ``max_dimension`` and copied into a new image that
   carries no metadata at all, then encoded anew with a thumbnail.

The output is JPEG, or PNG when the image really has transparency. JPEG is what every client
of a GeoReport server shows (browsers, mobile apps, city back-office systems, e-mail); WebP
and HEIC are not (HEIC shows almost nowhere, older apps lack WebP), and PNG photos would be
several times larger. Nothing of the upload but its pixels reaches the output: EXIF (GPS,
camera and owner fields, orientation), XMP, IPTC, ICC profiles, comments, PNG text chunks,
extra frames and whatever follows the image data (a ZIP, HTML or script of a polyglot) are
all left behind by construction.

Decoding is CPU work: ``PhotoProcessor`` runs it in worker threads, at most
``max_concurrent`` at once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageCms, ImageOps

from app.media.errors import InvalidMedia, Rejection
from app.media.settings import MediaSettings

ACCEPTED: Final = "JPEG, PNG, WebP or HEIC"
ACCEPTED_WITHOUT_HEIC: Final = "JPEG, PNG or WebP"
# Pillow format names allowed to open each sniffed type (a JPEG with several pictures, as
# some cameras write, is opened by the MPO plugin).
_OPENERS: Final = {"jpeg": ["JPEG", "MPO"], "png": ["PNG"], "webp": ["WEBP"], "heic": ["HEIF"]}
# Major or compatible brands of an ISO-BMFF "ftyp" box that mean HEVC-coded HEIF.
_HEIC_BRANDS: Final = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_THUMBNAIL_QUALITY: Final = 80


@dataclass(frozen=True, slots=True)
class Rendition:
    """One encoded image: the stored photo or its thumbnail."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Photo:
    """An accepted upload: the re-encoded photo and its thumbnail."""

    # What the upload was, by its content: "jpeg", "png", "webp" or "heic".
    source_format: str
    full: Rendition
    thumbnail: Rendition


def sniff(data: bytes) -> str | None:
    """The accepted type the bytes start like ("jpeg", "png", "webp", "heic"), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and _heic_brands(data):
        return "heic"
    return None


def _heic_brands(data: bytes) -> bool:
    size = int.from_bytes(data[:4], "big")
    # The ftyp box: size, "ftyp", major brand, minor version, compatible brands.
    if not 16 <= size <= min(len(data), 256):
        return False
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, size - 3, 4)}
    return bool(brands & _HEIC_BRANDS)


def _looks_like(data: bytes) -> str:
    """A name for a refused type, for the error message (never used to accept anything)."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for prefix, name in (
        (b"gif8", "GIF"),
        (b"%pdf", "PDF"),
        (b"bm", "BMP"),
        (b"ii*\x00", "TIFF"),
        (b"mm\x00*", "TIFF"),
        (b"pk\x03\x04", "ZIP"),
        (b"<svg", "SVG"),
        (b"<?xml", "XML or SVG"),
        (b"<!doctype html", "HTML"),
        (b"<html", "HTML"),
    ):
        if head.startswith(prefix):
            return name
    if data[4:8] == b"ftyp":
        return "AVIF or another ISO media file" if b"avif" in data[8:64] else "ISO media file"
    return "not an image"


def check_count(count: int, settings: MediaSettings) -> None:
    """Refuse more files than one request may carry."""
    if count > settings.max_files:
        raise InvalidMedia(
            Rejection.TOO_MANY_FILES,
            f"media: {count} files sent; at most {settings.max_files} per request.",
        )


def check_file(data: bytes, settings: MediaSettings, *, index: int = 1) -> str:
    """The accepted type of one upload from its size and magic bytes (nothing decoded yet)."""
    where = f"media file {index}"
    if not data:
        raise InvalidMedia(Rejection.EMPTY, f"{where} is empty.")
    if len(data) > settings.max_file_bytes:
        raise InvalidMedia(
            Rejection.TOO_LARGE,
            f"{where} is {len(data)} bytes; at most {settings.max_file_bytes} are accepted.",
        )
    kind = sniff(data)
    if kind is None or (kind == "heic" and not settings.heic):
        accepted = ACCEPTED if settings.heic else ACCEPTED_WITHOUT_HEIC
        found = "HEIC" if kind == "heic" else _looks_like(data)
        raise InvalidMedia(
            Rejection.UNSUPPORTED_TYPE,
            f"{where} is not a {accepted} image (its content is {found}).",
        )
    return kind


def process_photo(data: bytes, settings: MediaSettings, *, index: int = 1) -> Photo:
    """Check, decode and re-encode one upload (CPU-bound: call it in a worker thread)."""
    kind = check_file(data, settings, index=index)
    where = f"media file {index}"
    image = _open(data, kind, settings, where)
    try:
        image = _decode(image, settings, where)
        _orient(image)
        image = _resizable(image)
        # Scaled down first: the colour conversion and the copies below then work on at most
        # max_dimension² pixels, whatever the upload's size. Bicubic: half of Lanczos' time
        # (the largest cost here, ~0.3 s for 12 MP), no visible difference at these ratios.
        image.thumbnail((settings.max_dimension,) * 2, Image.Resampling.BICUBIC, 3.0)
        image = _srgb(image)
        image = _pixels_only(image)
        full = _encode(image, settings.jpeg_quality)
        with image.copy() as thumb:
            thumb.thumbnail((settings.thumbnail_size,) * 2, Image.Resampling.LANCZOS, 2.0)
            return Photo(kind, full, _encode(thumb, _THUMBNAIL_QUALITY))
    finally:
        image.close()


def _open(data: bytes, kind: str, settings: MediaSettings, where: str) -> Image.Image:
    bomb = InvalidMedia(
        Rejection.TOO_MANY_PIXELS,
        f"{where} has more than {settings.max_pixels} pixels (width x height).",
    )
    if kind == "heic":
        # libheif reports the displayed size (after a crop), but decodes the coded image
        # first: a tiny file can code a huge image behind a small crop. Its coded sizes
        # (every "ispe" property) are checked here, before libheif sees the file.
        coded = _heif_coded_pixels(data)
        if coded is None:
            raise _undecodable(where, kind)
        if coded > settings.max_pixels:
            raise bomb
        _register_heif()
    with warnings.catch_warnings():
        # Pillow warns (then refuses at twice its limit) while reading the header.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_OPENERS[kind])
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise bomb from exc
        except Exception as exc:  # Pillow's parsers raise many types on malformed input.
            raise _undecodable(where, kind) from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > settings.max_pixels:
        image.close()
        raise bomb
    return image


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """The ISO-BMFF boxes between ``start`` and ``end``: (type, body start, body end)."""
    position = start
    while position + 8 <= end:
        size = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        header = 8
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[position + 8 : position + 16], "big")
            header = 16
        elif size == 0:  # up to the end
            size = end - position
        if size < header or position + size > end:
            return  # malformed: what was found so far is all there is
        yield kind, position + header, position + size
        position += size


def _heif_coded_pixels(data: bytes) -> int | None:
    """The largest coded image size (width x height) that a HEIF file declares in its "ispe"
    properties (meta > iprp > ipco > ispe); None when it declares none."""
    largest: int | None = None
    for kind, body, end in _boxes(data, 0, len(data)):
        if kind != b"meta":
            continue
        # "meta" is a full box: version and flags (4 bytes) come before its children.
        for kind2, body2, end2 in _boxes(data, body + 4, end):
            if kind2 != b"iprp":
                continue
            for kind3, body3, end3 in _boxes(data, body2, end2):
                if kind3 != b"ipco":
                    continue
                for kind4, body4, end4 in _boxes(data, body3, end3):
                    if kind4 == b"ispe" and end4 - body4 >= 12:
                        # Version and flags, then width and height (32 bits each).
                        width = int.from_bytes(data[body4 + 4 : body4 + 8], "big")
                        height = int.from_bytes(data[body4 + 8 : body4 + 12], "big")
                        largest = max(largest or 0, width * height)
    return largest


def _decode(image: Image.Image, settings: MediaSettings, where: str) -> Image.Image:
    kind = (image.format or "").lower()
    if image.format in ("JPEG", "MPO"):
        # A JPEG can be decoded at 1/2, 1/4 or 1/8 scale for much less work: ask for the
        # smallest scale still at least as large as the stored photo will be.
        scale = min(1.0, settings.max_dimension / max(image.size))
        image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    try:
        image.load()
    except Exception as exc:  # truncated, corrupt, or not really this format
        image.close()
        raise _undecodable(where, kind) from exc
    return image


def _undecodable(where: str, kind: str) -> InvalidMedia:
    name = {"jpeg": "JPEG", "mpo": "JPEG", "png": "PNG", "webp": "WebP", "heif": "HEIC"}
    return InvalidMedia(
        Rejection.UNDECODABLE,
        f"{where} starts like a {name.get(kind, kind.upper())} image but cannot be decoded "
        "(truncated, corrupt or not an image).",
    )


@functools.cache
def _register_heif() -> None:
    # Imported when the first HEIC upload comes: it loads libheif.
    import pi_heif

    # The primary image only: no thumbnails, depth maps or auxiliary images are read, and
    # one decoding thread (PhotoProcessor bounds how many decodes run at once).
    pi_heif.register_heif_opener(
        thumbnails=False, depth_images=False, aux_images=False, decode_threads=1
    )


def _orient(image: Image.Image) -> None:
    """Turn the image as its EXIF orientation says (a malformed EXIF block is ignored: the
    orientation is a hint, and the pixels decoded fine)."""
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _srgb(image: Image.Image) -> Image.Image:
    """The colours converted from an embedded ICC profile to sRGB (the profile is dropped)."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "CMYK", "L"):
        return image
    try:
        converted = ImageCms.profileToProfile(
            image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(), outputMode="RGB"
        )
    except Exception:  # an unreadable or mismatched profile: keep the pixels as they are
        return image
    if converted is None:
        return image
    image.close()
    return converted


def _resizable(image: Image.Image) -> Image.Image:
    """The image in a mode that scales and converts well (keeping ``info`` for _srgb)."""
    # A transparent colour (PNG's tRNS chunk): made an alpha channel.
    keyed = "transparency" in image.info
    if image.mode in ("RGB", "RGBA", "L", "LA", "CMYK") and not keyed:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16- or 32-bit grey (e.g. a 16-bit PNG): scaled to 8 bits (convert() would clip).
        converted = image.convert("I").point(lambda value: value / 256).convert("L")
    else:  # palette, 1-bit, a transparent colour and the rarer modes
        has_alpha = keyed or image.mode in ("RGBA", "LA", "PA", "RGBa", "La")
        converted = image.convert("RGBA" if has_alpha else "RGB")
    image.close()
    return converted


def _pixels_only(image: Image.Image) -> Image.Image:
    """A new RGB or RGBA image with the same pixels and no metadata (``info`` is empty).

    Pillow's encoders fall back to ``image.info`` for some fields (a JPEG comment, a PNG's
    ICC profile), and conversions copy ``info``: only a new image is certainly clean. RGBA
    stays only when some pixel is really transparent.
    """
    mode = "RGB"
    if image.mode in ("RGBA", "LA"):
        low, _ = image.getchannel("A").getextrema()
        if isinstance(low, (int, float)) and low < 255:
            mode = "RGBA"
    with image.convert(mode) as pixels:
        clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    image.close()
    return clean


def _encode(image: Image.Image, quality: int) -> Rendition:
    buffer = io.BytesIO()
    if image.mode == "RGBA":
        image.save(buffer, "PNG", compress_level=6)
        content_type, extension = "image/png", "png"
    else:
        image.save(buffer, "JPEG", quality=quality)
        content_type, extension = "image/jpeg", "jpg"
    return Rendition(buffer.getvalue(), content_type, extension, image.width, image.height)


class PhotoProcessor:
    """Checks and re-encodes a request's uploads in worker threads, a bounded few at once."""

    def __init__(self, settings: MediaSettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_concurrent)

    async def process(self, files: Sequence[bytes]) -> list[Photo]:
        """Every file as a Photo, in order; InvalidMedia for the first refused one.

        Every file's count, size and type are checked before any is decoded, so a request
        that will be refused costs no decoding.
        """
        check_count(len(files), self.settings)
        for index, data in enumerate(files, 1):
            check_file(data, self.settings, index=index)
        photos = []
        for index, data in enumerate(files, 1):
            async with self._slots:
                photo = await asyncio.to_thread(process_photo, data, self.settings, index=index)
            photos.append(photo)
        return photos
