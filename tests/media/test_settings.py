"""MediaSettings: defaults that run, and refusals of settings that cannot work."""

from __future__ import annotations

import pytest
from PIL import Image
from pydantic import ValidationError

from app.media.settings import PILLOW_MAX_PIXELS, MediaSettings, S3Settings


def test_the_defaults_store_locally() -> None:
    settings = MediaSettings()

    assert (settings.enabled, settings.backend, settings.heic) == (True, "local", True)
    assert settings.thumbnail_size <= settings.max_dimension
    assert settings.max_pixels <= PILLOW_MAX_PIXELS


def test_our_pixel_ceiling_is_pillow_s() -> None:
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_PIXELS
    with pytest.raises(ValidationError):
        MediaSettings(max_pixels=PILLOW_MAX_PIXELS + 1)


@pytest.mark.parametrize(
    "values",
    [
        {"backend": "s3"},  # no bucket
        {"thumbnail_size": 1024, "max_dimension": 512},
        {"public_base_url": "https://cdn.example.org/"},
        {"max_files": 0},
        {"max_file_bytes": 10},
        {"backend": "ftp"},
    ],
)
def test_unworkable_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MediaSettings.model_validate(values)


def test_s3_needs_a_bucket_only_when_enabled() -> None:
    assert MediaSettings(backend="s3", enabled=False).backend == "s3"
    chosen = MediaSettings(backend="s3", s3=S3Settings(bucket="photos"))
    assert chosen.s3.bucket == "photos"


def test_nested_values_come_from_plain_data() -> None:
    settings = MediaSettings.model_validate(
        {"backend": "s3", "s3": {"bucket": "photos", "secret_access_key": "s3cr3t"}}
    )

    assert settings.s3.secret_access_key.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(settings)
