"""The community GeoReport v2 JSON Schemas (open311/schema-validation), shipped in ``schemas/``.

See ``schemas/README.md`` for their provenance, licence (CC BY 3.0) and the two adjustments
made here: item schemas get ``"type": "object"``, and the Swagger POST/token definitions let
each property be null (the spec's own POST example has ``"account_id": null``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_KINDS = ("services", "service-definition", "requests", "post", "token")


class SchemaUnavailable(RuntimeError):
    """The ``jsonschema`` package or the schema files are not installed."""


def _read(name: str) -> dict[str, Any]:
    path = resources.files("app.conformance") / "schemas" / "georeport-v2" / name
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:  # a wheel built without the package data
        raise SchemaUnavailable(f"the schema file {name} is not installed") from exc
    return data


def _object(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", **schema}


def _nullable_definition(name: str) -> dict[str, Any]:
    definition = _read("swagger.json")["definitions"][name]
    properties = {
        key: {"anyOf": [{k: v for k, v in prop.items() if k != "format"}, {"type": "null"}]}
        for key, prop in definition["properties"].items()
    }
    return {"type": "object", "properties": properties}


@cache
def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema a JSON body of this kind must satisfy."""
    if kind == "services":
        return {"type": "array", "items": _object(_read("service.json"))}
    if kind == "requests":
        return {"type": "array", "items": _object(_read("request.json"))}
    if kind == "service-definition":
        return _object(_read("service-definition.json"))
    if kind == "post":
        return {"type": "array", "items": _nullable_definition("RequestResponse")}
    if kind == "token":
        return {"type": "array", "items": _nullable_definition("TokenResponse")}
    raise ValueError(f"unknown schema kind {kind!r}")


def schema_problems(kind: str, value: Any, limit: int = 4) -> list[str]:
    """Where ``value`` breaks the schema for ``kind`` (empty when it is valid)."""
    try:
        from jsonschema import Draft4Validator
    except ImportError as exc:  # jsonschema is a dev dependency of the server
        raise SchemaUnavailable(
            "the jsonschema package is not installed (pip install jsonschema)"
        ) from exc
    validator = Draft4Validator(schema_for(kind), format_checker=Draft4Validator.FORMAT_CHECKER)
    problems = []
    for error in sorted(
        validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        where = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        problems.append(f"{where}: {error.message[:160]}")
        if len(problems) >= limit:
            break
    return problems
