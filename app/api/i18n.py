"""Which languages a call asks for: the ``locale`` parameter, else ``Accept-Language``.

The catalogue routes negotiate the answer's language with the jurisdiction's catalogue
(:meth:`app.domain.catalog.Catalog.negotiate`); the error handler with the languages of the
server's messages (:func:`error_locale`). Answers say which language they are in
(``Content-Language``) and that it depends on ``Accept-Language`` (``Vary``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.api.deps import QueryDep
from app.api.schemas import BLANK, WS, query_parameter
from app.domain.i18n import (
    MAX_ACCEPT_LANGUAGE,
    MAX_RANGES,
    MAX_TAG_LENGTH,
    accept_language,
    canonical_tag,
    negotiate,
)
from app.errors import InvalidParameter
from app.messages import SOURCE_LOCALE, Text, locales

Preferred = tuple[str, ...]

_TAG_PATTERN = "[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*"
LOCALE = query_parameter(
    "locale",
    {
        "anyOf": [
            {
                "type": "string",
                "maxLength": MAX_TAG_LENGTH,
                "pattern": f"^[{WS}]*{_TAG_PATTERN}[{WS}]*$",
            },
            {"type": "string", "pattern": BLANK},
        ],
        "type": "string",
        "examples": ["fr", "fr-CA"],
    },
    "Extension: the language of the answer, a language tag (fr, fr-CA); it overrides "
    "Accept-Language. Each text comes from the most specific translation on offer (fr-CA, "
    "then fr), else from the language the catalogue is written in; error descriptions too. "
    "A language not on offer gets the catalogue's own. Content-Language names the language "
    "of the answer. Empty means not given.",
)
ACCEPT_LANGUAGE = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": "The languages wanted, with q-values (RFC 9110), when locale is not given. "
    f"Read up to {MAX_ACCEPT_LANGUAGE} characters and {MAX_RANGES} ranges; malformed ranges are "
    "ignored.",
    "schema": {"type": "string", "examples": ["fr-CA,fr;q=0.9,en;q=0.5"]},
}


def _tag(value: str) -> str | None:
    # The length as sent (blanks included), as the documented schema counts it.
    return canonical_tag(value) if len(value) <= MAX_TAG_LENGTH else None


def locale_parameter(value: str | None) -> Preferred | None:
    """The language a ``locale`` parameter names; None when it is absent or blank.

    Raises InvalidParameter when it is not a language tag."""
    if value is None or not value.strip():
        return None
    tag = _tag(value)
    if tag is None:
        shown = value if len(value) <= MAX_TAG_LENGTH else value[:MAX_TAG_LENGTH] + "..."
        raise InvalidParameter(
            Text("locale: {value!r} is not a language tag (e.g. fr or fr-CA).", value=shown)
        )
    return (tag,)


async def requested_locales(request: Request, query: QueryDep) -> Preferred:
    """The languages a call asks for, most wanted first (empty: none in particular)."""
    problems: list[str] = []
    chosen = locale_parameter(query.one("locale", problems))
    if problems:
        raise InvalidParameter(*problems)
    if chosen is not None:
        return chosen
    return accept_language(request.headers.get("accept-language"))


LocalesDep = Annotated[Preferred, Depends(requested_locales)]


def language_headers(locale: str) -> dict[str, str]:
    """The headers of an answer in ``locale`` that depends on Accept-Language."""
    return {"Content-Language": locale, "Vary": "Accept-Language"}


def error_locale(request: Request) -> str:
    """The language of an error answer: of the server's messages, the one the call asks for
    (a ``locale`` parameter that is not a tag is passed over: it may be the error)."""
    preferred: Preferred = ()
    for value in request.query_params.getlist("locale"):
        tag = _tag(value) if value.strip() else None
        if tag is not None:
            preferred = (tag,)
            break
    else:
        preferred = accept_language(request.headers.get("accept-language"))
    return negotiate(preferred, locales(), SOURCE_LOCALE)


def documented_languages(*parameters: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """``parameters`` with the ``locale`` parameter and the ``Accept-Language`` header."""
    return (*parameters, LOCALE, ACCEPT_LANGUAGE)
