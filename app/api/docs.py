"""The OpenAPI document: both media types with schemas, every status, examples, links.

Every GeoReport response is documented twice with the same schema: as ``application/json``
and as ``text/xml``, the latter with OpenAPI ``xml`` annotations (root element, wrapped arrays,
item elements). The array annotations come from the codec's own container table, so the
documented XML cannot drift from what ``encode_xml`` writes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api import examples
from app.georeport.codec import CONTAINER_ITEMS, encode_xml
from app.georeport.models import Error

JSON_MEDIA = "application/json"
XML_MEDIA = "text/xml"

ERROR_SUMMARY: dict[int, str] = {
    400: "Invalid input",
    403: "Missing or invalid api_key",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    422: "Idempotency-Key reused",
    429: "Over the rate limit",
    500: "Server error",
    502: "Bad partner answer",
    503: "Unavailable",
    504: "Partner timeout",
}
ERROR_TEXT: dict[int, str] = {
    400: "Invalid input: one `error` per problem, naming the parameter or `attribute[CODE]`; "
    "also `jurisdiction_id` missing on a multi-jurisdiction server.",
    403: "`api_key` missing, unknown or revoked.",
    404: "Unknown `jurisdiction_id` or resource. A path without a `.xml`/`.json` suffix is a 404 "
    "too, answered in XML.",
    409: "The request conflicts with stored data.",
    413: "Request body over 1 MiB (10 MiB for multipart/form-data).",
    422: "The Idempotency-Key was used before with a different request.",
    429: "Over the rate limit of the api_key (or, without one, of the client address); "
    "retry after the seconds in `Retry-After`.",
    500: "Unexpected server error; the details are logged, never sent.",
    502: "A partner jurisdiction (federation) answered something that is not a GeoReport document.",
    503: "The database is unreachable, the server is at capacity or a partner jurisdiction is "
    "down; retry after the seconds in `Retry-After`.",
    504: "A partner jurisdiction (federation) did not answer in time.",
}
# Every operation can meet these; they are added to each route's own error statuses.
ALWAYS = (404, 429, 500, 503)

Example = tuple[str, Any]  # (summary, GeoReport document as a JSON value)

# JSON examples by digest, to restore the nulls FastAPI strips (see _restore_examples).
_EXAMPLE_ID = "x-open311-example"
_KEPT: dict[str, Any] = {}


def _keep(value: Any) -> str:
    key = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
    _KEPT[key] = copy.deepcopy(value)
    return key


# Wire models the responses refer to; their schemas become components of the document.
_MODELS: dict[str, type[BaseModel]] = {}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    _MODELS.setdefault(model.__name__, model)
    assert _MODELS[model.__name__] is model, f"two models named {model.__name__}"  # noqa: S101 - invariant, not an input check
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _element(model: type[BaseModel]) -> str:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict), f"{model.__name__} names no XML element"  # noqa: S101 - invariant, not an input check
    xml = extra["xml"]
    assert isinstance(xml, dict)  # noqa: S101 - invariant, not an input check
    return str(xml["name"])


def document_schemas(
    model: type[BaseModel], root: str, *, many: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON and the XML schema of a document whose root element is ``root``.

    A list document is a wrapped array (``<services><service>…``); JSON drops the root.
    """
    if many:
        assert CONTAINER_ITEMS[root] == _element(model), (root, model.__name__)  # noqa: S101 - invariant, not an input check
        json_schema: dict[str, Any] = {"type": "array", "items": _ref(model)}
        return json_schema, {**json_schema, "xml": {"name": root, "wrapped": True}}
    assert _element(model) == root, (root, model.__name__)  # noqa: S101 - invariant, not an input check
    return _ref(model), _ref(model)


def _content(
    model: type[BaseModel], root: str, many: bool, named: dict[str, Example]
) -> dict[str, Any]:
    json_schema, xml_schema = document_schemas(model, root, many=many)
    json_media: dict[str, Any] = {"schema": json_schema}
    xml_media: dict[str, Any] = {"schema": xml_schema}
    if named:
        json_media["examples"] = {
            name: {"summary": summary, "value": value, _EXAMPLE_ID: _keep(value)}
            for name, (summary, value) in named.items()
        }
        xml_media["examples"] = {
            name: {"summary": summary, "value": encode_xml(root, value).decode("utf-8")}
            for name, (summary, value) in named.items()
        }
    return {JSON_MEDIA: json_media, XML_MEDIA: xml_media}


def error_response(status: int, *, xml: bool = True) -> dict[str, Any]:
    """The OpenAPI response of a GeoReport error document with this HTTP status."""
    example = examples.ERRORS.get(status)
    named = {f"error{status}": (ERROR_SUMMARY[status], example)} if example else {}
    content = _content(Error, "errors", True, named)
    if not xml:
        del content[XML_MEDIA]
    response: dict[str, Any] = {"description": ERROR_TEXT[status], "content": content}
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response


def documented(*parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """``openapi_extra`` listing the query parameters a route reads by hand (a copy each).

    FastAPI appends these to the parameters it documents; :func:`build_openapi` then puts
    every parameter in FastAPI's own order (path, query, header, cookie)."""
    return {"parameters": copy.deepcopy(list(parameters)), **extra}


# FastAPI's order of parameters: by location, declaration order within one.
_PLACES = {"path": 0, "query": 1, "header": 2, "cookie": 3}


def responses(
    model: type[BaseModel],
    *,
    root: str,
    many: bool,
    errors: tuple[int, ...],
    description: str,
    examples: dict[str, Example] | None = None,
    links: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: 200 in XML and JSON plus its GeoReport errors."""
    ok: dict[str, Any] = {
        "description": description,
        "content": _content(model, root, many, examples or {}),
    }
    if headers:
        ok["headers"] = headers
    if links:
        ok["links"] = links
    out: dict[int | str, dict[str, Any]] = {200: ok}
    for status in sorted({*errors, *ALWAYS}):
        out[status] = error_response(status)
    return out


def json_responses(
    model: type[BaseModel],
    *,
    many: bool,
    errors: tuple[int, ...],
    description: str,
    status: int = 200,
    example: Any = None,
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a JSON-only route (the admin API): its document plus its errors,
    which are GeoReport error lists in JSON like everywhere else."""
    schema = {"type": "array", "items": _ref(model)} if many else _ref(model)
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["examples"] = {
            "example": {"summary": description, "value": example, _EXAMPLE_ID: _keep(example)}
        }
    out: dict[int | str, dict[str, Any]] = {
        status: {"description": description, "content": {JSON_MEDIA: media}}
    }
    for code in sorted({*errors, *ALWAYS}):
        out[code] = error_response(code, xml=False)
    return out


# ---------------------------------------------------------------------------------------
# The whole document


def _annotate_containers(schema: Any) -> None:
    """Mark every array property named after a codec container as a wrapped XML array."""
    if isinstance(schema, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if name not in CONTAINER_ITEMS:
                continue
            branches = prop.get("anyOf", [prop])
            for branch in branches:
                if branch.get("type") == "array":
                    branch["xml"] = {"name": name, "wrapped": True}
                    items = branch["items"]
                    if "$ref" not in items:
                        items["xml"] = {"name": CONTAINER_ITEMS[name]}
        for value in schema.values():
            _annotate_containers(value)
    elif isinstance(schema, list):
        for value in schema:
            _annotate_containers(value)


def _drop_null_branch(schema: dict[str, Any]) -> dict[str, Any]:
    # An optional query parameter is absent, never null: ``str | None`` documents as a string.
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1 and len(kept) < len(branches):
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "title")}
            return {**kept[0], **rest}
    return {k: v for k, v in schema.items() if k != "title"}


def _restore_examples(schema: Any) -> None:
    # FastAPI drops every null from the declared responses, but GeoReport examples show their
    # nulls (every field is always present): put back each JSON example as declared.
    if isinstance(schema, dict):
        if _EXAMPLE_ID in schema:
            schema["value"] = copy.deepcopy(_KEPT[schema.pop(_EXAMPLE_ID)])
        for value in schema.values():
            _restore_examples(value)
    elif isinstance(schema, list):
        for value in schema:
            _restore_examples(value)


def build_openapi(app: FastAPI, *, success_status_code: int = 200) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app (stable for a given code and settings)."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        license_info=app.license_info,
        contact=app.contact,
        external_docs=getattr(app, "openapi_external_docs", None),
    )
    for path_item in document["paths"].values():
        for operation in path_item.values():
            # FastAPI documents its own 422; every validation failure here is a GeoReport 400.
            if "HTTPValidationError" in json.dumps(operation["responses"].get("422", {})):
                del operation["responses"]["422"]
            parameters = operation.get("parameters", [])
            parameters.sort(key=lambda parameter: _PLACES[parameter["in"]])
            for parameter in parameters:
                parameter["schema"] = _drop_null_branch(parameter["schema"])
            if success_status_code != 200 and operation["operationId"] == "requests-create":
                operation["responses"] = {
                    str(success_status_code) if status == "200" else status: response
                    for status, response in operation["responses"].items()
                }
    _restore_examples(document["paths"])
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    _, definitions = models_json_schema(
        [(model, "serialization") for _, model in sorted(_MODELS.items())],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in definitions.get("$defs", {}).items():
        assert components.setdefault(name, schema) == schema, f"two schemas named {name}"  # noqa: S101 - invariant, not an input check
    _annotate_containers(components)
    document["components"]["schemas"] = dict(sorted(components.items()))
    return document


def render_openapi(document: dict[str, Any]) -> str:
    """The committed form of the document: indented JSON, UTF-8 text, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def install(app: FastAPI, *, success_status_code: int) -> None:
    """Serve :func:`build_openapi` at ``app.openapi_url`` (computed once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, success_status_code=success_status_code)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
