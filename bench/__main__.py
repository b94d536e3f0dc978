"""``python -m bench``: the whole benchmark of issue 8 in one command (see bench/run.sh).

Steps: machine description; fresh PostGIS databases (main + scale study) loaded set-based;
the exact SQL of our endpoints captured from the app's code; database round trips counted
through a protocol proxy; the servers started (bare hello, raw asyncpg, ours on PostGIS, ours
on the embedded default); wrk rounds interleaved over every target; medians, ratios against the
targets; the ward lookup's share of PostgreSQL's CPU per INSERT (bench.wardcost); results
written to bench/results/latest.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from bench import capture, dataset, exports, layers, photocost, report, servers, wardcost
from bench.common import LOGS, RESULTS, ROOT, WORK, clean_env, log, with_database
from bench.loadgen import Sample, Target, run_wrk
from bench.pgproxy import CountingProxy

DEFAULT_ADMIN = "postgresql://open311:open311@localhost:5432/postgres"
BASE = "/open311/v2"
RATE_ENV = {
    # Keep the app's defaults except the rate limits, raised so they never interfere.
    "OPEN311_RATE_LIMITS__PER_KEY_PER_MINUTE": "1000000000",
    "OPEN311_RATE_LIMITS__ANONYMOUS_PER_MINUTE": "0",
}
CACHE_TTL_S = 5.0  # jurisdiction/catalogue caches of the server


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="requests in the main database (default 1,000,000; --quick 100,000)",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="wrk rounds per target (default 5; --quick 3)"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per wrk run (default 5; --quick 2)"
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument(
        "--quick", action="store_true", help="100k rows, short runs, small scale study"
    )
    parser.add_argument(
        "--scales",
        default=None,
        help="comma list of row counts for the list-query scale study "
        "(default 100000,ROWS; --quick ROWS,300000)",
    )
    parser.add_argument(
        "--with-10m",
        action="store_true",
        help="add 10,000,000 rows to the scale study (~8 min load, ~4 GB)",
    )
    parser.add_argument(
        "--embedded-rows",
        type=int,
        default=None,
        help="requests in the embedded SQLite copy (default 100,000; --quick 20,000)",
    )
    parser.add_argument(
        "--skip-embedded", action="store_true", help="do not measure the embedded default"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy profiles of our server (needs py-spy in .venv)",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also run one server of ours per hand-made speed layer switched off (bench.layers)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse bench databases of the same size left by --keep"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="write the table into README.md's Performance section",
    )
    parser.add_argument(
        "--admin-dsn",
        default=os.environ.get("BENCH_ADMIN_DSN", DEFAULT_ADMIN),
        help="admin DSN (role able to create databases and PostGIS)",
    )
    parser.add_argument(
        "--output",
        default=str(RESULTS / "latest"),
        help="results path without suffix (default bench/results/latest)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.rows = args.rows or (100_000 if quick else 1_000_000)
    args.rounds = args.rounds or (3 if quick else 5)
    args.duration = args.duration or (2.0 if quick else 5.0)
    args.embedded_rows = args.embedded_rows or (20_000 if quick else 100_000)
    if args.scales:
        scales = {int(s) for s in args.scales.split(",") if s.strip()}
    else:
        scales = {300_000 if quick else 100_000}
    scales.add(args.rows)
    if args.with_10m:
        scales.add(10_000_000)
    args.scales = sorted(scales)
    return args


# ---------------------------------------------------------------------------------------
# the machine


def machine(admin_dsn: str) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])

    async def versions() -> tuple[str, str, dict[str, str]]:
        conn = await asyncpg.connect(admin_dsn)
        try:
            pg = await conn.fetchval("show server_version")
            settings = {
                name: await conn.fetchval(f"show {name}")
                for name in (
                    "shared_buffers",
                    "work_mem",
                    "effective_cache_size",
                    "synchronous_commit",
                    "max_connections",
                )
            }
            postgis = await conn.fetchval(
                "select default_version from pg_available_extensions where name = 'postgis'"
            )
        finally:
            await conn.close()
        return pg, postgis, settings

    pg, postgis, pg_settings = asyncio.run(versions())
    import fastapi
    import sqlalchemy
    import starlette
    import uvicorn

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "postgis": postgis,
        "pg_settings": pg_settings,
        "packages": {
            "fastapi": fastapi.__version__,
            "starlette": starlette.__version__,
            "uvicorn": uvicorn.__version__,
            "sqlalchemy": sqlalchemy.__version__,
            "asyncpg": asyncpg.__version__,
        },
        "loadavg_at_start": os.getloadavg(),
        "wrk": subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0:1],
    }


# ---------------------------------------------------------------------------------------
# databases


def _rel(path: Path) -> str:
    """A path relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def db_name(rows: int) -> str:
    return f"open311_bench_{rows}"


def prepare_database(admin: str, rows: int, reuse: bool) -> str:
    name = db_name(rows)
    dsn = with_database(admin, name)
    if reuse and asyncio.run(dataset.database_rows(admin, name)) == rows:
        log(f"reusing database {name} ({rows:,} requests), migrating it to head")
        from app.store.migrate import upgrade

        upgrade(dataset.pg_settings(dsn))
        return dsn
    log(f"creating database {name} and loading {rows:,} requests")
    asyncio.run(dataset.create_database(admin, name))
    dataset.migrate_and_seed(dataset.pg_settings(dsn))
    loaded = asyncio.run(
        dataset.load_requests(dsn, rows, pool_points=min(100_000, max(20_000, rows)))
    )
    log(f"database {name}: {rows:,} requests loaded in {loaded.load_seconds:.1f}s")
    return dsn


def list_query() -> str:
    zone = ZoneInfo("America/Toronto")
    end = datetime.now(zone).replace(microsecond=0)
    start = end - timedelta(days=365)
    return capture.list_query_string(
        urllib.parse.quote(start.isoformat(), safe=":-"),
        urllib.parse.quote(end.isoformat(), safe=":-"),
    )


async def _time_sql(
    dsn: str, sql: str, params: list[Any], runs: int, *, custom_plans: bool = False
) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        if custom_plans:  # as the app runs box and circle reads: planned with their values
            await conn.execute("SET plan_cache_mode = force_custom_plan")
        statement = await conn.prepare(sql)
        for _ in range(3):
            await statement.fetch(*params)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rows = await statement.fetch(*params)
            times.append((time.perf_counter() - t0) * 1000)
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
        total = await conn.fetchval("select count(*) from service_request")
    finally:
        await conn.close()
    return {
        "rows_in_table": total,
        "rows_returned": len(rows),
        "median_ms": statistics.median(times),
        "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))],
        "plan": "\n".join(r[0] for r in plan),
    }


# GET requests' where and text filters (issue 18): the list query with each added, timed at
# every table size like the list query itself (their growth: largest ÷ smallest, target <= 2).
# Like the list query, the measured box, circle and words fill a page (1000 rows) at every
# size, so the ratio compares the same answer on a bigger table: a map view of the city. The
# bench's larger database is a busier city (ten times the requests over the same two years), so
# a small fixed box holds ten times the requests: the downtown box and the 1 km circle return
# every one of their matches (a few dozen at 100,000 rows, hundreds at 1,000,000) and their
# time follows what they return. They are shown for information, with their time per row.
WHERE_QUERIES = {
    "bbox": "&bbox=-79.52,43.66,-79.27,43.78",
    "radius": "&lat=43.70&long=-79.40&radius=8000",
    "q": "&q=pothole",
}
WHERE_EVERY_MATCH = {
    "downtown bbox": "&bbox=-79.40,43.64,-79.37,43.66",
    "1 km radius": "&lat=43.6534&long=-79.3841&radius=1000",
}


def scale_study(
    scale_dsns: dict[int, str],
    query: str,
    out_dir: Path,
    tag: str = "list",
    *,
    custom_plans: bool = False,
) -> list[dict[str, Any]]:
    results = []
    for rows, dsn in sorted(scale_dsns.items()):
        captured = capture.capture(dataset.pg_settings(dsn), query, 1)
        sql, params = captured["list"]["sql"], capture.load_params(captured["list"]["params"])
        timing = asyncio.run(_time_sql(dsn, sql, params, runs=30, custom_plans=custom_plans))
        plan_file = out_dir / f"explain-{tag}-{rows}.txt"
        plan_file.write_text(
            f"-- {rows:,} requests; {timing['rows_returned']} rows returned\n"
            f"-- {sql}\n-- params: {params}\n\n{timing['plan']}\n"
        )
        timing["plan_file"] = _rel(plan_file)
        timing["rows"] = rows
        del timing["plan"]
        results.append(timing)
        log(
            f"scale {rows:>10,}: {tag} query {timing['median_ms']:.2f} ms median "
            f"({timing['rows_returned']} rows)"
        )
    return results


async def _time_report(dsn: str, runs: int) -> dict[str, Any]:
    """The key-metrics report of the newest year through the domain: the first call builds
    the rollups (timed apart), then ``runs`` timed calls (each refreshes, finds nothing new,
    and reads the rollups)."""
    from app.domain import reports
    from app.domain.jurisdictions import JurisdictionRegistry
    from app.store.engine import make_engine

    settings = dataset.pg_settings(dsn)
    engine = make_engine(settings)
    try:
        place = await JurisdictionRegistry(engine, settings).resolve(dataset.JURISDICTION)
        year = await reports.default_year(engine, place)
        began = time.perf_counter()
        await reports.key_metrics(engine, place, year)
        build_ms = (time.perf_counter() - began) * 1000
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            await reports.key_metrics(engine, place, year)
            times.append((time.perf_counter() - began) * 1000)
        return {"year": year, "build_ms": build_ms, "median_ms": statistics.median(times)}
    finally:
        await engine.dispose()


def report_study(scale_dsns: dict[int, str], out_dir: Path) -> list[dict[str, Any]]:
    """Issue 19's city-scale check: the key-metrics report's time at each scale, and the
    largest ÷ smallest ratio (the aim: at most 2)."""
    results = []
    for rows, dsn in sorted(scale_dsns.items()):
        timing = asyncio.run(_time_report(dsn, runs=10))
        timing["rows"] = rows
        results.append(timing)
        log(
            f"scale {rows:>10,}: key-metrics report {timing['median_ms']:.1f} ms median "
            f"(rollups built in {timing['build_ms']:.0f} ms)"
        )
    if len(results) > 1:
        ratio = results[-1]["median_ms"] / results[0]["median_ms"]
        log(f"key-metrics report, largest ÷ smallest database: {ratio:.2f} (aim: <= 2)")
    (out_dir / "report-scale.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


async def _explain_others(dsn: str, captured: dict[str, Any], get_id: int, out_dir: Path) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        get = captured["get"]
        params = capture.load_params(get["params"])
        params[get["id_index"]] = get_id
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + get["sql"], *params)
        (out_dir / "explain-get.txt").write_text(
            f"-- {get['sql']}\n\n" + "\n".join(r[0] for r in plan) + "\n"
        )
        insert = captured["insert"]
        params = capture.load_params(insert["params"])
        for i, kind in enumerate(insert["template"]):
            if kind == "desc":
                params[i] = "explain"
        tx = conn.transaction()
        await tx.start()
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + insert["sql"], *params)
        await tx.rollback()
        (out_dir / "explain-insert.txt").write_text(
            f"-- {insert['sql']}\n\n" + "\n".join(r[0] for r in plan) + "\n"
        )
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------
# inputs for wrk


def write_inputs(dsn: str, nonce: str) -> dict[str, Path]:
    points, ids = asyncio.run(dataset.sample(dsn))
    WORK.mkdir(parents=True, exist_ok=True)
    ids_file = WORK / "ids.txt"
    ids_file.write_text("\n".join(str(i) for i in ids) + "\n")
    body = urllib.parse.urlencode(
        [
            (k, v)
            for k, v in capture.post_params(0.0, 0.0, capture.DESCRIPTION)
            if k not in ("lat", "long")
        ]
    )
    post_file = WORK / "post.txt"
    post_file.write_text(body + "\n" + "\n".join(f"{lat!r} {lon!r}" for lat, lon in points) + "\n")
    return {"ids": ids_file, "post": post_file, "first_id": ids[0], "points": points}


# ---------------------------------------------------------------------------------------
# round trips


def _http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def _entity_tag(url: str) -> str:
    """The ETag of a GET of ``url`` (what a client that cached it sends back)."""
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our loopback server
        answer.read()
        tag = answer.headers.get("ETag")
    if not tag:
        raise RuntimeError(f"{url} answered without an ETag")
    return str(tag)


def count_round_trips(
    dsn: str, inputs: dict[str, Any], query: str, raw_config: Path, captured: dict[str, Any]
) -> dict[str, Any]:
    """Round trips per request of our server and of the raw app, through the counting proxy."""
    parsed = urllib.parse.urlsplit(dsn)
    proxy = CountingProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432)
    port = proxy.start()
    proxied = dsn.replace(f"@{parsed.hostname}:{parsed.port}", f"@127.0.0.1:{port}")
    ours = raw = None
    result: dict[str, Any] = {}
    try:
        ours = servers.open311(
            "ours-proxied", {"OPEN311_DB__URL": proxied, **RATE_ENV}, f"{BASE}/discovery.json"
        )
        raw = servers.uvicorn_app(
            "raw-proxied",
            "bench.rawapp:app",
            clean_env(BENCH_RAW_CONFIG=str(raw_config), BENCH_RAW_DSN=proxied, BENCH_RAW_POOL="2"),
            "/nothing",
        )
        lat, lon = inputs["points"][0]
        body_fields = capture.post_params(lat, lon, capture.DESCRIPTION)
        form = urllib.parse.urlencode(body_fields).encode()
        form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        get_id = inputs["first_id"]
        calls = {
            "POST requests.json": lambda i: _http(
                "POST",
                f"{ours.base}{BASE}/requests.json",
                form,
                {**form_headers, "Idempotency-Key": f"rt-{uuid.uuid4()}"},
            ),
            "GET requests/{id}.json": lambda i: _http(
                "GET", f"{ours.base}{BASE}/requests/{get_id}.json"
            ),
            "GET requests.json": lambda i: _http("GET", f"{ours.base}{BASE}/requests.json?{query}"),
            "raw insert": lambda i: _http("POST", f"{raw.base}/insert", form, form_headers),
            "raw list": lambda i: _http("GET", f"{raw.base}/list"),
        }
        for name, call in calls.items():
            for i in range(15):  # warm: pool connections, prepared statements, caches
                status = call(i)
            if status >= 400:
                raise RuntimeError(f"{name} answered {status} during the round-trip count")
            counts, sequences = [], []
            for i in range(10):
                mark = proxy.mark()
                call(i)
                time.sleep(0.05)
                trips = proxy.since(mark)
                counts.append(len(trips))
                sequences.append([t.label() for t in trips])
            typical = statistics.median(counts)
            example = (
                next(s for s, c in zip(sequences, counts, strict=False) if c == int(typical))
                if int(typical) in counts
                else sequences[-1]
            )
            result[name] = {
                "median": typical,
                "min": min(counts),
                "max": max(counts),
                "example": example,
            }
            log(f"round trips, {name}: median {typical} (min {min(counts)}, max {max(counts)})")
        # The statement our list endpoint sent must be the one the raw app replays.
        sent = " ".join(result["GET requests.json"]["example"])
        result["list_sql_identical"] = " ".join(captured["list"]["sql"].split()) in sent
    finally:
        for server in (ours, raw):
            if server is not None:
                servers.stop(server)
        proxy.stop()
    return result


# ---------------------------------------------------------------------------------------
# measurement


async def _set_wards_current(dsn: str, current: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "update boundary_set set current = $1 where jurisdiction_id = "
            "(select id from jurisdiction where code = $2) and kind = 'ward'",
            current,
            dataset.JURISDICTION,
        )
    finally:
        await conn.close()


# Tables the POST targets write to, many thousand rows a minute.
WRITTEN_TABLES = ("service_request", "idempotency_record", "rate_bucket")


async def _autovacuum(dsn: str, enabled: bool) -> None:
    """Pause (or restore) autovacuum on the tables the rounds write, and checkpoint first.

    The POST targets insert some 100,000 rows in a few minutes: autovacuum then vacuums and
    analyzes a million-row table on a 2-core machine that also runs the server and wrk, and
    that minute lands on whichever targets run then, skewing the ratios between targets.
    The data is vacuumed and analyzed after loading; the report says autovacuum was paused.
    """
    conn = await asyncpg.connect(dsn)
    try:
        for table in WRITTEN_TABLES:
            if enabled:
                await conn.execute(f"alter table {table} reset (autovacuum_enabled)")
            else:
                await conn.execute(f"alter table {table} set (autovacuum_enabled = off)")
        if not enabled:
            try:
                await conn.execute("checkpoint")
            except asyncpg.InsufficientPrivilegeError:
                log("  (no checkpoint: the bench role may not run CHECKPOINT)")
    finally:
        await conn.close()


def settle(target: Target, timeout: float = 10.0) -> None:
    """Wait until the server just measured has answered every call wrk left in flight.

    wrk stops at its deadline but the server still answers the calls it had accepted (a
    list of 1000 rows on the embedded default takes ~0.3 s each): without this wait, the next
    target's first calls queue behind them and its p99 measures the previous target. Our
    servers report ``open311_http_requests_in_flight``; the bare apps (no /metrics) answer
    each call in a few milliseconds."""
    parts = urllib.parse.urlsplit(target.url)
    metrics = f"{parts.scheme}://{parts.netloc}/metrics"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(metrics, timeout=timeout) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            return  # no metrics: not one of ours
        match = re.search(r"^open311_http_requests_in_flight (\S+)$", text, re.M)
        if match is None or float(match.group(1)) == 0:
            return
        time.sleep(0.05)
    log(f"  warning: {target.name}: calls still in flight after {timeout:.0f} s")


def measure(
    targets: list[Target], args: argparse.Namespace, dsn: str, nonce: str
) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}

    def run(target: Target, seconds: float, tag: str) -> Sample:
        if target.name == "post_noward":
            asyncio.run(_set_wards_current(dsn, False))
            time.sleep(CACHE_TTL_S + 0.5)
        try:
            if "post" in target.args[:1]:
                target.args[3] = f"{nonce}-{target.name}-{tag}"
            return run_wrk(target, seconds, args.connections, tag)
        finally:
            settle(target)
            if target.name == "post_noward":
                asyncio.run(_set_wards_current(dsn, True))
                time.sleep(CACHE_TTL_S + 0.5)

    log("warm-up: 1 s per target")
    for target in targets:
        sample = run(target, 1, "warmup")
        if sample.errors:
            log(
                f"  warning: {target.name} had {sample.errors} errors in warm-up; "
                f"see {LOGS}/wrk-{target.name}.log"
            )
    for r in range(args.rounds):
        for target in targets:
            sample = run(target, args.duration, f"round{r + 1}")
            samples[target.name].append(sample)
            flag = f"  ERRORS {sample.errors}" if sample.errors else ""
            log(
                f"round {r + 1}/{args.rounds} {target.name:<22} {sample.rps:9.0f} req/s  "
                f"p50 {sample.p50_ms:6.2f} ms  p99 {sample.p99_ms:7.2f} ms{flag}"
            )
    return samples


def profiles(
    ours: servers.Server,
    targets: list[Target],
    args: argparse.Namespace,
    nonce: str,
    out_dir: Path,
) -> dict[str, str]:
    from bench.profile import record

    out: dict[str, str] = {}
    for target in targets:
        if target.name not in ("get_json", "list_json", "list_xml", "post"):
            continue
        if target.args[:1] == ["post"]:
            target.args[3] = f"{nonce}-{target.name}-profile"
        path = record(
            ours.process.pid, target, 8, args.connections, out_dir / f"profile-{target.name}.txt"
        )
        if path is None:
            break
        out[target.name] = _rel(path)
        log(f"profile of {target.name}: {_rel(path)}")
    return out


# ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    RESULTS.mkdir(parents=True, exist_ok=True)
    nonce = uuid.uuid4().hex[:12]
    out_dir = Path(args.output).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)

    def on_signal(signum: int, _frame: Any) -> None:
        servers.stop_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    info = machine(args.admin_dsn)
    log(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"PostgreSQL {info['postgresql']}"
    )
    created: list[str] = []
    dsns: dict[int, str] = {}
    try:
        for rows in [args.rows] + [s for s in args.scales if s != args.rows]:
            dsns[rows] = prepare_database(args.admin_dsn, rows, args.reuse)
            created.append(db_name(rows))
        dsn = dsns[args.rows]
        query = list_query()
        inputs = write_inputs(dsn, nonce)
        settings = dataset.pg_settings(dsn)
        captured = capture.capture(settings, query, inputs["first_id"])
        if captured["list"]["rows"] != 1000:
            log(f"note: the list query returns {captured['list']['rows']} rows (not 1000)")
        raw_config = WORK / "raw_config.json"
        raw_config.write_text(json.dumps(captured, indent=1))
        asyncio.run(_explain_others(dsn, captured, inputs["first_id"], out_dir))
        log("scale study of the list query")
        scale = scale_study(dsns, query, out_dir)
        log("scale study of the list query with bbox, radius and q")
        where_scale = {
            name: scale_study(dsns, query + extra, out_dir, tag=name, custom_plans=name != "q")
            for name, extra in WHERE_QUERIES.items()
        }
        every_match = {
            name: scale_study(
                dsns, query + extra, out_dir, tag=name.replace(" ", "-"), custom_plans=True
            )
            for name, extra in WHERE_EVERY_MATCH.items()
        }
        log("scale study of the key-metrics report (rollups)")
        report_scale = report_study(dsns, out_dir)

        embedded_settings = None
        if not args.skip_embedded:
            log(f"building the embedded (SQLite) database with {args.embedded_rows:,} requests")
            embedded_path = WORK / "embedded.db"
            embedded_settings, copied = dataset.build_embedded(
                embedded_path, dsn, args.embedded_rows
            )
            rng = random.Random(311)
            sample_ids = rng.sample(copied, min(5000, len(copied)))
            (WORK / "ids_embedded.txt").write_text("\n".join(map(str, sample_ids)) + "\n")

        log("counting database round trips (protocol proxy)")
        trips = count_round_trips(dsn, inputs, query, raw_config, captured)

        log("starting the servers")
        hello = servers.uvicorn_app("hello", "bench.hello:app", clean_env(), "/hello")
        raw = servers.uvicorn_app(
            "raw",
            "bench.rawapp:app",
            clean_env(BENCH_RAW_CONFIG=str(raw_config), BENCH_RAW_DSN=dsn),
            "/nothing",
        )
        ours = servers.open311(
            "ours",
            # Photos of the photo-cost POSTs (bench.photocost) go to the work directory.
            {"OPEN311_DB__URL": dsn, "OPEN311_MEDIA__LOCAL_DIR": str(WORK / "media"), **RATE_ENV},
            f"{BASE}/discovery.json",
        )
        without: dict[str, str] = {}  # speed layer -> base URL of our server without it
        if args.layers:
            for layer in layers.LAYERS:
                server = servers.open311(
                    f"ours-no-{layer.name}",
                    {"OPEN311_DB__URL": dsn, **RATE_ENV, **layer.env},
                    f"{BASE}/discovery.json",
                )
                without[layer.name] = server.base
        embedded = None
        if embedded_settings is not None:
            embedded = servers.open311(
                "embedded",
                {
                    "OPEN311_DB__URL": "",
                    "OPEN311_DB__SQLITE_PATH": str(embedded_settings.db.sqlite_path),
                    **RATE_ENV,
                },
                f"{BASE}/discovery.json",
            )
        ids, post = str(inputs["ids"]), str(inputs["post"])
        post_path = f"{BASE}/requests.json"

        def post_args(path: str, idem: bool) -> list[str]:
            return ["post", post, path, nonce, "1" if idem else "0"]

        targets = [
            Target("hello", f"{hello.base}/hello", [], "bare FastAPI hello"),
            Target(
                "get_json",
                f"{ours.base}{BASE}/requests/1.json",
                ["get", ids, f"{BASE}/requests/", ".json"],
                "GET requests/{id}.json",
            ),
            Target(
                "raw_get",
                f"{raw.base}/get/1",
                ["get", ids, "/get/", ""],
                "raw asyncpg single row + orjson",
            ),
            Target(
                "list_json",
                f"{ours.base}{BASE}/requests.json?{query}",
                [],
                "GET requests.json (1000 rows)",
            ),
            Target(
                "list_xml",
                f"{ours.base}{BASE}/requests.xml?{query}",
                [],
                "GET requests.xml (1000 rows)",
            ),
            Target("raw_list", f"{raw.base}/list", [], "raw asyncpg fetch + orjson (same SQL)"),
            Target(
                "services_304",
                f"{ours.base}{BASE}/services.json",
                ["header", "If-None-Match", _entity_tag(f"{ours.base}{BASE}/services.json")],
                "GET services.json, conditional: 304",
            ),
            Target(
                "post",
                f"{ours.base}{post_path}",
                post_args(post_path, True),
                "POST requests.json (ward + idempotency)",
            ),
            Target(
                "raw_insert",
                f"{raw.base}/insert",
                post_args("/insert", False),
                "raw asyncpg INSERT (same SQL, ward)",
            ),
            Target(
                "raw_insert_noward",
                f"{raw.base}/insert_noward",
                post_args("/insert_noward", False),
                "raw asyncpg INSERT without ward",
            ),
            Target(
                "post_noward",
                f"{ours.base}{post_path}",
                post_args(post_path, True),
                "POST requests.json, no ward set",
            ),
        ]
        if embedded is not None:
            targets += [
                Target(
                    "emb_get_json",
                    f"{embedded.base}{BASE}/requests/1.json",
                    ["get", str(WORK / "ids_embedded.txt"), f"{BASE}/requests/", ".json"],
                    "embedded: GET requests/{id}.json",
                ),
                Target(
                    "emb_list_json",
                    f"{embedded.base}{BASE}/requests.json?{query}",
                    [],
                    "embedded: GET requests.json",
                ),
                Target(
                    "emb_list_xml",
                    f"{embedded.base}{BASE}/requests.xml?{query}",
                    [],
                    "embedded: GET requests.xml",
                ),
                Target(
                    "emb_post",
                    f"{embedded.base}{post_path}",
                    post_args(post_path, True),
                    "embedded: POST requests.json",
                ),
            ]
        targets = layers.interleave(targets, without)
        asyncio.run(_autovacuum(dsn, False))
        try:
            samples = measure(targets, args, dsn, nonce)
        finally:
            asyncio.run(_autovacuum(dsn, True))
        log("ward lookup cost inside PostgreSQL (backend CPU per statement)")
        ward_cost = wardcost.breakdown(dsn, captured, inputs["points"], settings.wards.tolerance_m)
        if ward_cost is None:
            log("  not measured: the backend's /proc/<pid>/schedstat is not readable here")
        else:
            log(
                "  INSERT with the ward lookup "
                f"{100 * ward_cost['vs_noward']['insert']:+.0f}% server CPU "
                "over the INSERT without it"
            )
        log("POST requests.json with a 2 MB photo ÷ without (bench.photocost)")
        fields = [
            (k, v)
            for k, v in capture.post_params(0.0, 0.0, capture.DESCRIPTION)
            if k not in ("lat", "long")
        ]
        photo_cost = photocost.measure(
            f"{ours.base}{post_path}", fields, inputs["points"], 10 if args.quick else 20
        )
        log(
            f"  {photo_cost['with_ms']:.1f} ms with ÷ {photo_cost['without_ms']:.1f} ms without "
            f"= {photo_cost['ratio']:.1f}"
        )
        log("exports: memory on the smallest and largest database, throughput ÷ COPY")
        export_lines = exports.export_study(dsns, args.rows, ours.base)
        info["loadavg_at_end"] = os.getloadavg()
        profile_files = profiles(ours, targets, args, nonce, out_dir) if args.profile else {}
        result = report.build(
            args=args,
            machine=info,
            targets=targets,
            samples=samples,
            trips=trips,
            scale=scale,
            where_scale=where_scale,
            every_match=every_match,
            report_scale=report_scale,
            captured=captured,
            query=query,
            embedded_rows=args.embedded_rows if embedded is not None else 0,
            profiles=profile_files,
            elapsed_s=time.monotonic() - started,
            ward_cost=ward_cost,
            photo_cost=photo_cost,
        )
        result["exports"] = export_lines
        if without:
            result["layers"] = layers.compare(result["endpoints"])
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        markdown = report.markdown(result)
        output.with_suffix(".md").write_text(markdown)
        sys.stdout.write(report.terminal(result))
        sys.stdout.flush()
        if args.update_readme:
            report.update_readme(ROOT / "README.md", result)
        log(
            f"results: {output.with_suffix('.md')} and .json "
            f"({time.monotonic() - started:.0f}s in all)"
        )
    finally:
        servers.stop_all()
        if not (args.keep or args.reuse):
            for name in created:
                asyncio.run(dataset.drop_database(args.admin_dsn, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
