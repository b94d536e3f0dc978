"""GeoReport v2 documents <-> XML and JSON, following the wiki's "Spark" convention.

A document is ``(root, value)``: ``value`` is a ``list`` when the root is a container
(``services``, ``service_requests``, ``errors``...) and a ``dict`` otherwise (``discovery``,
``service_definition``). Inside, a ``list`` value under key ``k`` is the container element
``<k>`` holding repeated ``<CONTAINER_ITEMS[k]>`` children; ``None`` is an empty element
(JSON ``null``); booleans are ``true``/``false``. JSON drops the root and keeps the rest as is,
so both formats carry the same content by construction.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import orjson
from lxml import etree

XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'

# Container element -> name of its repeated child element.
CONTAINER_ITEMS: dict[str, str] = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "service_request_updates": "request_update",
    "groups": "group",
    "notes": "note",
    "media_urls": "media_url",
    "photos": "photo",
    "areas": "area",
    "jurisdictions": "jurisdiction",
    "webhooks": "webhook",
    "deliveries": "delivery",
    "resources": "resource",
    "locales": "locale",
}

# XML 1.0 forbids these code points even when escaped; they never reach the output.
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# A carriage return is written as a character reference: XML parsers normalise a literal one.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


class JSONText(str):
    """Text that already is JSON (e.g. a GeoJSON geometry).

    JSON output embeds it as a value; XML output carries it as element text.
    """


def _json_default(value: Any) -> Any:
    if isinstance(value, JSONText):
        return orjson.Fragment(str(value).encode("utf-8"))
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# Anything that needs work: markup characters, CR, or characters XML 1.0 cannot carry.
_NEEDS_WORK = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def escape_text(text: str) -> str:
    """XML-escape element text; characters XML 1.0 cannot carry become U+FFFD."""
    if not _NEEDS_WORK.search(text):
        return text  # the common case: nothing to escape
    if _INVALID_XML_CHARS.search(text):
        text = _INVALID_XML_CHARS.sub("\ufffd", text)
    return text.translate(_ESCAPES)


def _refuse_number(value: float) -> float:
    raise ValueError("non-finite number in a GeoReport document")


def _scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            _refuse_number(value)
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return escape_text(str(value))


@functools.cache
def _tags(name: str) -> tuple[str, str, str]:
    return f"<{name}>", f"</{name}>", f"<{name}/>"


def _write(out: list[str], name: str, value: Any) -> None:
    if value is None or value == "":
        out.append(f"<{name}/>")
    elif isinstance(value, dict):
        out.append(f"<{name}>")
        # Fast path for the common leaves (text, numbers); containers recurse.
        search = _NEEDS_WORK.search
        for key, child in value.items():
            kind = child.__class__
            if kind is str:
                opening, closing, empty = _tags(key)
                if not child:
                    out.append(empty)
                else:
                    text = escape_text(child) if search(child) else child
                    out.append(f"{opening}{text}{closing}")
            elif kind is float and math.isfinite(child):
                opening, closing, _ = _tags(key)
                out.append(f"{opening}{child!r}{closing}")
            elif child is None:
                out.append(_tags(key)[2])
            else:
                _write(out, key, child)
        out.append(f"</{name}>")
    elif isinstance(value, list | tuple):
        if not value:
            out.append(f"<{name}/>")
            return
        item = CONTAINER_ITEMS.get(name, "item")
        out.append(f"<{name}>")
        for child in value:
            _write(out, item, child)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_scalar_text(value)}</{name}>")


_NONE = type(None)
# Bytes of the code points XML 1.0 cannot carry below U+0020 (UTF-8 never uses them otherwise).
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
# Every byte that, written by an item writer, shows something needed escaping.
_CHECKED_BYTES = b"<>&\r" + _CONTROL_BYTES
# Element names an item writer may embed in its source (no quotes, braces or spaces).
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


@functools.cache
def _item_writer(
    name: str, keys: tuple[str, ...], kinds: tuple[type, ...]
) -> tuple[Callable[[tuple[Any, ...]], str] | None, int]:
    """A function writing one item whose leaves have these keys and types, unescaped, and the
    number of tags (``<``, and as many ``>``) it writes; (None, 0) for other leaf types.

    The function is one f-string made for these keys and types (e.g. ``f"<request><status>
    {v[1]}</status><status_notes/>..."``), the fastest way CPython has to build the string.
    """
    if not all(_PLAIN_NAME.fullmatch(key) for key in (name, *keys)):
        return None, 0
    pieces = [f"<{name}>"]
    tags = 2
    for at, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
        if kind is _NONE:
            pieces.append(f"<{key}/>")
            tags += 1
        elif kind is str:
            pieces.append(f"<{key}>{{v[{at}]}}</{key}>")
            tags += 2
        elif kind is float:  # x - x is 0.0 exactly when x is finite
            pieces.append(
                f"<{key}>{{v[{at}] if v[{at}] - v[{at}] == 0 else _refuse(v[{at}])!r}}</{key}>"
            )
            tags += 2
        else:
            return None, 0
    pieces.append(f"</{name}>")
    source = "lambda v: f" + repr("".join(pieces))
    writer: Callable[[tuple[Any, ...]], str] = eval(source, {"_refuse": _refuse_number})  # noqa: S307 - compiles source we generate from fixed templates, never input
    return writer, tags


def _clean_item(text: str, tags: int) -> bool:
    """A written item needed no escaping: its text added no markup, ``&`` or CR and no
    character XML cannot carry."""
    return (
        text.count("<") == tags
        and text.count(">") == tags
        and "&" not in text
        and "\r" not in text
        and not _INVALID_XML_CHARS.search(text)
    )


def _list_xml(root: str, items: Any) -> bytes:
    """The UTF-8 XML of a list document (e.g. 1000 requests): the hot spot of XML output.

    The items of a list are dicts whose keys and leaf types repeat, so each item is written
    by a function made once per keys and leaf types (``_item_writer``), its text and numbers
    unescaped (a non-finite number is refused there). Then a few C-level scans of the whole
    output prove that nothing needed escaping: no ``<``, ``>``, ``&``, CR or control byte
    beyond the tags and entities written, no lone surrogate (the UTF-8 encoding fails) and
    no U+FFFE or U+FFFF. When the proof fails, each item is checked and the ones that need it
    are written again leaf by leaf, escaped (``_write``), like items with empty text or
    other leaf types (containers, booleans, integers).
    """
    name = CONTAINER_ITEMS[root]
    head, tail = f"{XML_DECLARATION}<{root}>", f"</{root}>"
    parts: list[str] = [head]  # then one per item: parts[i + 1] is items[i]
    append = parts.append
    slow: set[int] = set()  # parts written leaf by leaf (escaped)
    expected = head.count("<") + tail.count("<")  # "<" (and as many ">") the output holds
    escaped = 0  # "&" the output holds (entities written by _write)
    keys: tuple[str, ...] = ()
    writers: dict[tuple[type, ...], tuple[Any, int]] = {}  # for these keys, by leaf types
    for child in items:
        if child.__class__ is dict:
            if tuple(child) != keys:
                keys = tuple(child)
                writers = {}
            values = tuple(child.values())
            kinds = tuple(map(type, values))
            found = writers.get(kinds)
            if found is None:
                found = writers[kinds] = _item_writer(name, keys, kinds)
            writer, writer_tags = found
            if writer is not None and "" not in values:
                append(writer(values))
                expected += writer_tags
                continue
        text = _element(name, child)
        slow.add(len(parts))
        append(text)
        expected += text.count("<")
        escaped += text.count("&")
    append(tail)
    text = "".join(parts)
    # (Looking for U+FFFE in a text made only of narrower characters costs nothing.)
    if "\ufffe" not in text and "\uffff" not in text:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate somewhere
            data = b""
        if data and len(data) - len(data.translate(None, _CHECKED_BYTES)) == 2 * expected + escaped:
            return data
    for at, child in enumerate(items, start=1):
        if at in slow:
            continue
        _, writer_tags = _item_writer(name, tuple(child), tuple(map(type, child.values())))
        if not _clean_item(parts[at], writer_tags):
            parts[at] = _element(name, child)
    return "".join(parts).encode("utf-8")


def _element(name: str, value: Any) -> str:
    out: list[str] = []
    _write(out, name, value)
    return "".join(out)


# Off (``speed.xml_writers``, set per call by the edge): lists are written leaf by leaf by
# ``_write`` like every other document, to measure what the generated writers buy.
generated_writers: ContextVar[bool] = ContextVar("open311_generated_xml_writers", default=True)


def encode_xml(root: str, value: Any) -> bytes:
    """The XML bytes (with declaration, UTF-8) of a document."""
    if isinstance(value, list | tuple):
        if not value:
            return f"{XML_DECLARATION}<{root}/>".encode()
        if generated_writers.get():
            return _list_xml(root, value)
    out = [XML_DECLARATION]
    _write(out, root, value)
    return "".join(out).encode("utf-8")


def encode_json(value: Any) -> bytes:
    """The JSON bytes of a document (the root element is dropped, per Spark)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_SUBCLASS)


# ---------------------------------------------------------------------------------------
# Decoding (federation, conformance checks and tests)

Converter = Callable[[str], Any]


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _to_number(text: str) -> float | int:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        return float(stripped)


# Leaf types for XML decoding: (parent element, child element) or (None, child element).
LEAF_TYPES: dict[tuple[str | None, str], Converter] = {
    (None, "metadata"): _to_bool,
    (None, "variable"): _to_bool,
    (None, "required"): _to_bool,
    (None, "order"): int,
    (None, "lat"): float,
    (None, "long"): float,
    ("error", "code"): _to_number,
}


def _parser() -> etree.XMLParser:
    # No entity expansion, no DTD loading, no network: XXE and entity bombs are inert.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _local(tag: Any) -> str:
    name = str(tag)
    return name.rsplit("}", 1)[-1]  # tolerate a default namespace


def _decode_element(
    element: etree._Element, parent: str | None, types: Mapping[tuple[str | None, str], Converter]
) -> Any:
    name = _local(element.tag)
    children = [c for c in element if isinstance(c.tag, str)]
    if name in CONTAINER_ITEMS and (
        not children or all(_local(c.tag) == CONTAINER_ITEMS[name] for c in children)
    ):
        return [_decode_element(c, name, types) for c in children]
    if children:
        return {_local(c.tag): _decode_element(c, name, types) for c in children}
    text = element.text
    if text is None or text == "":
        return None
    converter = types.get((parent, name)) or types.get((None, name))
    return converter(text) if converter else text


def parse_xml_safely(data: bytes) -> etree._Element:
    """The root element of untrusted XML: entities never expanded, DOCTYPEs refused.

    Raises ``ValueError`` for anything that is not well-formed XML or declares a DOCTYPE.
    """
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ValueError(f"malformed XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise ValueError("XML with a DOCTYPE is not accepted")
    return root


def decode_xml(
    data: bytes, types: Mapping[tuple[str | None, str], Converter] = LEAF_TYPES
) -> tuple[str, Any]:
    """Parse GeoReport XML into ``(root, value)`` with the same shape ``encode_xml`` takes.

    Raises ``ValueError`` for anything that is not well-formed XML or declares entities.
    """
    root = parse_xml_safely(data)
    name = _local(root.tag)
    value = _decode_element(root, None, types)
    if name in CONTAINER_ITEMS and not isinstance(value, list):
        value = [value] if value else []
    return name, value


def decode_json(data: bytes) -> Any:
    """Parse GeoReport JSON."""
    return orjson.loads(data)
