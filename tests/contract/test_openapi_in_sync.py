"""The committed OpenAPI document is exactly what the app serves at /openapi.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute

from app.api.docs import render_openapi
from app.main import create_app
from app.settings import RequestsSettings, Settings

pytestmark = pytest.mark.contract

COMMITTED = Path(__file__).parents[2] / "openapi" / "openapi.json"
REGENERATE = "regenerate it with: open311 openapi --output openapi/openapi.json"


async def test_committed_document_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    served = response.json()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == served, f"openapi/openapi.json is stale; {REGENERATE}"
    # Byte for byte: the file is the deterministic rendering of the document.
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi(served), REGENERATE


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/open311/v2/")
        for method, operation in item.items()
    ]


def test_every_operation_documents_both_formats_and_its_errors() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    operations = _operations(document)
    assert {op["operationId"] for _, _, op in operations} >= {
        "discovery-get",
        "services-list",
        "services-definition",
        "requests-create",
        "requests-list",
        "requests-get",
        "tokens-get",
        "jurisdictions-list",
        "jurisdictions-get",
    }
    for path, method, operation in operations:
        label = f"{method.upper()} {path}"
        if path in NOT_GEOREPORT_FORMATS or path.startswith(REPORTS):
            continue  # test_geojson_and_media_operations, test_report_operations
        if path == EXPORTS:
            continue  # test_exports_operation
        assert path.endswith(".{format}"), label
        (format_parameter,) = [p for p in operation["parameters"] if p["name"] == "format"]
        assert format_parameter["in"] == "path"
        assert document["components"]["schemas"]["Format"]["enum"] == ["xml", "json"]
        responses = operation["responses"]
        # No FastAPI validation answer: every invalid request is a GeoReport 400.
        assert "HTTPValidationError" not in json.dumps(responses), label
        assert {"200", "404", "500"} <= set(responses), label
        for status, response in responses.items():
            if status == "304":
                # A conditional GET's answer (HTTP caching): no body, the validators.
                assert "content" not in response, label
                assert {"ETag", "Last-Modified", "Cache-Control"} <= set(response["headers"])
                assert set(response["headers"]) <= set(responses["200"]["headers"]), label
                continue
            content = response["content"]
            assert set(content) == {"application/json", "text/xml"}, (label, status)
            xml_schema = content["text/xml"]["schema"]
            assert xml_schema.get("xml") or "$ref" in xml_schema, (label, status)
            if status != "200":
                assert xml_schema["xml"] == {"name": "errors", "wrapped": True}, (label, status)
                assert xml_schema["items"] == {"$ref": "#/components/schemas/Error"}
        ok = responses["200"]["content"]
        assert ok["application/json"]["examples"], label
        for name, example in ok["text/xml"]["examples"].items():
            assert example["value"].startswith('<?xml version="1.0" encoding="utf-8"?>'), name


# Routes of the API whose answer is not a GeoReport document in XML or JSON: their own media
# type (GeoJSON, images), errors still GeoReport documents.
NOT_GEOREPORT_FORMATS = {
    "/open311/v2/areas.geojson": ("application/geo+json",),
    "/open311/v2/media/{key}": ("image/jpeg", "image/png", "image/webp"),
    "/open311/v2/requests.geojson": ("application/geo+json",),
    "/open311/v2/requests/{service_request_id}.geojson": ("application/geo+json",),
}
# Those answered with HTTP caching (a 304 and its validators).
CACHED = {"/open311/v2/areas.geojson", "/open311/v2/media/{key}"}


REPORTS = "/open311/v2/reports/"


def test_report_operations() -> None:
    """The reports answer JSON or CSV; their errors are GeoReport documents (JSON for .json,
    XML for .csv, the rule of every path)."""
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    found = {path: op for path, _, op in _operations(document) if path.startswith(REPORTS)}
    assert set(found) == {
        f"{REPORTS}service-promise.{{format}}",
        f"{REPORTS}key-metrics.{{format}}",
    }
    for path, operation in found.items():
        responses = operation["responses"]
        assert "HTTPValidationError" not in json.dumps(responses), path
        assert set(responses["200"]["content"]) == {"application/json", "text/csv"}, path
        for status, response in responses.items():
            if status != "200":
                assert set(response["content"]) == {"application/json", "text/xml"}, path


def test_geojson_and_media_operations() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    found = {path: op for path, _, op in _operations(document) if path in NOT_GEOREPORT_FORMATS}
    assert set(found) == set(NOT_GEOREPORT_FORMATS)
    for path, operation in found.items():
        responses = operation["responses"]
        assert "HTTPValidationError" not in json.dumps(responses), path
        assert {"200", "404", "500"} <= set(responses), path
        assert tuple(responses["200"]["content"]) == NOT_GEOREPORT_FORMATS[path]
        if path in CACHED:
            assert "304" in responses, path
            assert {"ETag", "Cache-Control"} <= set(responses["200"]["headers"]), path
        for status, response in responses.items():
            if status in ("200", "304"):
                continue
            # GeoJSON's errors are JSON (the suffix names no GeoReport format).
            assert "application/json" in response["content"], (path, status)
            schema = response["content"]["application/json"]["schema"]
            assert schema["items"] == {"$ref": "#/components/schemas/Error"}, (path, status)


def test_admin_api_documents_its_answers_and_json_errors() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    admin = [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        if path.startswith("/admin/v1/")
        for method, operation in item.items()
    ]
    assert len(admin) == 20
    for label, operation in admin:
        responses = operation["responses"]
        successes = [s for s in responses if s.startswith("2")]
        assert len(successes) == 1, label
        # What it creates is a 201; everything else (changes, imports) a 200.
        assert successes == (
            ["201"]
            if label.startswith("POST")
            and operation["operationId"]
            not in (
                "admin-keys-revoke",
                "admin-sandbox-reset",
                "admin-divisions-update",
                "admin-services-move",
                "admin-services-levels",
                "admin-catalog-import",
            )
            else ["200"]
        )
        ok = responses[successes[0]]["content"]["application/json"]
        assert "$ref" in ok["schema"] or "$ref" in ok["schema"]["items"], label
        assert ok["examples"], label
        assert {"403", "404", "429", "500", "503"} <= set(responses), label
        for status, response in responses.items():
            assert set(response["content"]) == {"application/json"}, (label, status)
            if not status.startswith("2"):
                schema = response["content"]["application/json"]["schema"]
                assert schema["items"] == {"$ref": "#/components/schemas/Error"}, label


def test_post_documents_form_fields_statuses_and_links() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    post = document["paths"]["/open311/v2/requests.{format}"]["post"]
    assert {"400", "403", "404", "413", "500"} <= set(post["responses"])
    body = post["requestBody"]["content"]
    assert set(body) == {"application/x-www-form-urlencoded", "multipart/form-data"}
    form = body["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["api_key", "service_code"]
    assert list(form["patternProperties"]) == [r"^attribute\[[^\]]+\](\[\])?$"]
    links = post["responses"]["200"]["links"]
    assert links["GetServiceRequest"]["operationId"] == "requests-get"
    assert links["GetToken"]["operationId"] == "tokens-get"


def test_xml_names_follow_the_codec() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    assert schemas["Service"]["xml"] == {"name": "service"}
    assert schemas["ServiceRequest"]["xml"] == {"name": "request"}
    assert schemas["Discovery"]["properties"]["endpoints"]["xml"] == {
        "name": "endpoints",
        "wrapped": True,
    }
    formats = schemas["Endpoint"]["properties"]["formats"]
    assert formats["items"]["xml"] == {"name": "format"}
    values = schemas["Attribute"]["properties"]["values"]
    assert values["xml"] == {"name": "values", "wrapped": True}
    assert schemas["AttributeValue"]["xml"] == {"name": "value"}


def test_post_success_status_follows_the_settings() -> None:
    settings = Settings(requests=RequestsSettings(success_status_code=201))
    post = create_app(settings).openapi()["paths"]["/open311/v2/requests.{format}"]["post"]
    assert "201" in post["responses"]
    assert "200" not in post["responses"]
    assert post["responses"]["201"]["links"]["GetServiceRequest"]["operationId"] == "requests-get"


def test_no_route_declares_a_query_parameter_it_does_not_read() -> None:
    """Query parameters are decoded once (``app.api.deps.query_params``) and read from there
    with one rule for repeated keys: no route or dependency declares one to FastAPI, which
    would parse it a second time with its own rule (the last value wins). The document lists
    them by hand (``app.api.docs.documented``)."""
    from app.api import deps
    from app.api.router import MODULES
    from app.api.routes import admin

    declared: list[str] = []

    def walk(dependant: Any, where: str) -> None:
        declared.extend(f"{where}: {field.alias}" for field in dependant.query_params)
        for sub in dependant.dependencies:
            walk(sub, where)

    modules = (*MODULES, admin)
    for module in modules:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            walk(route.dependant, f"{sorted(route.methods)} {route.path}")
    walk(get_dependant(path="/", call=deps.read_access), "read_access")
    assert declared == []
    documented = {
        (path, parameter["name"])
        for path, item in create_app().openapi()["paths"].items()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
    }
    assert ("/open311/v2/requests.{format}", "page_size") in documented


EXPORTS = "/open311/v2/exports/requests.{format}"


def test_exports_operation() -> None:
    """The exports: their own formats (CSV, GeoJSON, NDJSON), errors as JSON documents."""
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    operation = document["paths"][EXPORTS]["get"]
    (format_parameter,) = [p for p in operation["parameters"] if p["name"] == "format"]
    assert format_parameter["in"] == "path"
    assert document["components"]["schemas"]["ExportFormat"]["enum"] == [
        "csv",
        "geojson",
        "ndjson",
    ]
    names = {p["name"] for p in operation["parameters"]}
    assert {"service_code", "status", "start_date", "ward", "jurisdiction_id"} <= names
    assert not names & {"page", "page_size", "cursor"}
    responses = operation["responses"]
    assert "HTTPValidationError" not in json.dumps(responses)
    assert set(responses["200"]["content"]) == {
        "text/csv",
        "application/geo+json",
        "application/x-ndjson",
    }
    for status in ("400", "404", "429", "500", "503"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema["items"] == {"$ref": "#/components/schemas/Error"}, status
