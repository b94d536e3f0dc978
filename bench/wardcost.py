"""Where the ward lookup's cost on the bare INSERT goes: PostgreSQL's own CPU per statement.

The throughput ratio "raw INSERT with ÷ without the ward" mixes the database's work with the
raw app's and wrk's on a shared machine. This measures the database alone: one connection runs
four statements, interleaved in rounds, inside a transaction that is rolled back (nothing is
kept), and reads the CPU time of its own PostgreSQL backend from ``/proc/<pid>/schedstat``
before and after each batch (loopback only: the backend must be a process of this machine):

- ``insert_noward``  the INSERT our POST sends when the jurisdiction has no ward set;
- ``insert_fk``      the same INSERT with a constant ``ward_id``: the foreign-key check alone;
- ``insert``         the INSERT our POST sends, ward lookup inside the statement;
- ``lookup``         the ward lookup alone, as a statement of its own.

Points come from the bench's own pool of points inside the wards.
"""

from __future__ import annotations

import asyncio
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.capture import load_params

NAMES = ("insert_noward", "insert_fk", "insert", "lookup")


def with_constant_ward(sql: str, params: list[Any]) -> tuple[str, list[Any]]:
    """The no-ward INSERT with one more column, ``ward_id``, bound to a constant."""
    head, values = sql.split(") VALUES (", 1)
    values, returning = values.rsplit(") RETURNING ", 1)
    number = len(params) + 1
    return (
        f"{head}, ward_id) VALUES ({values}, ${number}::INTEGER) RETURNING {returning}",
        [*params],
    )


def _bind(
    template: list[str], params: list[Any], point: tuple[float, float], tolerance_m: float
) -> list[Any]:
    from app.geo.wards import degrees_for

    lat, lon = point
    now = datetime.now(UTC)
    out: list[Any] = []
    for kind, value in zip(template, params, strict=True):
        if kind == "lat":
            out.append(lat)
        elif kind == "lon":
            out.append(lon)
        elif kind == "deg":
            out.append(degrees_for(tolerance_m, lat))
        elif kind == "now":
            out.append(now)
        else:
            out.append(value)
    return out


def _cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def _run(
    dsn: str,
    captured: dict[str, Any],
    points: list[tuple[float, float]],
    tolerance_m: float,
    rounds: int,
    batch: int,
) -> dict[str, Any] | None:
    conn = await asyncpg.connect(dsn)
    try:
        pid = int(await conn.fetchval("select pg_backend_pid()"))
        try:
            _cpu_ns(pid)
        except OSError:
            return None  # the database is not a process of this machine
        ward_id = int(await conn.fetchval("select min(id) from area"))
        noward = captured["insert_noward"]
        fk_sql, fk_params = with_constant_ward(noward["sql"], load_params(noward["params"]))
        statements = {
            "insert_noward": (noward["sql"], load_params(noward["params"]), noward["template"]),
            "insert_fk": (fk_sql, [*fk_params, ward_id], [*noward["template"], "const"]),
            "insert": (
                captured["insert"]["sql"],
                load_params(captured["insert"]["params"]),
                captured["insert"]["template"],
            ),
            "lookup": (
                captured["lookup"]["sql"],
                load_params(captured["lookup"]["params"]),
                captured["lookup"]["template"],
            ),
        }
        prepared = {name: await conn.prepare(sql) for name, (sql, _, _) in statements.items()}
        per_call: dict[str, list[float]] = {name: [] for name in statements}
        transaction = conn.transaction()
        await transaction.start()
        try:
            # Warm-up: plans cached (generic after five runs), pages in shared buffers.
            for name, (_, params, template) in statements.items():
                for i in range(20):
                    await prepared[name].fetchval(*_bind(template, params, points[i], tolerance_m))
            at = 0
            for _ in range(rounds):
                for name, (_, params, template) in statements.items():
                    calls = [
                        _bind(template, params, points[(at + i) % len(points)], tolerance_m)
                        for i in range(batch)
                    ]
                    statement = prepared[name]
                    before = _cpu_ns(pid)
                    for arguments in calls:
                        await statement.fetchval(*arguments)
                    per_call[name].append((_cpu_ns(pid) - before) / batch / 1000.0)
                at += batch
        finally:
            await transaction.rollback()
    finally:
        await conn.close()
    medians = {name: statistics.median(values) for name, values in per_call.items()}
    noward = per_call["insert_noward"]

    def paired(name: str) -> float:
        # Each round's statements ran back to back: their ratio within the round does not
        # move when the machine's speed drifts between rounds.
        return statistics.median(v / b - 1.0 for v, b in zip(per_call[name], noward, strict=True))

    return {
        "rounds": rounds,
        "batch": batch,
        "us": {
            name: {"median": medians[name], "min": min(values), "max": max(values)}
            for name, values in per_call.items()
        },
        "vs_noward": {name: paired(name) for name in ("insert_fk", "insert", "lookup")},
    }


def breakdown(
    dsn: str,
    captured: dict[str, Any],
    points: list[tuple[float, float]],
    tolerance_m: float,
    rounds: int = 30,
    batch: int = 100,
) -> dict[str, Any] | None:
    """Server CPU per statement (µs), or None when the backend's CPU time is not readable."""
    return asyncio.run(_run(dsn, captured, points, tolerance_m, rounds, batch))
