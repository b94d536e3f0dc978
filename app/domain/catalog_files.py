"""Service catalogue files: JSON catalogues and CSV service lists, checked before import.

A JSON catalogue is ``{"jurisdiction": {...}, "divisions": [...], "services": [...]}`` (as
``app/demo/data/toronto_catalog.json``, attributes included): ``divisions`` (optional) lists
``{"code", "name", "contact"}``; a service may name its ``division`` (a code) and its
``service_levels`` (``"acknowledge=1 business_day; resolve=5 business_days"`` or
``{"resolve": "5 business_days"}``, see ``app.domain.service_levels``). A CSV file has one
service a row (``CSV_COLUMNS``, no attributes; ``division`` and ``service_levels`` cells).
No database here: ``app.domain.catalog_import`` compares and writes.

Every problem is reported at once, with its line (CSV) or its place (JSON). Sizes are
bounded before the work: at most ``MAX_SERVICES`` services, ``MAX_DIVISIONS`` divisions,
``MAX_ATTRIBUTES`` attributes a service and ``MAX_VALUES`` values an attribute.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.domain.divisions import CODE as DIVISION_CODE
from app.domain.divisions import MAX_CONTACT as DIVISION_CONTACT_LIMIT
from app.domain.divisions import MAX_NAME as DIVISION_NAME_LIMIT
from app.domain.problems import ProblemsError
from app.domain.service_levels import (
    ServiceLevelError,
    format_service_levels,
    parse_service_levels,
)
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
    "division",
    "service_levels",
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
MAX_SERVICES = 5000
MAX_DIVISIONS = 200
MAX_ATTRIBUTES = 200
MAX_VALUES = 1000

Kind = Literal["json", "csv"]


class CatalogFileError(ProblemsError):
    """A catalogue file that cannot be imported; ``problems`` say where and why."""


@dataclass(slots=True)
class CatalogueFile:
    """A checked catalogue: its services (``upsert_services`` input, plus ``division`` and
    canonical ``service_levels`` where given) and the divisions it declares."""

    kind: Kind
    services: list[dict[str, Any]]
    divisions: list[dict[str, str | None]] = field(default_factory=list)


def _check_lengths(values: dict[str, object], where: str, problems: list[str]) -> None:
    for name, limit in SERVICE_LIMITS.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            problems.append(f"{where}: {name} is longer than {limit} characters")


def _check_division(value: object, where: str, problems: list[str]) -> str | None:
    """A service's division code (lower case), or None; a problem when it is not one."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or DIVISION_CODE.fullmatch(value.strip().lower()) is None:
        problems.append(
            f"{where}: division {str(value)[:40]!r} is not a division code (letters, digits, "
            "'-' and '_', e.g. pfr)"
        )
        return None
    return value.strip().lower()


def _check_levels(value: object, where: str, problems: list[str]) -> str | None:
    """Service levels in canonical text ("" for none), or None after a problem."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str | dict):
        problems.append(f"{where}: service_levels is a string or an object")
        return None
    try:
        return format_service_levels(parse_service_levels(value))
    except ServiceLevelError as exc:
        problems.extend(f"{where}: service_levels: {problem}" for problem in exc.problems)
        return None


def _decode(data: bytes | str, name: str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogFileError(
            [f"{name} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8 or JSON"]
        ) from exc


def parse_services_csv(data: bytes | str, name: str = "the file") -> list[dict[str, Any]]:
    """Services from CSV text (header row of CSV_COLUMNS); every problem with its line."""
    text = _decode(data, name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise CatalogFileError([f"{name} is empty: expected a header row"])
        names = [h.strip().lower() for h in header]
        problems: list[str] = []
        unknown = [n for n in names if n not in CSV_COLUMNS]
        if unknown:
            problems.append(
                f"line 1: unknown column(s) {', '.join(repr(n[:40]) for n in unknown[:10])}; "
                f"the columns are {', '.join(CSV_COLUMNS)} (attributes are imported from JSON "
                "only)"
            )
        for required in ("service_code", "service_name"):
            if required not in names:
                problems.append(f"line 1: the column {required!r} is missing")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"line 1: column(s) {', '.join(repeated)} appear twice")
        if problems:
            raise CatalogFileError(problems)
        services: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(services) >= MAX_SERVICES:
                raise CatalogFileError([f"{name} has more than {MAX_SERVICES} services"])
            if len(row) != len(names):
                fields = f"{len(row)} field{'s' if len(row) != 1 else ''}"
                problems.append(f"line {line}: {fields}, but the header has {len(names)}")
                continue
            values: dict[str, Any] = {
                column: (cell.strip() or None) for column, cell in zip(names, row, strict=True)
            }
            code, title = values.get("service_code"), values.get("service_name")
            if code is None:
                problems.append(f"line {line}: service_code is empty")
            if title is None:
                problems.append(f"line {line}: service_name is empty")
            kind = str(values.get("type") or "realtime").lower()
            if kind not in SERVICE_TYPES:
                problems.append(
                    f"line {line}: type {values['type']!r} is not one of {', '.join(SERVICE_TYPES)}"
                )
            values["type"] = kind
            _check_lengths(values, f"line {line}", problems)
            if "division" in values:
                values["division"] = _check_division(values["division"], f"line {line}", problems)
            if "service_levels" in values:
                values["service_levels"] = _check_levels(
                    values["service_levels"], f"line {line}", problems
                )
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
        raise CatalogFileError([f"{name} has a header but no services"])
    return services


def read_services_csv(path: Path) -> list[dict[str, Any]]:
    """Services from a CSV file (header row of CSV_COLUMNS); every problem with its line."""
    return parse_services_csv(path.read_bytes(), path.name)


def _check_divisions(value: object, problems: list[str]) -> list[dict[str, str | None]]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append('"divisions" must be a list of {"code": .., "name": ..}')
        return []
    if len(value) > MAX_DIVISIONS:
        problems.append(f'"divisions" lists more than {MAX_DIVISIONS} divisions')
        return []
    out: list[dict[str, str | None]] = []
    codes: set[str] = set()
    for index, item in enumerate(value):
        where = f"divisions[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object")
            continue
        unknown = set(item) - {"code", "name", "contact"}
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        code = _check_division(item.get("code"), where, problems)
        if code is None and item.get("code") in (None, ""):
            problems.append(f"{where}: code is missing")
        name, contact = item.get("name"), item.get("contact")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: name is missing or empty")
        elif len(name.strip()) > DIVISION_NAME_LIMIT:
            problems.append(f"{where}: name is longer than {DIVISION_NAME_LIMIT} characters")
        if contact is not None and (
            not isinstance(contact, str) or len(contact) > DIVISION_CONTACT_LIMIT
        ):
            problems.append(f"{where}: contact is text of at most {DIVISION_CONTACT_LIMIT}")
        if code is not None:
            if code in codes:
                problems.append(f"{where}: division {code!r} appears twice")
            codes.add(code)
            if isinstance(name, str) and name.strip():
                out.append(
                    {
                        "code": code,
                        "name": name.strip(),
                        "contact": contact.strip() or None if isinstance(contact, str) else None,
                    }
                )
    return out


def parse_catalogue_json(data: bytes | str, name: str = "the file") -> CatalogueFile:
    """A JSON catalogue ({"divisions": [...], "services": [...]}), checked."""
    text = _decode(data, name)
    try:
        catalogue = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogFileError(
            [f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
        ) from exc
    if not isinstance(catalogue, dict) or not isinstance(catalogue.get("services"), list):
        raise CatalogFileError(
            [
                f'{name}: expected an object with a "services" list (the format of '
                "app/demo/data/toronto_catalog.json)"
            ]
        )
    return check_catalogue(catalogue, name)


def check_catalogue(catalogue: dict[str, Any], name: str = "the catalogue") -> CatalogueFile:
    """A decoded JSON catalogue, checked: every problem at once."""
    listed = catalogue["services"]
    if len(listed) > MAX_SERVICES:
        raise CatalogFileError([f"{name} has more than {MAX_SERVICES} services"])
    problems: list[str] = []
    divisions = _check_divisions(catalogue.get("divisions"), problems)
    for index, service in enumerate(listed):
        where = f"services[{index}]"
        if not isinstance(service, dict):
            problems.append(f"{where}: expected an object")
            continue
        code = service.get("service_code")
        if isinstance(code, str | int) and not isinstance(code, bool) and str(code).strip():
            where += f" ({str(code)[:64]})"
        else:
            problems.append(f"{where}: service_code is missing or empty")
        if not isinstance(service.get("service_name"), str) or not service["service_name"]:
            problems.append(f"{where}: service_name is missing or empty")
        if service.get("type", "realtime") not in SERVICE_TYPES:
            problems.append(
                f"{where}: type {str(service.get('type'))[:40]!r} is not one of "
                f"{', '.join(SERVICE_TYPES)}"
            )
        _check_lengths(service, where, problems)
        if "division" in service:
            service["division"] = _check_division(service["division"], where, problems)
        if "service_levels" in service:
            service["service_levels"] = _check_levels(service["service_levels"], where, problems)
        attributes = service.get("attributes", [])
        if not isinstance(attributes, list):
            problems.append(f"{where}: attributes must be a list")
            continue
        if len(attributes) > MAX_ATTRIBUTES:
            problems.append(f"{where}: more than {MAX_ATTRIBUTES} attributes")
            continue
        for number, attribute in enumerate(attributes):
            _check_attribute(attribute, f"{where}.attributes[{number}]", problems)
    if problems:
        raise CatalogFileError(problems)
    try:
        check_catalog(catalogue, name)
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogFileError([str(exc).removeprefix(f"{name}: ")]) from exc
    if not listed:
        raise CatalogFileError([f'{name}: the "services" list is empty'])
    return CatalogueFile("json", listed, divisions)


def _check_attribute(attribute: object, at: str, problems: list[str]) -> None:
    if not isinstance(attribute, dict):
        problems.append(f"{at}: expected an object")
        return
    if not isinstance(attribute.get("code"), str | int) or not str(attribute["code"]):
        problems.append(f"{at}: code is missing or empty")
    if attribute.get("datatype") not in DATATYPES:
        problems.append(
            f"{at}: datatype {str(attribute.get('datatype'))[:40]!r} is not one of "
            f"{', '.join(DATATYPES)}"
        )
    if not isinstance(attribute.get("order"), int):
        problems.append(f"{at}: order must be an integer (1, 2, ...)")
    values = attribute.get("values") or []
    if not isinstance(values, list) or len(values) > MAX_VALUES:
        problems.append(f"{at}: values must be a list of at most {MAX_VALUES}")
    elif not all(isinstance(v, dict) and "key" in v and "name" in v for v in values):
        problems.append(f'{at}: values must be a list of {{"key": .., "name": ..}}')


def read_services_json(path: Path) -> list[dict[str, Any]]:
    """Services from a JSON catalogue ({"services": [...]}, as the demo's), checked."""
    return parse_catalogue_json(path.read_bytes(), path.name).services


def read_catalogue_file(path: Path, kind: Kind) -> CatalogueFile:
    """A catalogue file of either kind, checked (``CatalogFileError`` lists the problems)."""
    if kind == "csv":
        return CatalogueFile("csv", read_services_csv(path))
    return parse_catalogue_json(path.read_bytes(), path.name)


def parse_catalogue(data: bytes | str, kind: Kind, name: str = "the file") -> CatalogueFile:
    """A catalogue sent as text (the admin API's import), checked."""
    if kind == "csv":
        return CatalogueFile("csv", parse_services_csv(data, name))
    return parse_catalogue_json(data, name)


def check_catalog(catalog: dict[str, Any], where: str) -> dict[str, Any]:
    """A decoded catalogue checked for consistency (codes, types, attribute orders, values)."""
    codes: set[str] = set()
    for service in catalog["services"]:
        code = str(service["service_code"])
        if code in codes:
            raise ValueError(f"{where}: service_code {code!r} appears twice")
        codes.add(code)
        if service.get("type", "realtime") not in SERVICE_TYPES:
            raise ValueError(f"{where}: service {code}: bad type {service.get('type')!r}")
        orders = [a["order"] for a in service.get("attributes", [])]
        if len(orders) != len(set(orders)) or any(o < 1 for o in orders):
            raise ValueError(f"{where}: service {code}: attribute orders must be unique and >= 1")
        for attribute in service.get("attributes", []):
            has_values = bool(attribute.get("values"))
            if (attribute["datatype"] in LIST_DATATYPES) != has_values:
                raise ValueError(
                    f"{where}: {code}/{attribute['code']}: values go with list datatypes only"
                )
    return catalog


def read_catalog(path: Path) -> dict[str, Any]:
    """A catalogue file (jurisdiction + services with attributes), checked for consistency."""
    catalog: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return check_catalog(catalog, str(path))
