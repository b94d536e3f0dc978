"""Service catalogue files: JSON catalogues and CSV service lists, checked before import.

A JSON catalogue is ``{"jurisdiction": {...}, "services": [...]}`` (as
``app/demo/data/toronto_catalog.json``, attributes included); a CSV file has one service a
row (``CSV_COLUMNS``, no attributes). No database here: ``app.domain.catalog_import`` writes.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from app.georeport.models import DATATYPES, LIST_DATATYPES, SERVICE_TYPES

CSV_COLUMNS = (
    "service_code",
    "service_name",
    "description",
    "type",
    "keywords",
    "group",
    "agency_responsible",
    "service_notice",
)
# Longest values the service_type columns hold (app/store/tables/service_type.py).
SERVICE_LIMITS = {
    "service_code": 255,
    "service_name": 255,
    "description": 4000,
    "keywords": 1000,
    "group": 255,
    "agency_responsible": 255,
    "service_notice": 1000,
}


class CatalogFileError(Exception):
    """A catalogue file that cannot be imported; ``problems`` say where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _check_lengths(values: dict[str, object], where: str, problems: list[str]) -> None:
    for name, limit in SERVICE_LIMITS.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            problems.append(f"{where}: {name} is longer than {limit} characters")


def read_services_csv(path: Path) -> list[dict[str, object]]:
    """Services from a CSV file (header row of CSV_COLUMNS); every problem with its line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogFileError(
            [f"{path.name} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8"]
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise CatalogFileError([f"{path.name} is empty: expected a header row"])
        names = [h.strip().lower() for h in header]
        problems: list[str] = []
        unknown = [n for n in names if n not in CSV_COLUMNS]
        if unknown:
            problems.append(
                f"line 1: unknown column(s) {', '.join(repr(n) for n in unknown)}; the columns "
                f"are {', '.join(CSV_COLUMNS)} (attributes are imported from JSON only)"
            )
        for required in ("service_code", "service_name"):
            if required not in names:
                problems.append(f"line 1: the column {required!r} is missing")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"line 1: column(s) {', '.join(repeated)} appear twice")
        if problems:
            raise CatalogFileError(problems)
        services: list[dict[str, object]] = []
        seen: dict[str, int] = {}
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                fields = f"{len(row)} field{'s' if len(row) != 1 else ''}"
                problems.append(f"line {line}: {fields}, but the header has {len(names)}")
                continue
            values: dict[str, object] = {
                name: (cell.strip() or None) for name, cell in zip(names, row, strict=True)
            }
            code, name = values.get("service_code"), values.get("service_name")
            if code is None:
                problems.append(f"line {line}: service_code is empty")
            if name is None:
                problems.append(f"line {line}: service_name is empty")
            kind = str(values.get("type") or "realtime").lower()
            if kind not in SERVICE_TYPES:
                problems.append(
                    f"line {line}: type {values['type']!r} is not one of {', '.join(SERVICE_TYPES)}"
                )
            values["type"] = kind
            _check_lengths(values, f"line {line}", problems)
            if isinstance(code, str):
                if code in seen:
                    problems.append(
                        f"line {line}: service_code {code!r} is already on line {seen[code]}"
                    )
                seen[code] = line
            services.append(values)
    except csv.Error as exc:
        raise CatalogFileError([f"line {reader.line_num}: {exc}"]) from exc
    if problems:
        raise CatalogFileError(problems)
    if not services:
        raise CatalogFileError([f"{path.name} has a header but no services"])
    return services


def read_services_json(path: Path) -> list[dict[str, object]]:
    """Services from a JSON catalogue ({"services": [...]}, as the demo's), checked."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CatalogFileError([f"{path.name} is not UTF-8 text (byte {exc.start})"]) from exc
    except json.JSONDecodeError as exc:
        raise CatalogFileError(
            [f"{path.name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise CatalogFileError(
            [
                f'{path.name}: expected an object with a "services" list (the format of '
                "app/demo/data/toronto_catalog.json)"
            ]
        )
    problems: list[str] = []
    for index, service in enumerate(data["services"]):
        where = f"services[{index}]"
        if not isinstance(service, dict):
            problems.append(f"{where}: expected an object")
            continue
        code = service.get("service_code")
        if isinstance(code, str | int) and str(code).strip():
            where += f" ({code})"
        else:
            problems.append(f"{where}: service_code is missing or empty")
        if not isinstance(service.get("service_name"), str) or not service["service_name"]:
            problems.append(f"{where}: service_name is missing or empty")
        if service.get("type", "realtime") not in SERVICE_TYPES:
            problems.append(
                f"{where}: type {service.get('type')!r} is not one of {', '.join(SERVICE_TYPES)}"
            )
        _check_lengths(service, where, problems)
        attributes = service.get("attributes", [])
        if not isinstance(attributes, list):
            problems.append(f"{where}: attributes must be a list")
            continue
        for number, attribute in enumerate(attributes):
            at = f"{where}.attributes[{number}]"
            if not isinstance(attribute, dict):
                problems.append(f"{at}: expected an object")
                continue
            if not isinstance(attribute.get("code"), str | int) or not str(attribute["code"]):
                problems.append(f"{at}: code is missing or empty")
            if attribute.get("datatype") not in DATATYPES:
                problems.append(
                    f"{at}: datatype {attribute.get('datatype')!r} is not one of "
                    f"{', '.join(DATATYPES)}"
                )
            if not isinstance(attribute.get("order"), int):
                problems.append(f"{at}: order must be an integer (1, 2, ...)")
            values = attribute.get("values") or []
            if not isinstance(values, list) or not all(
                isinstance(v, dict) and "key" in v and "name" in v for v in values
            ):
                problems.append(f'{at}: values must be a list of {{"key": .., "name": ..}}')
    if problems:
        raise CatalogFileError(problems)
    try:
        services: list[dict[str, object]] = read_catalog(path)["services"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogFileError([str(exc).removeprefix(f"{path}: ")]) from exc
    if not services:
        raise CatalogFileError([f'{path.name}: the "services" list is empty'])
    return services


def read_catalog(path: Path) -> dict[str, Any]:
    """A catalogue file (jurisdiction + services with attributes), checked for consistency."""
    catalog: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    codes: set[str] = set()
    for service in catalog["services"]:
        code = str(service["service_code"])
        if code in codes:
            raise ValueError(f"{path}: service_code {code!r} appears twice")
        codes.add(code)
        if service.get("type", "realtime") not in SERVICE_TYPES:
            raise ValueError(f"{path}: service {code}: bad type {service.get('type')!r}")
        orders = [a["order"] for a in service.get("attributes", [])]
        if len(orders) != len(set(orders)) or any(o < 1 for o in orders):
            raise ValueError(f"{path}: service {code}: attribute orders must be unique and >= 1")
        for attribute in service.get("attributes", []):
            has_values = bool(attribute.get("values"))
            if (attribute["datatype"] in LIST_DATATYPES) != has_values:
                raise ValueError(
                    f"{path}: {code}/{attribute['code']}: values go with list datatypes only"
                )
    return catalog
