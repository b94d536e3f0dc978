"""Discovery, GET Service List and GET Service Definition, in both formats, on both backends.

Also the format suffix rules (case-insensitive ``.json``/``.xml``; anything else, or nothing,
is a 404 with an XML ``errors`` document) and empty optional parameters behaving as absent.
Expected values come from the catalogue the tests store (``tests/data/catalog.json``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.domain.catalog_import import upsert_jurisdiction
from app.domain.discovery import (
    AREAS_SPECIFICATION,
    DETAILS_SPECIFICATION,
    GEOJSON_SPECIFICATION,
    SEARCH_SPECIFICATION,
    WHERE_SPECIFICATION,
)
from app.settings import DiscoverySettings
from tests.conftest import AppFactory, Seed, engine_of, seed_catalog
from tests.support import (
    JSON_TYPE,
    W3C,
    XML_TYPE,
    error_descriptions,
    fetch_both,
    validate_schema,
    xml_to_value,
)

BASE = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
DISCOVERY_FIELDS = ["changeset", "contact", "key_service", "endpoints", "max_page_size", "locales"]
ENDPOINT_FIELDS = ["specification", "url", "changeset", "type", "formats"]
SERVICE_FIELDS = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
]
ATTRIBUTE_FIELDS = [
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
]
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
LIST_DATATYPES = {"singlevaluelist", "multivaluelist"}
CATALOG_CODES = ["POTHOLE", "GRAFFITI", "FEEDBACK", "LITTER.BIN"]
NO_METADATA_CODES = ["FEEDBACK", "LITTER.BIN"]


# --------------------------------------------------------------------------- helpers


def now_seconds() -> datetime:
    """The current UTC time, truncated to whole seconds (discovery changesets have no fraction)."""
    return datetime.now(UTC).replace(microsecond=0)


def assert_changeset(stamp: Any, not_before: datetime) -> None:
    """A W3C datetime with zone, not before ``not_before`` and not in the future."""
    assert isinstance(stamp, str), stamp
    assert W3C.match(stamp), stamp
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert not_before <= moment <= datetime.now(UTC), (stamp, not_before)


def catalog_service(seed: Seed, code: str) -> dict[str, Any]:
    """The stored catalogue entry of one service."""
    (entry,) = [s for s in seed.catalog["services"] if s["service_code"] == code]
    return entry


def expected_service(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``service`` item a catalogue entry must produce, fields in spec order."""
    return {
        "service_code": entry["service_code"],
        "service_name": entry["service_name"],
        "description": entry["description"],
        "metadata": bool(entry["attributes"]),
        "type": entry["type"],
        "keywords": entry["keywords"],
        "group": entry["group"],
    }


def expected_definition(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``service_definition`` a catalogue entry must produce (attributes by order)."""
    attributes = []
    for attribute in sorted(entry["attributes"], key=lambda a: a["order"]):
        item = {name: attribute[name] for name in ATTRIBUTE_FIELDS}
        if attribute["datatype"] in LIST_DATATYPES:
            item["values"] = [{"key": v["key"], "name": v["name"]} for v in attribute["values"]]
        attributes.append(item)
    return {"service_code": entry["service_code"], "attributes": attributes}


def by_code(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Service items keyed by code (checking codes are unique)."""
    codes = [item["service_code"] for item in items]
    assert len(codes) == len(set(codes)), codes
    return {item["service_code"]: item for item in items}


def xml_root(response: httpx.Response) -> ET.Element:
    """The parsed root element of an XML response."""
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)  # noqa: S314 - parses this server's own response


def assert_xml_errors(response: httpx.Response, status: int) -> list[str]:
    """An XML ``errors`` document with ``status``; its descriptions."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == XML_TYPE
    root, value = xml_to_value(response.content)
    assert root == "errors"
    assert value, "an error document has at least one error"
    for item in value:
        assert list(item) == ["code", "description"], item
        assert item["code"] == str(status)
        assert item["description"]
    return [item["description"] for item in value]


async def store_jurisdiction(client: httpx.AsyncClient, code: str) -> None:
    """A jurisdiction without any service."""
    async with engine_of(client).begin() as conn:
        await upsert_jurisdiction(conn, {"jurisdiction_id": code, "name": f"City {code}"})


# --------------------------------------------------------------------------- discovery


def georeport_endpoints(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The GeoReport v2 endpoints of a discovery document (extensions left out)."""
    return [e for e in document["endpoints"] if e["specification"] == SPECIFICATION]


async def test_discovery_document_in_both_formats(client: httpx.AsyncClient) -> None:
    before = now_seconds()
    seed = await seed_catalog(engine_of(client))

    both = await fetch_both(client, "discovery")  # also checks JSON/XML parity

    assert both.xml_root == "discovery"
    document = both.json
    assert isinstance(document, dict)
    assert list(document) == DISCOVERY_FIELDS
    assert list(both.xml) == DISCOVERY_FIELDS
    assert_changeset(document["changeset"], before)
    assert document["contact"] == seed.catalog["jurisdiction"]["contact"]
    assert document["key_service"] == seed.catalog["jurisdiction"]["key_service"]
    assert isinstance(document["endpoints"], list)
    (endpoint,) = georeport_endpoints(document)
    # Our extensions (areas, ...) are advertised after the GeoReport endpoints, same base URL.
    extensions = [e for e in document["endpoints"] if e["specification"] != SPECIFICATION]
    assert AREAS_SPECIFICATION in [e["specification"] for e in extensions]
    assert WHERE_SPECIFICATION in [e["specification"] for e in extensions]
    assert SEARCH_SPECIFICATION in [e["specification"] for e in extensions]
    assert DETAILS_SPECIFICATION in [e["specification"] for e in extensions]
    (geojson,) = [e for e in extensions if e["specification"] == GEOJSON_SPECIFICATION]
    assert geojson["formats"] == ["application/geo+json"]
    assert all(e["url"] == endpoint["url"] for e in extensions)
    assert document["endpoints"][-len(extensions) :] == extensions
    assert list(endpoint) == ENDPOINT_FIELDS
    assert endpoint["specification"] == SPECIFICATION
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["type"] == "production"
    assert_changeset(endpoint["changeset"], before)
    assert isinstance(endpoint["formats"], list)
    assert {"text/xml", "application/json"} <= set(endpoint["formats"])
    assert both.xml["endpoints"][0]["formats"] == endpoint["formats"]


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://open311.example.org", "https://open311.example.org/open311/v2"),
        ("https://open311.example.org/", "https://open311.example.org/open311/v2"),
        ("https://example.org/city", "https://example.org/city/open311/v2"),
    ],
)
async def test_discovery_url_uses_configured_public_url(
    client: httpx.AsyncClient, make_client: AppFactory, public_url: str, expected: str
) -> None:
    await seed_catalog(engine_of(client))
    configured = await make_client(discovery=DiscoverySettings(public_url=public_url))

    both = await fetch_both(configured, "discovery")

    assert [e["url"] for e in georeport_endpoints(both.json)] == [expected]


async def test_discovery_lists_configured_extra_endpoints(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    before = now_seconds()
    await seed_catalog(engine_of(client))
    sandbox = "https://sandbox.example.org/open311/v2"
    configured = await make_client(
        discovery=DiscoverySettings(extra_endpoints=[{"url": sandbox, "type": "test"}])
    )

    both = await fetch_both(configured, "discovery")

    endpoints = georeport_endpoints(both.json)
    assert [(e["url"], e["type"]) for e in endpoints] == [
        ("http://testserver/open311/v2", "production"),
        (sandbox, "test"),
    ]
    for endpoint in endpoints:
        assert list(endpoint) == ENDPOINT_FIELDS
        assert endpoint["specification"] == SPECIFICATION
        assert_changeset(endpoint["changeset"], before)
        assert isinstance(endpoint["formats"], list)
        assert {"text/xml", "application/json"} <= set(endpoint["formats"])
    assert len(georeport_endpoints(both.xml)) == 2


@pytest.mark.parametrize("jurisdictions", [1, 2])
async def test_discovery_contact_and_key_service(
    client: httpx.AsyncClient, make_client: AppFactory, jurisdictions: int
) -> None:
    seed = await seed_catalog(engine_of(client))
    if jurisdictions == 2:
        await seed_catalog(engine_of(client), code="other.example.org")
    configured = await make_client(
        discovery=DiscoverySettings(contact="Ops desk: ops@example.org", key_service="Mail keys@")
    )

    both = await fetch_both(configured, "discovery")

    if jurisdictions == 1:  # the one city served speaks for itself
        expected = (
            seed.catalog["jurisdiction"]["contact"],
            seed.catalog["jurisdiction"]["key_service"],
        )
    else:  # several cities: the deployment's configured contact
        expected = "Ops desk: ops@example.org", "Mail keys@"
    assert (both.json["contact"], both.json["key_service"]) == expected
    assert (both.xml["contact"], both.xml["key_service"]) == expected


# --------------------------------------------------------------------------- service list


async def test_services_list_matches_catalogue(client: httpx.AsyncClient, seeded: Seed) -> None:
    both = await fetch_both(client, "services")

    assert both.xml_root == "services"
    validate_schema("services", both.json)
    assert isinstance(both.json, list)
    for json_item, xml_item in zip(both.json, both.xml, strict=True):
        assert list(json_item) == SERVICE_FIELDS
        assert list(xml_item) == SERVICE_FIELDS
    services = by_code(both.json)
    assert services == {
        entry["service_code"]: expected_service(entry) for entry in seeded.catalog["services"]
    }
    assert {s["type"] for s in services.values()} == {"realtime", "batch", "blackbox"}
    assert services["GRAFFITI"]["type"] == "batch"
    assert services["FEEDBACK"]["type"] == "blackbox"
    assert services["POTHOLE"]["type"] == "realtime"


async def test_services_unknown_optional_fields_are_null_and_empty_elements(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    entry = catalog_service(seeded, "FEEDBACK")
    unknown = [name for name in ("description", "keywords", "group") if entry[name] is None]
    assert unknown == ["description", "keywords", "group"]

    both = await fetch_both(client, "services")

    item = by_code(both.json)["FEEDBACK"]
    assert all(item[name] is None for name in unknown)
    (element,) = [
        s for s in xml_root(both.xml_response) if s.findtext("service_code") == "FEEDBACK"
    ]
    for name in unknown:
        child = element.find(name)
        assert child is not None, f"<{name}> missing"
        assert not child.text, f"<{name}> has text"
        assert len(child) == 0, f"<{name}> has children"


async def test_services_non_ascii_names_round_trip(client: httpx.AsyncClient, seeded: Seed) -> None:
    name = catalog_service(seeded, "LITTER.BIN")["service_name"]
    assert "Straße" in name

    both = await fetch_both(client, "services")

    assert by_code(both.json)["LITTER.BIN"]["service_name"] == name
    assert by_code(both.xml)["LITTER.BIN"]["service_name"] == name
    assert name.encode("utf-8") in both.xml_response.content


async def test_services_metadata_true_exactly_when_definition_has_attributes(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    listing = await fetch_both(client, "services")
    seen = set()
    for service in listing.json:
        definition = await fetch_both(client, f"services/{service['service_code']}")
        assert service["metadata"] is bool(definition.json["attributes"]), service
        seen.add(service["metadata"])
    assert seen == {True, False}


async def test_services_empty_catalogue(client: httpx.AsyncClient) -> None:
    await store_jurisdiction(client, "empty.example.org")

    both = await fetch_both(client, "services")

    assert both.json == []
    assert both.json_response.content.strip() == b"[]"
    assert (both.xml_root, both.xml) == ("services", [])
    root = xml_root(both.xml_response)
    assert len(root) == 0
    assert not (root.text or "").strip()


# --------------------------------------------------------------------------- definitions


@pytest.mark.parametrize("code", CATALOG_CODES)
async def test_service_definition_matches_catalogue(
    client: httpx.AsyncClient, seeded: Seed, code: str
) -> None:
    both = await fetch_both(client, f"services/{code}")

    assert both.xml_root == "service_definition"
    validate_schema("service-definition", both.json)
    assert list(both.json) == ["service_code", "attributes"]
    assert both.json == expected_definition(catalog_service(seeded, code))


async def test_service_definition_covers_every_datatype(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    both = await fetch_both(client, "services/POTHOLE")

    for attributes in (both.json["attributes"], both.xml["attributes"]):
        assert {a["datatype"] for a in attributes} == DATATYPES
        for attribute in attributes:
            fields = ATTRIBUTE_FIELDS + (
                ["values"] if attribute["datatype"] in LIST_DATATYPES else []
            )
            assert list(attribute) == fields, attribute["code"]
            if attribute["datatype"] in LIST_DATATYPES:
                assert attribute["values"], attribute["code"]
                assert all(list(v) == ["key", "name"] for v in attribute["values"])
    orders = [a["order"] for a in both.json["attributes"]]
    assert all(isinstance(o, int) and o >= 1 for o in orders)
    assert orders == sorted(set(orders))
    note_json = next(a for a in both.json["attributes"] if a["code"] == "NOTE")
    note_xml = next(a for a in both.xml["attributes"] if a["code"] == "NOTE")
    assert note_json["variable"] is False
    assert note_xml["variable"] == "false"
    size = next(a for a in both.json["attributes"] if a["code"] == "SIZE")
    assert (size["variable"], size["required"]) == (True, True)


@pytest.mark.parametrize("code", NO_METADATA_CODES)
async def test_service_definition_without_metadata_has_empty_attributes(
    client: httpx.AsyncClient, seeded: Seed, code: str
) -> None:
    assert catalog_service(seeded, code)["attributes"] == []

    both = await fetch_both(client, f"services/{code}")

    assert both.json == {"service_code": code, "attributes": []}
    validate_schema("service-definition", both.json)
    root = xml_root(both.xml_response)
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == code
    attributes = root.find("attributes")
    assert attributes is not None, "<attributes/> missing"
    assert len(attributes) == 0


@pytest.mark.parametrize("code", ["NOPE", "pothole", "LITTER", "LITTER.BIN.EXTRA"])
async def test_service_definition_unknown_code_is_404(
    client: httpx.AsyncClient, seeded: Seed, code: str
) -> None:
    both = await fetch_both(client, f"services/{code}", expect=404)

    assert both.xml_root == "errors"
    assert error_descriptions(both.json)
    assert [e["code"] for e in both.json] == [404] * len(both.json)
    assert_xml_errors(both.xml_response, 404)


# --------------------------------------------------------------------------- format suffix


@pytest.mark.parametrize(
    ("path", "suffix"),
    [
        ("discovery", "JSON"),
        ("discovery", "Xml"),
        ("services", "Json"),
        ("services", "XML"),
        ("services/POTHOLE", "JSON"),
        ("services/LITTER.BIN", "Xml"),
    ],
)
async def test_format_suffix_is_case_insensitive(
    client: httpx.AsyncClient, seeded: Seed, path: str, suffix: str
) -> None:
    response = await client.get(f"{BASE}/{path}.{suffix}")
    canonical = await client.get(f"{BASE}/{path}.{suffix.lower()}")

    assert response.status_code == 200, response.text[:300]
    assert canonical.status_code == 200
    if suffix.lower() == "json":
        assert response.headers["content-type"] == JSON_TYPE
        assert response.json() == canonical.json()
    else:
        assert response.headers["content-type"] == XML_TYPE
        assert xml_to_value(response.content) == xml_to_value(canonical.content)


@pytest.mark.parametrize(
    "path",
    [
        "services.html",
        "services/POTHOLE.csv",
        "discovery.txt",
        "services.",
        "services",
        "discovery",
        "services/POTHOLE",
        "services/LITTER.BIN",  # the last dot splits off "BIN", which is no format
    ],
)
async def test_unknown_or_missing_suffix_is_404_xml_errors(
    client: httpx.AsyncClient, seeded: Seed, path: str
) -> None:
    response = await client.get(f"{BASE}/{path}")

    assert_xml_errors(response, 404)


# --------------------------------------------------------------------------- empty parameters


@pytest.mark.parametrize("path", ["discovery", "services", "services/POTHOLE"])
async def test_empty_jurisdiction_id_behaves_as_absent(
    client: httpx.AsyncClient, seeded: Seed, path: str
) -> None:
    absent = await fetch_both(client, path)
    empty = await fetch_both(client, path, params={"jurisdiction_id": ""})
    blank = await fetch_both(client, path, params=[("jurisdiction_id", "")] * 2)

    assert empty.json == absent.json == blank.json
    assert empty.xml == absent.xml == blank.xml


async def test_empty_jurisdiction_id_is_missing_in_multi_jurisdiction_mode(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    seed = await seed_catalog(engine_of(client))
    await store_jurisdiction(client, "empty.example.org")
    multi = await make_client(multi_jurisdiction=True)

    absent = await fetch_both(multi, "services", expect=400)
    empty = await fetch_both(multi, "services", params={"jurisdiction_id": ""}, expect=400)
    chosen = await fetch_both(multi, "services", params={"jurisdiction_id": seed.jurisdiction_id})
    other = await fetch_both(multi, "services", params={"jurisdiction_id": "empty.example.org"})

    assert error_descriptions(empty.json) == error_descriptions(absent.json)
    assert [e["code"] for e in empty.json] == [400] * len(empty.json)
    assert empty.xml_root == "errors"
    assert {s["service_code"] for s in chosen.json} == set(CATALOG_CODES)
    assert other.json == []
