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
from pathlib import Path
from typing import Any

import asyncpg

from bench.capture import SENTINEL_DESCRIPTION, bind, load_params


def with_constant_ward(sql: str, count: int) -> str:
    """The no-ward INSERT (``count`` parameters) with one more column, ``ward_id``, bound to
    one more parameter."""
    head, values = sql.split(") VALUES (", 1)
    values, returning = values.rsplit(") RETURNING ", 1)
    return f"{head}, ward_id) VALUES ({values}, ${count + 1}::INTEGER) RETURNING {returning}"


def _entry(entry: dict[str, Any]) -> tuple[str, list[Any], list[str]]:
    return entry["sql"], load_params(entry["params"]), entry["template"]


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
        sql, params, template = _entry(captured["insert_noward"])
        statements = {
            "insert_noward": (sql, params, template),
            "insert_fk": (
                with_constant_ward(sql, len(params)),
                [*params, ward_id],
                [*template, "const"],
            ),
            "insert": _entry(captured["insert"]),
            "lookup": _entry(captured["lookup"]),
        }
        prepared = {name: await conn.prepare(sql) for name, (sql, _, _) in statements.items()}
        per_call: dict[str, list[float]] = {name: [] for name in statements}
        transaction = conn.transaction()
        await transaction.start()
        try:
            # Warm-up: plans cached (generic after five runs), pages in shared buffers.
            for name, (_, params, template) in statements.items():
                for i in range(20):
                    await prepared[name].fetchval(
                        *bind(template, params, *points[i], SENTINEL_DESCRIPTION, tolerance_m)
                    )
            at = 0
            for _ in range(rounds):
                for name, (_, params, template) in statements.items():
                    calls = [
                        bind(
                            template,
                            params,
                            *points[(at + i) % len(points)],
                            SENTINEL_DESCRIPTION,
                            tolerance_m,
                        )
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
    base = per_call["insert_noward"]

    def paired(name: str) -> float:
        # Each round's statements ran back to back: their ratio within the round does not
        # move when the machine's speed drifts between rounds.
        return statistics.median(v / b - 1.0 for v, b in zip(per_call[name], base, strict=True))

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
