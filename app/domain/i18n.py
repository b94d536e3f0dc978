"""Languages: which a call asks for, and which of those on offer it gets.

A call names its language with the ``locale`` parameter (one language tag, ``fr`` or
``fr-CA``) or, without one, with the ``Accept-Language`` header (RFC 9110 §12.5.4: language
ranges with q-values; ``*`` and ``q=0`` ask for nothing in particular). Negotiation takes the
first language asked for that is on offer, trying each tag and then its language alone
(``fr-CA`` → ``fr``, babel's ``negotiate_locale``), then any variant of that language on
offer (``fr`` → ``fr-CA``). When none is on offer the answer is in the default language: the
language a jurisdiction's catalogue is written in (English unless it says), English for the
server's own messages.

An answer in ``fr-CA`` uses the texts of ``fr-CA``, then those of ``fr`` for what ``fr-CA``
does not translate, then the default language's (:func:`fallbacks`).

Input is bounded before any work: the header is read up to ``MAX_ACCEPT_LANGUAGE`` characters
and ``MAX_RANGES`` ranges, a tag is at most ``MAX_TAG_LENGTH`` characters; parsing is linear
and its results are kept in a bounded cache (callers send the same few headers again and again).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from babel.core import Locale, UnknownLocaleError, negotiate_locale

# RFC 5646 §4.4.1: implementations should handle tags of at least 35 characters.
MAX_TAG_LENGTH = 35
MAX_ACCEPT_LANGUAGE = 256
MAX_RANGES = 12
# Python's str.isspace(), as the trimming of every parameter (app.api.schemas.WS).
_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def canonical_tag(value: str) -> str | None:
    """A language tag in its usual case (``fr-CA``, ``zh-Hant-TW``; ``_`` read as ``-``), or
    None when ``value`` is not one."""
    value = value.strip()
    if len(value) > MAX_TAG_LENGTH or not _TAG.fullmatch(value):
        return None
    parts = value.replace("_", "-").split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())  # region
        else:
            out.append(part.lower())
    return "-".join(out)


def known_locale(tag: str) -> bool:
    """True when CLDR (babel) knows the language of ``tag`` (a canonical tag)."""
    try:
        Locale.parse(tag, sep="-")
    except (ValueError, UnknownLocaleError):
        return False
    return True


def accept_language(header: str | None) -> tuple[str, ...]:
    """The language tags of an ``Accept-Language`` value, most wanted first (ties in the
    order sent; ``*``, ``q=0`` and malformed ranges left out)."""
    if not header:
        return ()
    if len(header) > MAX_ACCEPT_LANGUAGE:
        # Past the limit the value is cut at the last whole range.
        header = header[:MAX_ACCEPT_LANGUAGE].rpartition(",")[0]
    return _accept_language(header)


@lru_cache(maxsize=1024)
def _accept_language(header: str) -> tuple[str, ...]:
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",", MAX_RANGES)[:MAX_RANGES]):
        name, _, parameters = item.partition(";")
        quality = 1.0
        for parameter in parameters.split(";") if parameters else ():
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.fullmatch(value) else -1.0
        tag = canonical_tag(name)
        if tag is None or quality <= 0:
            continue
        ranked.append((-quality, position, tag))
    ranked.sort()
    seen: dict[str, None] = {}
    for _, _, tag in ranked:
        seen.setdefault(tag, None)
    return tuple(seen)


def negotiate(preferred: Sequence[str], available: Sequence[str], default: str) -> str:
    """The locale of ``available`` an answer is given in (see the module docstring)."""
    return _negotiate(tuple(preferred), tuple(available), default)


@lru_cache(maxsize=1024)
def _negotiate(preferred: tuple[str, ...], available: tuple[str, ...], default: str) -> str:
    if not preferred:
        return default
    spelled = {tag.lower(): tag for tag in available}
    found = negotiate_locale(preferred, available, sep="-", aliases={})
    if found is not None:
        return spelled.get(found.lower(), default)
    for tag in preferred:
        language = tag.split("-")[0].lower()
        for offered in available:
            if offered.split("-")[0].lower() == language:
                return offered
    return default


def fallbacks(locale: str, available: Sequence[str]) -> tuple[str, ...]:
    """The locales whose texts an answer in ``locale`` uses, most specific first
    (``fr-CA`` → ``fr-CA``, ``fr``, of those on offer)."""
    offered = {tag.lower(): tag for tag in available}
    parts = locale.split("-")
    chain = ("-".join(parts[:end]).lower() for end in range(len(parts), 0, -1))
    return tuple(offered[tag] for tag in chain if tag in offered)
