"""Strict multipart/form-data reading for POST requests.

Starlette's parser falls back to Latin-1 for undecodable text fields; GeoReport data is UTF-8,
so text parts that are not valid UTF-8 are refused here instead of being stored garbled.

File parts are photos (``media``, one part per file). Their count and size are bounded while
the parser walks the body: the first part beyond ``FileLimits.max_files``, or a part that
passes ``max_file_bytes``, stops the parse with a 400 before anything is decoded. A file part
under another name, or any file part where the route or the server takes none (``files``
None), is a 400 too: an upload is never dropped without a word.
"""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import BadRequest
from app.media.errors import InvalidMedia, Rejection

Params = list[tuple[str, str]]
# The name of the file parts that carry photos.
MEDIA_FIELD = "media"


@dataclass(frozen=True, slots=True)
class FileLimits:
    """How many file parts a body may carry, and how large each may be."""

    max_files: int
    max_file_bytes: int


@dataclass(frozen=True, slots=True)
class Form:
    """The text fields of a multipart body, in order, and its files (bytes, in order)."""

    params: Params
    files: list[bytes]


class FilesRefused(BadRequest):
    """400: a file part where none is taken."""


def parse_multipart(
    body: bytes,
    content_type_header: str,
    max_fields: int,
    files: FileLimits | None = None,
    *,
    refusal: str = "This call takes no files.",
) -> Form:
    """Text fields (strictly UTF-8, repeated names kept) and ``media`` files of a body.

    ``files``: the bounds of the accepted files (None: every file part is refused with
    ``refusal``)."""
    _, options = parse_options_header(content_type_header)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary.")

    items: Params = []
    uploads: list[bytes] = []
    headers: dict[bytes, bytes] = {}
    field = bytearray()
    chunks: list[bytes] = []
    # The part being read: None until its headers end; then whether it is a file.
    is_file: list[bool] = [False]
    size = [0]

    def on_part_begin() -> None:
        headers.clear()
        chunks.clear()
        is_file[0] = False
        size[0] = 0

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        key = bytes(field).lower()
        headers[key] = headers.get(key, b"") + data[start:end]

    def on_header_end() -> None:
        field.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        if b"filename" not in disposition:
            return
        is_file[0] = True
        if files is None:
            raise FilesRefused(refusal)
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if name != MEDIA_FIELD:
            raise FilesRefused(
                f"File part {name[:40]!r} is not accepted: photos go in {MEDIA_FIELD!r} parts."
            )
        if len(uploads) >= files.max_files:
            raise InvalidMedia(
                Rejection.TOO_MANY_FILES,
                f"media: more than {files.max_files} files sent; at most {files.max_files} "
                "per request.",
            )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        size[0] += end - start
        if is_file[0] and files is not None and size[0] > files.max_file_bytes:
            raise InvalidMedia(
                Rejection.TOO_LARGE,
                f"media file {len(uploads) + 1} is larger than {files.max_file_bytes} bytes, "
                "the most accepted.",
            )
        chunks.append(data[start:end])

    def on_part_end() -> None:
        if is_file[0]:
            uploads.append(b"".join(chunks))
            return
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
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
            "on_headers_finished": on_headers_finished,
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
    return Form(items, uploads)
