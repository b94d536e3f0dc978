"""The raw database path: a bare ASGI app on an asyncpg pool, replaying our exact SQL.

It serves the statements captured from the app (``bench.capture``) with the same bound
values, and renders the rows with ``orjson.dumps([dict(row) ...])``: the floor of what any
Python server can do for the same database work.

- ``GET /list``         the list SELECT (``requests.json`` with the bench filters)
- ``GET /get/{id}``     the single-row SELECT (``requests/{id}.json``)
- ``POST /insert``      the INSERT our POST sends, ward lookup included (form body: lat, long,
  description), one statement, autocommit
- ``POST /insert_noward`` the same INSERT our POST sends when the jurisdiction has no ward set

Configuration: ``BENCH_RAW_CONFIG`` (JSON written by the harness) and ``BENCH_RAW_DSN``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson

from bench.capture import bind, load_params

_CONFIG: dict[str, Any] = json.loads(Path(os.environ["BENCH_RAW_CONFIG"]).read_text())
_DSN = os.environ["BENCH_RAW_DSN"]
_POOL_SIZE = int(os.environ.get("BENCH_RAW_POOL", "10"))


class Statement:
    """One captured statement and its parameters."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.sql: str = entry["sql"]
        self.params: list[Any] = load_params(entry["params"])
        self.template: list[str] = entry.get("template", [])
        self.tolerance = float(os.environ.get("BENCH_WARD_TOLERANCE_M", "5.0"))

    def bind(self, form: dict[str, str]) -> list[Any]:
        return bind(
            self.template,
            self.params,
            float(form["lat"]),
            float(form["long"]),
            form.get("description"),
            self.tolerance,
        )


LIST = Statement(_CONFIG["list"])
GET = Statement(_CONFIG["get"])
GET_ID_INDEX = int(_CONFIG["get"]["id_index"])
INSERT = Statement(_CONFIG["insert"])
INSERT_NOWARD = Statement(_CONFIG["insert_noward"])
_pool: asyncpg.Pool | None = None

JSON_HEADERS = [(b"content-type", b"application/json")]


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Return connections to the pool without asyncpg's reset query (a round trip): every
    request is one statement in autocommit, so there is no session state to reset."""


async def _send(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI entry point."""
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(
                    _DSN, min_size=_POOL_SIZE, max_size=_POOL_SIZE, reset=_no_reset
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert _pool is not None
    path: str = scope["path"]
    if path == "/list":
        rows = await _pool.fetch(LIST.sql, *LIST.params)
        await _send(send, 200, orjson.dumps([dict(r) for r in rows]))
    elif path.startswith("/get/"):
        params = list(GET.params)
        params[GET_ID_INDEX] = int(path[5:].split(".")[0])
        row = await _pool.fetchrow(GET.sql, *params)
        if row is None:
            await _send(send, 404, b'{"error":"not found"}')
        else:
            await _send(send, 200, orjson.dumps([dict(row)]))
    elif path in ("/insert", "/insert_noward") and scope["method"] == "POST":
        form = dict(parse_qsl((await _read_body(receive)).decode()))
        statement = INSERT if path == "/insert" else INSERT_NOWARD
        pk = await _pool.fetchval(statement.sql, *statement.bind(form))
        if pk is None:
            await _send(send, 400, b'{"error":"outside"}')
        else:
            await _send(send, 200, orjson.dumps([{"service_request_id": str(pk)}]))
    else:
        await _send(send, 404, b'{"error":"no route"}')
