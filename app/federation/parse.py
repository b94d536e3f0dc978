"""Tolerant readers of partner GeoReport v2 documents (JSON and XML).

Real endpoints have quirks: numeric codes (Toronto's ``30102``), non-ISO datetimes
(San Francisco's ``2012-05-22 23:57:23.97``), ``lat``/``long`` of 0.0 for "unknown", null
coordinates, a ``{"service_requests": [...]}`` wrapper, XML namespaces and ``xsi:nil``. Each
reader normalises what it can and skips items it cannot use; a document of the wrong shape
(HTML, invalid XML, a DOCTYPE/XXE payload, JSON that is not a GeoReport list) raises
``UpstreamBadResponse``. XML is parsed only with ``app.georeport.codec.decode_xml``, which
refuses DTDs and never expands entities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from app.federation.errors import UpstreamBadResponse
from app.georeport.codec import decode_json, decode_xml
from app.georeport.datetimes import parse_w3c
from app.georeport.models import DATATYPES, LIST_DATATYPES, SERVICE_TYPES

# Column limits of our tables: longer partner text is cut, never refused.
LIMITS = {
    "service_code": 255,
    "service_name": 255,
    "description": 4000,
    "keywords": 1000,
    "group": 255,
    "status_notes": 4000,
    "agency_responsible": 255,
    "service_notice": 1000,
    "address": 1000,
    "address_id": 255,
    "zipcode": 32,
    "media_url": 2048,
    "code": 255,
    "datatype_description": 1000,
    "service_request_id": 255,
    "token": 255,
}


def decode(data: bytes, fmt: str) -> tuple[str | None, Any]:
    """``(xml root or None, value)`` of a partner body; 502 when it is not JSON/XML."""
    try:
        if fmt == "xml":
            # No leaf converters: every leaf stays text and is converted tolerantly here.
            return decode_xml(data, types={})
        return None, decode_json(data)
    except ValueError as exc:
        raise UpstreamBadResponse(
            f"The partner's {fmt.upper()} could not be parsed: {exc}"
        ) from exc


def text(value: Any, limit: int | None = None) -> str | None:
    """Text or None: numbers become text, empty or whitespace-only is None."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    if not out:
        return None
    return out[:limit] if limit else out


def boolean(value: Any, default: bool) -> bool:
    """A tolerant boolean (true/false, 1/0, JSON booleans)."""
    if isinstance(value, bool):
        return value
    lowered = (text(value) or "").lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return default


def number(value: Any) -> float | None:
    """A finite float or None."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def when(value: Any, tz: tzinfo) -> datetime | None:
    """A datetime from W3C text, or leniently from ISO-like text (naive means ``tz``)."""
    raw = text(value)
    if raw is None:
        return None
    try:
        return parse_w3c(raw, tz)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _items(value: Any, wrapper: str, what: str) -> list[Any]:
    if isinstance(value, dict) and isinstance(value.get(wrapper), list):
        value = value[wrapper]
    if not isinstance(value, list):
        raise UpstreamBadResponse(f"The partner's {what} is not a list.")
    return value


def _each(
    items: list[Any], read: Callable[[dict[str, Any]], dict[str, Any] | None], what: str
) -> list[dict[str, Any]]:
    out = [r for r in (read(i) for i in items if isinstance(i, dict)) if r is not None]
    if items and not out:
        raise UpstreamBadResponse(f"None of the partner's {len(items)} {what} could be read.")
    return out


def _root(root: str | None, expected: str) -> None:
    if root is not None and root != expected:
        raise UpstreamBadResponse(f"The partner answered <{root}> where <{expected}> was expected.")


def services(data: bytes, fmt: str) -> list[dict[str, Any]]:
    """GET services: normalised service dicts (``upsert_services`` input without attributes)."""
    root, value = decode(data, fmt)
    _root(root, "services")
    return _each(_items(value, "services", "service list"), _service, "services")


def _service(item: dict[str, Any]) -> dict[str, Any] | None:
    code = text(item.get("service_code"), LIMITS["service_code"])
    if code is None:
        return None
    kind = (text(item.get("type")) or "realtime").lower()
    keywords = item.get("keywords")
    if isinstance(keywords, list):
        keywords = ", ".join(t for t in (text(k) for k in keywords) if t)
    return {
        "service_code": code,
        "service_name": text(item.get("service_name"), LIMITS["service_name"]) or code,
        "description": text(item.get("description"), LIMITS["description"]),
        "metadata": boolean(item.get("metadata"), False),
        "type": kind if kind in SERVICE_TYPES else "realtime",
        "keywords": text(keywords, LIMITS["keywords"]),
        "group": text(item.get("group"), LIMITS["group"]),
        "attributes": [],
    }


def definition(data: bytes, fmt: str) -> list[dict[str, Any]]:
    """GET services/{code}: the attributes, normalised (orders made unique, values checked)."""
    root, value = decode(data, fmt)
    _root(root, "service_definition")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        raise UpstreamBadResponse("The partner's service definition is not an object.")
    raw = value.get("attributes") or []
    if not isinstance(raw, list):
        raise UpstreamBadResponse("The partner's service definition has no attribute list.")
    out: list[dict[str, Any]] = []
    used: set[int] = set()
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            continue
        code = text(item.get("code"), LIMITS["code"])
        if code is None or any(a["code"] == code for a in out):
            continue
        datatype = (text(item.get("datatype")) or "string").lower()
        datatype = datatype if datatype in DATATYPES else "string"
        order = number(item.get("order"))
        position = int(order) if order is not None and order >= 1 else index
        while position in used:
            position += 1
        used.add(position)
        values = None
        if datatype in LIST_DATATYPES:
            values = [
                {"key": key, "name": text(v.get("name"), 255) or key}
                for v in item.get("values") or []
                if isinstance(v, dict) and (key := text(v.get("key"), 255)) is not None
            ]
        out.append(
            {
                "code": code,
                "variable": boolean(item.get("variable"), True),
                "datatype": datatype,
                "required": boolean(item.get("required"), False),
                "datatype_description": text(
                    item.get("datatype_description"), LIMITS["datatype_description"]
                ),
                "order": position,
                "description": text(item.get("description"), LIMITS["description"]) or "",
                "values": values or None,
            }
        )
    return out


def requests(data: bytes, fmt: str, tz: tzinfo) -> list[dict[str, Any]]:
    """GET requests (or requests/{id}): normalised request dicts; unusable items skipped."""
    root, value = decode(data, fmt)
    _root(root, "service_requests")
    return _each(
        _items(value, "service_requests", "request list"),
        lambda item: _request(item, tz),
        "requests",
    )


def _request(item: dict[str, Any], tz: tzinfo) -> dict[str, Any] | None:
    partner_id = text(item.get("service_request_id"), LIMITS["service_request_id"])
    code = text(item.get("service_code"), LIMITS["service_code"])
    if partner_id is None or code is None:
        return None
    status = (text(item.get("status")) or "open").lower()
    lat, lon = number(item.get("lat")), number(item.get("long"))
    if (
        lat is None
        or lon is None
        or (lat == 0.0 and lon == 0.0)
        or not (-90 <= lat <= 90 and -180 <= lon <= 180)
    ):
        lat = lon = None
    requested = when(item.get("requested_datetime"), tz)
    return {
        "partner_request_id": partner_id,
        "service_code": code,
        "service_name": text(item.get("service_name"), LIMITS["service_name"]) or code,
        "status": "closed" if status == "closed" else "open",
        "status_notes": text(item.get("status_notes"), LIMITS["status_notes"]),
        "description": text(item.get("description"), LIMITS["description"]),
        "agency_responsible": text(item.get("agency_responsible"), LIMITS["agency_responsible"]),
        "service_notice": text(item.get("service_notice"), LIMITS["service_notice"]),
        "requested_at": requested,
        "updated_at": when(item.get("updated_datetime"), tz) or requested,
        "expected_at": when(item.get("expected_datetime"), tz),
        "address": text(item.get("address"), LIMITS["address"]),
        "address_id": text(item.get("address_id"), LIMITS["address_id"]),
        "zipcode": text(item.get("zipcode"), LIMITS["zipcode"]),
        "lat": lat,
        "lon": lon,
        "media_url": text(item.get("media_url"), LIMITS["media_url"]),
    }


def created(data: bytes, fmt: str) -> tuple[str | None, str | None]:
    """POST requests: ``(partner id, partner token)``, either may be None."""
    root, value = decode(data, fmt)
    _root(root, "service_requests")
    if isinstance(value, dict) and isinstance(value.get("service_requests"), list):
        value = value["service_requests"]
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, dict):
        raise UpstreamBadResponse("The partner's answer to POST requests is not a request list.")
    return (
        text(value.get("service_request_id"), LIMITS["service_request_id"]),
        text(value.get("token"), LIMITS["token"]),
    )


def token(data: bytes, fmt: str) -> str | None:
    """GET tokens/{token}: the partner's request id once it exists."""
    partner_id, _ = created(data, fmt)
    return partner_id


def errors(data: bytes, fmt: str) -> list[str] | None:
    """The descriptions of a GeoReport errors document, or None when it is not one."""
    try:
        root, value = decode(data, fmt)
    except UpstreamBadResponse:
        return None
    if root not in (None, "errors") or not isinstance(value, list) or not value:
        return None
    out = [
        text(item.get("description"), 500) or "error"
        for item in value
        if isinstance(item, dict) and ("description" in item or "code" in item)
    ]
    return out or None
