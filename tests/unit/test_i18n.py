"""Language negotiation: Accept-Language parsing (q-values, bounds), tags, fallbacks."""

from __future__ import annotations

import pytest

from app.domain.i18n import (
    MAX_ACCEPT_LANGUAGE,
    MAX_RANGES,
    accept_language,
    canonical_tag,
    fallbacks,
    known_locale,
    negotiate,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ()),
        ("", ()),
        ("fr", ("fr",)),
        ("fr-CA,fr;q=0.9,en;q=0.8", ("fr-CA", "fr", "en")),
        # Ordered by quality; ties keep the order sent.
        ("en;q=0.5, de, fr;q=0.5, it", ("de", "it", "en", "fr")),
        # q=0 is "not acceptable"; * asks for nothing in particular; case is normalised.
        ("FR-ca;q=1.0, en;q=0, *;q=0.1", ("fr-CA",)),
        # Malformed q-values and ranges are passed over, not fatal.
        ("de;q=2, es;q=0.1234, it;q=abc, pt;q=0.123, ;q=1, 1234, fr", ("fr", "pt")),
        # Spaces, other parameters and repeated tags.
        (" fr ; level=1 ; q=0.7 , fr;q=0.2 , en ", ("en", "fr")),
        ("zh_hant_tw", ("zh-Hant-TW",)),
    ],
)
def test_accept_language(header: str | None, expected: tuple[str, ...]) -> None:
    assert accept_language(header) == expected


def test_accept_language_is_bounded() -> None:
    many = ",".join(f"x{i % 10}a" for i in range(500))
    assert len(accept_language(many)) <= MAX_RANGES
    # Past the length limit the header is cut at its last whole range.
    cut = "fr," + "en-" + "a" * (MAX_ACCEPT_LANGUAGE + 50)
    assert accept_language(cut) == ("fr",)
    assert accept_language("de-" + "a" * 1000) == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fr", "fr"),
        (" FR-ca ", "fr-CA"),
        ("fr_CA", "fr-CA"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("", None),
        ("fr-", None),
        ("f r", None),
        ("fr;q=1", None),
        ("123", None),
        ("a" * 9, None),
        ("fr-" + "-".join(["abcd1234"] * 5), None),  # longer than 35 characters
    ],
)
def test_canonical_tag(value: str, expected: str | None) -> None:
    assert canonical_tag(value) == expected


def test_known_locale() -> None:
    assert known_locale("fr")
    assert known_locale("fr-CA")
    assert not known_locale("xx")
    assert not known_locale("zz-ZZ")


@pytest.mark.parametrize(
    ("preferred", "available", "expected"),
    [
        ((), ("en", "fr"), "en"),
        (("fr-CA",), ("en", "fr"), "fr"),  # the tag, then its language
        (("fr-CA", "en"), ("en", "fr", "fr-CA"), "fr-CA"),
        (("fr",), ("en", "fr-CA"), "fr-CA"),  # a variant of the language asked for
        (("de", "fr"), ("en", "fr"), "fr"),
        (("de",), ("en", "fr"), "en"),  # nothing on offer: the default
        (("EN-us",), ("en", "fr"), "en"),
        (("de",), ("fr", "en"), "fr"),  # the default is the catalogue's own language
    ],
)
def test_negotiate(preferred: tuple[str, ...], available: tuple[str, ...], expected: str) -> None:
    assert negotiate(preferred, available, available[0]) == expected


def test_fallbacks() -> None:
    assert fallbacks("fr-CA", ("en", "fr", "fr-CA")) == ("fr-CA", "fr")
    assert fallbacks("fr-CA", ("en", "fr-CA")) == ("fr-CA",)
    assert fallbacks("zh-Hant-TW", ("zh", "zh-Hant")) == ("zh-Hant", "zh")
    assert fallbacks("en", ("en", "fr")) == ("en",)
