"""Uploaded photos: accepted by content, re-encoded without metadata, hostile files refused."""

from __future__ import annotations

import io
import struct
import time
import zipfile

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from app.errors import BadRequest
from app.media.errors import InvalidMedia, Rejection
from app.media.images import Photo, PhotoProcessor, process_photo
from app.media.settings import MediaSettings
from tests.media.imaging import (
    BLUE,
    HEIC_FILE,
    PRIVATE,
    RED,
    close_to,
    decoded,
    encode,
    half_transparent,
    jpeg,
    jpeg_with_size,
    png,
    png_header_only,
    private_exif,
    srgb_icc,
    two_colour,
    webp,
    webp_with_size,
)

SETTINGS = MediaSettings()


def refused(data: bytes, settings: MediaSettings = SETTINGS) -> InvalidMedia:
    """The refusal of ``data``; fails the test if it is accepted."""
    with pytest.raises(InvalidMedia) as caught:
        process_photo(data, settings)
    return caught.value


def noise_image(size: tuple[int, int] = (96, 96)) -> Image.Image:
    """Random-looking pixels: their encoded data is most of the file (for truncation)."""
    return Image.merge("RGB", [Image.effect_noise(size, 80) for _ in range(3)])


def assert_no_metadata(photo: Photo) -> None:
    """Neither rendition carries EXIF, GPS, ICC, XMP, comments or the private strings."""
    for rendition in (photo.full, photo.thumbnail):
        data = rendition.data
        for private in PRIVATE:
            assert private not in data
        assert b"Exif\x00\x00" not in data
        assert b"ICC_PROFILE" not in data
        assert b"http://ns.adobe.com/xap/1.0/" not in data
        image = decoded(data)
        assert len(image.getexif()) == 0
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
        for field in ("exif", "icc_profile", "xmp", "comment", "Comment", "dpi"):
            assert field not in image.info


# Accepted -----------------------------------------------------------------------------------


def test_jpeg_is_reencoded_with_a_thumbnail() -> None:
    source = two_colour((640, 320))
    photo = process_photo(jpeg(source), SETTINGS)

    assert photo.source_format == "jpeg"
    full = decoded(photo.full.data)
    assert (full.format, full.size) == ("JPEG", (640, 320))
    assert (photo.full.content_type, photo.full.extension) == ("image/jpeg", "jpg")
    assert (photo.full.width, photo.full.height) == (640, 320)
    assert close_to(full.getpixel((10, 10)), RED)
    assert close_to(full.getpixel((630, 10)), BLUE)
    thumb = decoded(photo.thumbnail.data)
    assert (thumb.format, thumb.size) == ("JPEG", (320, 160))
    assert (photo.thumbnail.width, photo.thumbnail.height) == (320, 160)
    assert close_to(thumb.getpixel((5, 5)), RED)
    assert close_to(thumb.getpixel((315, 5)), BLUE)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("jpeg", jpeg()),
        ("png", png()),
        ("webp", webp(quality=90)),
        ("webp", webp(lossless=True)),
        ("heic", HEIC_FILE.read_bytes()),
    ],
    ids=["jpeg", "png", "webp-lossy", "webp-lossless", "heic"],
)
def test_accepted_types_become_jpeg(kind: str, data: bytes) -> None:
    photo = process_photo(data, SETTINGS)

    assert photo.source_format == kind
    image = decoded(photo.full.data)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 32))
    assert close_to(image.getpixel((4, 16)), RED)
    assert close_to(image.getpixel((60, 16)), BLUE)


@pytest.mark.parametrize(
    "data",
    [
        png(two_colour(mode="RGBA")),  # RGBA, every pixel opaque
        png(two_colour(mode="LA")),
    ],
    ids=["rgba", "grey-alpha"],
)
def test_an_alpha_channel_without_transparency_becomes_jpeg(data: bytes) -> None:
    photo = process_photo(data, SETTINGS)

    assert photo.full.content_type == "image/jpeg"
    assert decoded(photo.full.data).mode == "RGB"


def transparent_black() -> Image.Image:
    """Opaque RGB whose left quarter is black, the colour a PNG can declare transparent."""
    image = two_colour()
    image.paste((0, 0, 0), (0, 0, 16, 32))
    return image


@pytest.mark.parametrize(
    "data",
    [
        png(half_transparent()),
        png(half_transparent(), icc_profile=srgb_icc(), exif=private_exif()),
        webp(half_transparent(), lossless=True),
        png(half_transparent().convert("P")),
        png(transparent_black(), transparency=(0, 0, 0)),
    ],
    ids=["png-rgba", "png-rgba-metadata", "webp-alpha", "png-palette", "png-rgb-keyed"],
)
def test_transparency_is_kept_as_png(data: bytes) -> None:
    photo = process_photo(data, SETTINGS)

    assert (photo.full.content_type, photo.full.extension) == ("image/png", "png")
    assert photo.thumbnail.content_type == "image/png"
    image = decoded(photo.full.data)
    assert (image.format, image.mode) == ("PNG", "RGBA")
    assert image.getpixel((4, 16))[3] == 0
    assert image.getpixel((24, 16)) == (*RED, 255)
    assert image.getpixel((60, 16)) == (*BLUE, 255)
    assert_no_metadata(photo)


def test_gps_device_and_owner_exif_never_leave_the_server() -> None:
    exif = private_exif()
    data = jpeg(
        two_colour((400, 200)),
        exif=exif,
        icc_profile=srgb_icc(),
        comment=b"private-note",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">xmp-secret</x:xmpmeta>',
    )
    # The upload really carries all of it (else this test would prove nothing).
    upload = decoded(data)
    assert upload.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert {"exif", "icc_profile", "comment", "xmp"} <= set(upload.info)
    for private in PRIVATE:
        assert private in data

    photo = process_photo(data, SETTINGS)

    assert_no_metadata(photo)


def test_png_text_exif_and_icc_are_dropped() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "private-note")
    text.add_itxt("XML:com.adobe.xmp", "xmp-secret")
    data = png(two_colour(), pnginfo=text, exif=private_exif(), icc_profile=srgb_icc())
    assert b"Jane Owner" in data
    assert b"private-note" in data

    assert_no_metadata(process_photo(data, SETTINGS))


def test_webp_exif_and_xmp_are_dropped() -> None:
    data = webp(two_colour(), exif=private_exif(), xmp=b"xmp-secret", icc_profile=srgb_icc())
    assert b"Jane Owner" in data

    assert_no_metadata(process_photo(data, SETTINGS))


def test_heic_metadata_is_dropped() -> None:
    data = HEIC_FILE.read_bytes()
    assert b"Jane Owner" in data

    photo = process_photo(data, SETTINGS)

    assert_no_metadata(photo)
    # HEIF's own transforms (none here) place the image; its EXIF orientation is a copy that
    # HEIF readers must not apply twice.
    assert (photo.full.width, photo.full.height) == (64, 32)


@pytest.mark.parametrize(
    ("orientation", "top_left", "bottom_right"),
    [
        (1, RED, BLUE),
        (3, BLUE, RED),  # turned 180°
        (6, RED, BLUE),  # turned 90° clockwise: left half on top
        (8, BLUE, RED),  # turned 90° counter-clockwise: left half at the bottom
    ],
)
def test_exif_orientation_is_applied_then_dropped(
    orientation: int, top_left: tuple[int, int, int], bottom_right: tuple[int, int, int]
) -> None:
    data = jpeg(two_colour((64, 32)), exif=private_exif(orientation))

    photo = process_photo(data, SETTINGS)

    image = decoded(photo.full.data)
    turned = orientation in (6, 8)
    assert image.size == ((32, 64) if turned else (64, 32))
    assert close_to(image.getpixel((2, 2)), top_left)
    assert close_to(image.getpixel((image.width - 3, image.height - 3)), bottom_right)
    assert len(image.getexif()) == 0
    thumb = decoded(photo.thumbnail.data)
    assert thumb.size == image.size


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_photos_are_scaled_down(fmt: str) -> None:
    settings = MediaSettings(max_dimension=1000, thumbnail_size=200)
    data = encode(two_colour((3000, 1500)), fmt)

    photo = process_photo(data, settings)

    assert decoded(photo.full.data).size == (1000, 500)
    assert decoded(photo.thumbnail.data).size == (200, 100)


def test_cmyk_jpeg_becomes_rgb() -> None:
    photo = process_photo(jpeg(two_colour().convert("CMYK")), SETTINGS)

    image = decoded(photo.full.data)
    assert image.mode == "RGB"
    assert close_to(image.getpixel((4, 16)), RED, tolerance=60)


def test_16_bit_grey_png_is_scaled_not_clipped() -> None:
    gradient = Image.linear_gradient("L").resize((64, 64)).convert("I")
    wide = gradient.point(lambda value: value * 257).convert("I;16")

    image = decoded(process_photo(png(wide), SETTINGS).full.data)

    top, middle, bottom = (image.getpixel((32, y))[0] for y in (1, 32, 62))
    assert top < 20
    assert 100 < middle < 160
    assert bottom > 235


def test_an_animated_webp_keeps_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, BLUE, (30, 200, 30))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3

    image = decoded(process_photo(data, SETTINGS).full.data)

    assert getattr(image, "n_frames", 1) == 1
    assert close_to(image.getpixel((16, 16)), RED)


def polyglot_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("index.html", "<html><script>alert(document.cookie)</script></html>")
    return archive.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        jpeg() + polyglot_zip(),
        jpeg() + b"<html><script>alert(document.cookie)</script></html>",
        png() + b"<?php system($_GET['c']); ?>",
        jpeg(comment=b"<script>alert(document.cookie)</script>"),
    ],
    ids=["jpeg+zip", "jpeg+html", "png+php", "jpeg-comment-script"],
)
def test_what_rides_along_an_image_is_dropped(data: bytes) -> None:
    photo = process_photo(data, SETTINGS)

    for rendition in (photo.full, photo.thumbnail):
        assert b"PK\x03\x04" not in rendition.data
        assert b"<script" not in rendition.data
        assert b"<?php" not in rendition.data
        assert decoded(rendition.data).size in ((64, 32), (320, 160))


# Refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (encode(two_colour(), "GIF"), "GIF"),
        (encode(two_colour(), "BMP"), "BMP"),
        (encode(two_colour(), "TIFF"), "TIFF"),
        (encode(two_colour(), "PDF"), "PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "XML or SVG"),
        (b"<!DOCTYPE html><html><body>photo</body></html>", "HTML"),
        (polyglot_zip(), "ZIP"),
        (b"just some text, named photo.jpg", "not an image"),
    ],
    ids=["gif", "bmp", "tiff", "pdf", "svg", "xml", "html", "zip", "text"],
)
def test_other_types_are_refused(data: bytes, named: str) -> None:
    error = refused(data)

    assert error.reason is Rejection.UNSUPPORTED_TYPE
    assert isinstance(error, BadRequest)
    assert error.status_code == 400
    assert error.descriptions == [
        f"media file 1 is not a JPEG, PNG, WebP or HEIC image (its content is {named})."
    ]


def test_heic_is_refused_when_turned_off() -> None:
    error = refused(HEIC_FILE.read_bytes(), MediaSettings(heic=False))

    assert error.reason is Rejection.UNSUPPORTED_TYPE
    assert error.descriptions == [
        "media file 1 is not a JPEG, PNG or WebP image (its content is HEIC)."
    ]


def test_an_empty_file_is_refused() -> None:
    assert refused(b"").reason is Rejection.EMPTY


def test_size_is_checked_before_anything_else() -> None:
    settings = MediaSettings(max_file_bytes=1024)
    big_photo = jpeg(noise_image((128, 128)))
    assert len(big_photo) > 1024

    assert refused(big_photo, settings).reason is Rejection.TOO_LARGE
    # Over the size and of a refused type: the size speaks first (no byte was looked at).
    assert refused(b"GIF89a" + b"\x00" * 2000, settings).reason is Rejection.TOO_LARGE
    assert refused(b"GIF89a" + b"\x00" * 1000, settings).reason is Rejection.UNSUPPORTED_TYPE


def test_pixel_count_is_checked_from_the_header() -> None:
    settings = MediaSettings(max_pixels=100 * 100, max_dimension=64, thumbnail_size=16)

    assert refused(png(two_colour((101, 100))), settings).reason is Rejection.TOO_MANY_PIXELS
    assert process_photo(png(two_colour((100, 100))), settings).full.width == 64


@pytest.mark.parametrize(
    "data",
    [
        png_header_only(100_000, 100_000),  # over twice Pillow's limit: its error
        png_header_only(10_000, 9_000),  # over Pillow's limit: its warning
        png_header_only(8_000, 8_000),  # under Pillow's limit, over ours: our check
        jpeg_with_size(60_000, 60_000),
        webp_with_size(16_383, 16_383),
        webp_with_size(8_000, 7_000),
    ],
    ids=["png-10g", "png-90m", "png-64m", "jpeg-3.6g", "webp-268m", "webp-56m"],
)
def test_decompression_bombs_are_refused_before_decoding(data: bytes) -> None:
    assert len(data) < 2000
    started = time.monotonic()

    error = refused(data)

    assert error.reason is Rejection.TOO_MANY_PIXELS
    assert error.descriptions == ["media file 1 has more than 50000000 pixels (width x height)."]
    # Generous: decoding any of these would take far longer (and gigabytes).
    assert time.monotonic() - started < 5


def test_a_heic_is_measured_by_its_coded_size() -> None:
    # The file codes 64 x 64 pixels and crops them to 64 x 32 for display; libheif reports
    # the crop but decodes all that is coded, so the coded size is what must fit.
    data = HEIC_FILE.read_bytes()
    coded = MediaSettings(max_pixels=64 * 64, max_dimension=64, thumbnail_size=16)
    shown = MediaSettings(max_pixels=64 * 32, max_dimension=64, thumbnail_size=16)

    assert process_photo(data, coded).full.width == 64
    assert refused(data, shown).reason is Rejection.TOO_MANY_PIXELS


def heic_with_coded_size(width: int, height: int) -> bytes:
    """The HEIC file with its coded size ("ispe") rewritten; its displayed size stays."""
    data = bytearray(HEIC_FILE.read_bytes())
    ispe = data.index(b"ispe")
    struct.pack_into(">II", data, ispe + 8, width, height)
    return bytes(data)


@pytest.mark.parametrize("size", [(60_000, 60_000), (20_000, 20_000), (8_000, 8_000)], ids=str)
def test_a_heic_coding_a_huge_image_behind_a_small_one_is_refused(
    size: tuple[int, int],
) -> None:
    error = refused(heic_with_coded_size(*size))

    assert error.reason is Rejection.TOO_MANY_PIXELS


def test_a_heic_without_a_coded_size_is_refused() -> None:
    data = HEIC_FILE.read_bytes().replace(b"ispe", b"ispx")

    assert refused(data).reason is Rejection.UNDECODABLE


@pytest.mark.parametrize(
    "data",
    [
        jpeg(noise_image()),
        png(noise_image()),
        webp(noise_image(), quality=90),
        HEIC_FILE.read_bytes(),
    ],
    ids=["jpeg", "png", "webp", "heic"],
)
def test_truncated_files_are_refused(data: bytes) -> None:
    process_photo(data, SETTINGS)  # whole, it is fine

    error = refused(data[: len(data) * 2 // 3])

    assert error.reason is Rejection.UNDECODABLE


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff<html><script>alert(document.cookie)</script></html>",
        b"\x89PNG\r\n\x1a\n<html><script>alert(document.cookie)</script></html>",
        b"RIFF\x30\x00\x00\x00WEBP<script>alert(document.cookie)</script>",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic<script>alert(1)</script>",
    ],
    ids=["jpeg", "png", "webp", "heic"],
)
def test_magic_bytes_alone_are_not_an_image(data: bytes) -> None:
    error = refused(data)

    assert error.reason is Rejection.UNDECODABLE
    assert "cannot be decoded" in error.descriptions[0]


# Several files ------------------------------------------------------------------------------


async def test_a_request_s_files_come_back_in_order() -> None:
    photos = await PhotoProcessor(SETTINGS).process([png(), jpeg(), webp()])

    assert [photo.source_format for photo in photos] == ["png", "jpeg", "webp"]


async def test_too_many_files_are_refused_before_any_is_looked_at() -> None:
    processor = PhotoProcessor(MediaSettings(max_files=2))

    with pytest.raises(InvalidMedia) as caught:
        await processor.process([b"not an image"] * 3)

    assert caught.value.reason is Rejection.TOO_MANY_FILES
    assert caught.value.descriptions == ["media: 3 files sent; at most 2 per request."]


async def test_every_file_is_checked_before_any_is_decoded() -> None:
    truncated = jpeg(noise_image())[:600]

    with pytest.raises(InvalidMedia) as caught:
        await PhotoProcessor(SETTINGS).process([truncated, encode(two_colour(), "GIF")])

    # The second file's type was refused before the first one was decoded.
    assert caught.value.reason is Rejection.UNSUPPORTED_TYPE
    assert caught.value.descriptions[0].startswith("media file 2 ")
