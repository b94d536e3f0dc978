"""Languages (issue 20, point 5): the catalogue and the error descriptions in the caller's
language, on both backends and in both formats.

The test catalogue (``tests/data/catalog.json``, English) gets French translations (and one
Canadian French text) through the real CSV import; expected values are computed from the
catalogue and the CSV rows, with the fallback rule: ``fr-CA``, then ``fr``, then English.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from app.domain.catalog_translations import import_translations, read_translations_csv
from tests.conftest import Seed, engine_of
from tests.support import error_descriptions, fetch_both, xml_to_value

TRANSLATIONS = """\
locale,service_code,attribute_code,value_key,field,text
fr,POTHOLE,,,service_name,Nid-de-poule
fr,POTHOLE,,,description,Trou dans la chaussée.
fr,POTHOLE,,,group,Rues
fr,POTHOLE,SIZE,,description,Quelle taille? Choisissez la plus proche.
fr,POTHOLE,SIZE,SMALL,name,Petit
fr,POTHOLE,SIZE,LARGE,name,Grand
fr,POTHOLE,DEPTH,,datatype_description,Centimètres.
fr,POTHOLE,LANES,BIKE,name,Piste cyclable
fr,GRAFFITI,,,service_name,Graffiti (fr)
fr,LITTER.BIN,,,service_name,"Poubelle qui déborde, «Straße»"
fr-CA,POTHOLE,,,service_name,Nid-de-poule (Canada)
"""
ROWS = [line.split(",", 5) for line in TRANSLATIONS.splitlines()[1:]]


def texts(locale: str) -> dict[tuple[str, str, str, str], str]:
    """The texts of one language in the CSV: (service, attribute, value, field) -> text."""
    return {
        (service, attribute, value, field): text.strip('"')
        for tag, service, attribute, value, field, text in ROWS
        if tag == locale
    }


def chain_texts(*locales: str) -> dict[tuple[str, str, str, str], str]:
    """The texts an answer in ``locales[0]`` uses: the most specific language first."""
    merged: dict[tuple[str, str, str, str], str] = {}
    for locale in reversed(locales):
        merged.update(texts(locale))
    return merged


def expected_services(seed: Seed, *locales: str) -> dict[str, dict[str, Any]]:
    """service_code -> the service item in the language chain ``locales`` (English last)."""
    table = chain_texts(*locales)
    out = {}
    for entry in seed.catalog["services"]:
        code = entry["service_code"]
        out[code] = {
            "service_code": code,
            "service_name": table.get((code, "", "", "service_name"), entry["service_name"]),
            "description": table.get((code, "", "", "description"), entry["description"]),
            "metadata": bool(entry["attributes"]),
            "type": entry["type"],
            "keywords": table.get((code, "", "", "keywords"), entry["keywords"]),
            "group": table.get((code, "", "", "group"), entry["group"]),
        }
    return out


def expected_attributes(seed: Seed, code: str, *locales: str) -> list[dict[str, Any]]:
    """The attributes of a service definition in the language chain ``locales``."""
    table = chain_texts(*locales)
    (entry,) = [s for s in seed.catalog["services"] if s["service_code"] == code]
    out = []
    for a in sorted(entry["attributes"], key=lambda a: a["order"]):
        key = (code, a["code"], "")
        item = {
            "variable": a["variable"],
            "code": a["code"],
            "datatype": a["datatype"],
            "required": a["required"],
            "datatype_description": table.get(
                (*key, "datatype_description"), a["datatype_description"]
            ),
            "order": a["order"],
            "description": table.get((*key, "description"), a["description"]),
        }
        if a["datatype"] in ("singlevaluelist", "multivaluelist"):
            item["values"] = [
                {"key": v["key"], "name": table.get((code, a["code"], v["key"], "name"), v["name"])}
                for v in a["values"]
            ]
        out.append(item)
    return out


async def translate_catalog(client: httpx.AsyncClient, seed: Seed, tmp_path: Path) -> None:
    """Import TRANSLATIONS as ``open311 translations import`` does; the app reads it anew."""
    path = tmp_path / "translations.csv"
    path.write_text(TRANSLATIONS, encoding="utf-8")
    report = await import_translations(
        engine_of(client), seed.jurisdiction_pk, seed.jurisdiction_id, read_translations_csv(path)
    )
    assert report.created == len(ROWS)
    # The catalogue is cached for a few seconds: a running server sees the import that soon.
    client.app.state.open311.catalogs.invalidate()  # type: ignore[attr-defined]


def assert_language(response: httpx.Response, locale: str) -> None:
    """The answer says its language and that it depends on Accept-Language."""
    assert response.headers["content-language"] == locale
    vary = [v.strip() for v in response.headers["vary"].split(",")]
    assert "Accept-Language" in vary


@pytest.fixture
async def translated(client: httpx.AsyncClient, seeded: Seed, tmp_path: Path) -> Seed:
    """The seeded catalogue with its French (and Canadian French) translations."""
    await translate_catalog(client, seeded, tmp_path)
    return seeded


async def test_french_catalogue_with_the_locale_parameter(
    client: httpx.AsyncClient, translated: Seed
) -> None:
    both = await fetch_both(client, "services", params={"locale": "fr"})
    for response in (both.json_response, both.xml_response):
        assert_language(response, "fr")
    assert {s["service_code"]: s for s in both.json} == expected_services(translated, "fr")
    # Untranslated texts stay as written (English): GRAFFITI's description, POTHOLE's keywords.
    graffiti = next(s for s in both.json if s["service_code"] == "GRAFFITI")
    assert graffiti["description"] == "Graffiti on public property."
    definition = await fetch_both(client, "services/POTHOLE", params={"locale": "fr"})
    assert_language(definition.json_response, "fr")
    assert definition.json["attributes"] == expected_attributes(translated, "POTHOLE", "fr")
    size = next(a for a in definition.json["attributes"] if a["code"] == "SIZE")
    assert [v["name"] for v in size["values"]] == ["Petit", "Grand"]


async def test_french_catalogue_with_accept_language_and_the_fallback_chain(
    client: httpx.AsyncClient, translated: Seed
) -> None:
    headers = {"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"}
    both = await fetch_both(client, "services", headers=headers)
    for response in (both.json_response, both.xml_response):
        assert_language(response, "fr-CA")
    # fr-CA's name, fr's other texts, English where neither translates.
    expected = expected_services(translated, "fr-CA", "fr")
    assert {s["service_code"]: s for s in both.json} == expected
    pothole = expected["POTHOLE"]
    assert pothole["service_name"] == "Nid-de-poule (Canada)"
    assert pothole["description"] == "Trou dans la chaussée."
    assert pothole["keywords"] == "road, pavement, hole"
    # A Canadian French caller asking only for fr-CA of a catalogue with only "fr" gets fr.
    only_fr = await fetch_both(client, "services/GRAFFITI", params={"locale": "fr-BE"})
    assert_language(only_fr.json_response, "fr")
    # The locale parameter wins over the header.
    english = await fetch_both(client, "services", params={"locale": "en"}, headers=headers)
    assert_language(english.json_response, "en")
    assert {s["service_code"]: s for s in english.json} == expected_services(translated)


async def test_a_language_not_on_offer_gets_the_catalogues_own(
    client: httpx.AsyncClient, translated: Seed
) -> None:
    plain = await fetch_both(client, "services")
    for params, headers in (
        ({"locale": "de"}, None),
        (None, {"Accept-Language": "de-DE, it;q=0.5"}),
        (None, {"Accept-Language": "*"}),
        (None, {"Accept-Language": "fr;q=0, en"}),
        ({"locale": " "}, None),  # blank: not given
    ):
        other = await fetch_both(client, "services", params=params, headers=headers)
        assert_language(other.json_response, "en")
        assert other.json_response.content == plain.json_response.content
        assert other.xml_response.content == plain.xml_response.content


async def test_english_answers_are_unchanged_byte_for_byte(
    client: httpx.AsyncClient, seeded: Seed, tmp_path: Path
) -> None:
    """What a caller asking for no language got before any translation, it still gets."""
    paths = ["services", *(f"services/{s['service_code']}" for s in seeded.catalog["services"])]
    before = {}
    for path in paths:
        both = await fetch_both(client, path)
        assert_language(both.json_response, "en")
        before[path] = (both.json_response.content, both.xml_response.content)
    unknown = await fetch_both(client, "services/NOPE", expect=404)
    await translate_catalog(client, seeded, tmp_path)
    for path in paths:
        for headers in (None, {"Accept-Language": "en-US,en;q=0.9"}):
            both = await fetch_both(client, path, headers=headers)
            assert (both.json_response.content, both.xml_response.content) == before[path]
    again = await fetch_both(client, "services/NOPE", expect=404)
    assert again.json_response.content == unknown.json_response.content
    assert again.xml_response.content == unknown.xml_response.content
    assert error_descriptions(again.json) == [
        "service_code 'NOPE' is not a service of this jurisdiction."
    ]
    assert_language(again.json_response, "en")


async def test_errors_in_french(client: httpx.AsyncClient, seeded: Seed) -> None:
    cases: list[tuple[str, dict[str, str] | None, dict[str, str] | None, int, str]] = [
        (
            "services/NOPE",
            {"locale": "fr"},
            None,
            404,
            "service_code 'NOPE' n'est pas un service de cette juridiction.",
        ),
        (
            "services/NOPE",
            None,
            {"Accept-Language": "fr-CA, en;q=0.5"},
            404,
            "service_code 'NOPE' n'est pas un service de cette juridiction.",
        ),
        (
            "services",
            {"jurisdiction_id": "nowhere.example"},
            {"Accept-Language": "fr"},
            404,
            "jurisdiction_id 'nowhere.example' : cette juridiction n'est pas servie ici.",
        ),
        (
            "services",
            {"locale": "fr", "jurisdiction_id": ["a.example", "b.example"]},  # type: ignore[dict-item]
            None,
            400,
            "jurisdiction_id a été donné plus d'une fois avec des valeurs différentes.",
        ),
        (
            "nothing-here",
            {"locale": "fr"},
            None,
            404,
            "Ressource inexistante. Le document de découverte (discovery) donne les méthodes de "
            "ce point d'accès.",
        ),
    ]
    for path, params, headers, status, french in cases:
        both = await fetch_both(client, path, params=params, headers=headers, expect=status)
        assert error_descriptions(both.json) == [french], path
        assert both.xml_root == "errors"
        assert [e["description"] for e in both.xml] == [french]
        assert_language(both.xml_response, "fr")
    # An unknown format suffix is a 404 in XML, in French too.
    response = await client.get("/open311/v2/services.txt", headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    root, value = xml_to_value(response.content)
    assert root == "errors"
    assert [e["description"] for e in value] == [
        "Format inconnu : terminez le chemin de la ressource par .xml ou .json."
    ]


async def test_locale_must_be_a_language_tag(client: httpx.AsyncClient, seeded: Seed) -> None:
    for value in ("not a tag", "fr-", "x" * 40, "  fr-CA" + " " * 30):
        both = await fetch_both(client, "services", params={"locale": value}, expect=400)
        shown = value if len(value) <= 35 else value[:35] + "..."
        assert error_descriptions(both.json) == [
            f"locale: {shown!r} is not a language tag (e.g. fr or fr-CA)."
        ]
        assert_language(both.json_response, "en")
    # The header still picks the language of that error.
    french = await fetch_both(
        client, "services", params={"locale": "?"}, headers={"Accept-Language": "fr"}, expect=400
    )
    assert error_descriptions(french.json) == [
        "locale : '?' n'est pas une étiquette de langue (p. ex. fr ou fr-CA)."
    ]
    twice = await fetch_both(
        client, "services", params=[("locale", "fr"), ("locale", "en")], expect=400
    )
    # The error itself is in the first language named.
    assert error_descriptions(twice.json) == [
        "locale a été donné plus d'une fois avec des valeurs différentes."
    ]
    # An underscore is read as a hyphen; case does not matter.
    both = await fetch_both(client, "services", params={"locale": "FR_ca"})
    assert_language(both.json_response, "en")  # no French catalogue here: its own language
