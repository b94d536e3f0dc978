"""The server's messages: one catalogue, every marked message translated into French with the
same placeholders, English exactly as the code writes it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import app
from app.errors import InvalidParameter, NotFound, Open311Error
from app.messages import Text, locales, placeholders, translate, translations

APP = Path(app.__file__).parent


def _marked() -> dict[str, list[str]]:
    """msgid -> where, of every ``Text("...")`` of the code."""
    found: dict[str, list[str]] = {}
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Text"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                where = f"{path.relative_to(APP.parent)}:{node.lineno}"
                found.setdefault(node.args[0].value, []).append(where)
    return found


def test_french_is_on_offer() -> None:
    assert locales() == ("en", "fr")


def test_every_marked_message_has_a_french_translation_with_its_placeholders() -> None:
    marked = _marked()
    assert len(marked) >= 20  # the error titles and the catalogue routes' messages
    french = translations("fr")
    missing = {msgid: where for msgid, where in marked.items() if msgid not in french}
    assert not missing, f"messages without a French translation: {missing}"
    for msgid in marked:
        assert placeholders(french[msgid]) == placeholders(msgid), msgid


def test_every_translation_is_of_a_message_of_the_code() -> None:
    """No stale entry: each msgid is a marked message or a literal of the code."""
    marked = set(_marked())
    source = "\n".join(p.read_text(encoding="utf-8") for p in APP.rglob("*.py"))
    pydantic_messages = {
        "Field required",
        "Input should be a valid string",
        "Input should be a valid integer, unable to parse string as an integer",
        "Input should be 'xml' or 'json'",
    }
    stale = [
        msgid
        for msgid in translations("fr")
        if msgid not in marked
        and msgid not in pydantic_messages
        and f'"{msgid}"' not in source
        # A message built from a fixed template, e.g. f"The {source} is not valid UTF-8."
        and msgid not in ("The query string is not valid UTF-8.",)
    ]
    assert not stale, stale


def test_english_is_the_text_the_code_writes() -> None:
    message = Text("No boundary set {name!r} in {code}.", name="wards-2018", code="x.org")
    assert message == "No boundary set 'wards-2018' in x.org."
    assert translate(message, "en") == str(message)
    assert type(translate(message, "en")) is str
    assert translate(message, "fr") == "Aucun ensemble de limites 'wards-2018' pour x.org."
    # A language without a catalogue, and a message without a translation, stay English.
    assert translate(message, "de") == str(message)
    assert translate(Text("Not a message of the catalogue."), "fr") == (
        "Not a message of the catalogue."
    )
    # Plain strings are their own msgid; parameters that are messages are translated too.
    assert translate("Field required", "fr") == "Champ obligatoire"
    nested = Text("{name}: {msg}.", name="service_code", msg=Text("Field required"))
    assert translate(nested, "fr") == "service_code : Champ obligatoire."


@pytest.mark.parametrize(
    "error", [Open311Error(), NotFound(), InvalidParameter(Text("Field required"))]
)
def test_errors_keep_their_english_text(error: Open311Error) -> None:
    english = [d for _, d in error.errors]
    assert [str(d) for d in english] == english
    assert all(translate(d, "fr") != d for d in english)
