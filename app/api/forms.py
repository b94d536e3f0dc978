"""Strict multipart/form-data reading for POST requests.

Starlette's parser falls back to Latin-1 for undecodable text fields; GeoReport data is UTF-8,
so text parts that are not valid UTF-8 are refused here instead of being stored garbled.
File parts are skipped (media is referenced by ``media_url``).
"""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import BadRequest

Params = list[tuple[str, str]]


def parse_multipart(body: bytes, content_type_header: str, max_fields: int) -> Params:
    """Text fields of a multipart body, strictly UTF-8, in order (repeated names kept)."""
    _, options = parse_options_header(content_type_header)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary.")

    items: Params = []
    state: dict[str, object] = {"headers": {}, "field": b"", "data": []}

    def on_part_begin() -> None:
        state["headers"] = {}
        state["data"] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] = state["field"] + data[start:end]  # type: ignore[operator]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        headers = state["headers"]
        assert isinstance(headers, dict)  # noqa: S101 - invariant, not an input check
        key = bytes(state["field"]).lower()  # type: ignore[call-overload]
        headers[key] = headers.get(key, b"") + data[start:end]

    def on_header_end() -> None:
        state["field"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunks = state["data"]
        assert isinstance(chunks, list)  # noqa: S101 - invariant, not an input check
        chunks.append(data[start:end])

    def on_part_end() -> None:
        headers = state["headers"]
        chunks = state["data"]
        assert isinstance(headers, dict)  # noqa: S101 - invariant, not an input check
        assert isinstance(chunks, list)  # noqa: S101 - invariant, not an input check
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        if b"filename" in disposition:
            return
        if len(items) >= max_fields:
            raise BadRequest(f"The request body has more than {max_fields} fields.")
        try:
            name = disposition.get(b"name", b"").decode("utf-8")
            value = b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("The request body is not valid UTF-8.") from exc
        items.append((name, value))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except BadRequest:
        raise
    except Exception as exc:
        raise BadRequest("The multipart body is malformed.") from exc
    return items
