"""The server's own messages (error descriptions) in several languages: one catalogue.

English is the source language: a message's gettext ``msgid`` is its English text, so the
English answers are the texts the code writes. Every other language has a gettext catalogue,
``app/locales/<lang>/LC_MESSAGES/messages.po``, read with babel (no compile step: the ``.po``
files are the catalogue). A message is found by its ``msgid``:

* a :class:`Text` (``Text("No boundary set {name!r} in {code}.", name=..., code=...)``) is a
  ``str`` holding its English text, which also remembers its ``msgid`` and parameters, so
  another language fills the same parameters into its own template;
* a plain ``str`` is its own ``msgid``: a fixed message raised as a plain string (e.g. by a
  module that does not mark its messages) is translated when the catalogue has that text.

A message without a translation stays English. ``tests/unit/test_messages.py`` checks that
every ``Text`` of the code has a French translation with the same parameters.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

SOURCE_LOCALE = "en"
LOCALES_DIR = Path(__file__).parent / "locales"


class Text(str):
    """A message: its English text (the ``str`` itself), ``msgid`` and parameters."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> Text:
        """The message ``msgid`` (a ``str.format`` template when ``params`` are given)."""
        self = super().__new__(cls, msgid.format(**params) if params else msgid)
        self.msgid = msgid
        self.params = params
        return self


def placeholders(template: str) -> frozenset[str]:
    """The names of the ``str.format`` fields of a template."""
    return frozenset(
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name is not None
    )


@cache
def _catalogues() -> dict[str, dict[str, str]]:
    """Language tag -> {msgid: translation} of every ``.po`` file (read once)."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(LOCALES_DIR.glob("*/LC_MESSAGES/messages.po")):
        name = path.parents[1].name
        with path.open("rb") as file:
            catalogue = read_po(file, locale=name)
        out[name.replace("_", "-")] = {
            str(message.id): str(message.string)
            for message in catalogue
            if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
        }
    return out


def locales() -> tuple[str, ...]:
    """The languages the server's messages are written in (English first)."""
    return (SOURCE_LOCALE, *sorted(_catalogues()))


def translations(locale: str) -> dict[str, str]:
    """{msgid: translation} of one language (empty for English or a language without one)."""
    return _catalogues().get(locale, {})


def translate(message: str, locale: str) -> str:
    """``message`` in ``locale`` (English when that language has no translation of it)."""
    if locale == SOURCE_LOCALE:
        return str(message)
    table = translations(locale)
    if not table:
        return str(message)
    if isinstance(message, Text):
        template = table.get(message.msgid)
        if template is None:
            return str(message)
        if not message.params:
            return template
        params = {
            name: translate(value, locale) if isinstance(value, Text) else value
            for name, value in message.params.items()
        }
        return template.format(**params)
    return table.get(message, str(message))
