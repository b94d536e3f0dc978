"""Medians, ratios against the targets of issue 8, and the written results."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import layers
from bench.loadgen import Sample, Target

README_BEGIN = "<!-- bench:begin (written by bash bench/run.sh --update-readme) -->"
README_END = "<!-- bench:end -->"


def _median(samples: list[Sample], attr: str) -> float:
    return statistics.median(getattr(s, attr) for s in samples)


def summarise(targets: list[Target], samples: dict[str, list[Sample]]) -> dict[str, dict[str, Any]]:
    out = {}
    for target in targets:
        runs = samples.get(target.name) or []
        if not runs:
            continue
        p50, p99 = _median(runs, "p50_ms"), _median(runs, "p99_ms")
        out[target.name] = {
            "label": target.label,
            "rps": _median(runs, "rps"),
            "rps_min": min(s.rps for s in runs),
            "rps_max": max(s.rps for s in runs),
            "p50_ms": p50,
            "p90_ms": _median(runs, "p90_ms"),
            "p99_ms": p99,
            "p99_over_p50": p99 / p50 if p50 else None,
            "errors": sum(s.errors for s in runs),
            "requests": sum(s.requests for s in runs),
            "rounds": [_sample_dict(s) for s in runs],
        }
    return out


def _sample_dict(sample: Sample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in sample.__slots__}


def _ratio(
    name: str, value: float | None, target: float | None, *, at_least: bool, detail: str
) -> dict[str, Any]:
    """A measure against its target; ``target`` None: shown for information, no verdict."""
    if target is None:
        return {"name": name, "value": value, "target": "info", "ok": None, "detail": detail}
    ok = None if value is None else (value >= target if at_least else value <= target)
    return {
        "name": name,
        "value": value,
        "target": ("≥ " if at_least else "≤ ") + f"{target:g}",
        "ok": ok,
        "detail": detail,
    }


def build(
    *,
    args: Any,
    machine: dict[str, Any],
    targets: list[Target],
    samples: dict[str, list[Sample]],
    trips: dict[str, Any],
    scale: list[dict[str, Any]],
    captured: dict[str, Any],
    query: str,
    embedded_rows: int,
    profiles: dict[str, str],
    elapsed_s: float,
    ward_cost: dict[str, Any] | None = None,
    photo_cost: dict[str, Any] | None = None,
    where_scale: dict[str, list[dict[str, Any]]] | None = None,
    every_match: dict[str, list[dict[str, Any]]] | None = None,
    report_scale: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    s = summarise(targets, samples)

    def rps(name: str) -> float | None:
        return s[name]["rps"] if name in s else None

    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    ratios = [
        _ratio(
            "GET requests/{id}.json ÷ hello",
            div(rps("get_json"), rps("hello")),
            0.40,
            at_least=True,
            detail="rate of our single-request read over a bare FastAPI hello",
        ),
        _ratio(
            "conditional GET services.json (304) ÷ hello",
            div(rps("services_304"), rps("hello")),
            0.80,
            at_least=True,
            detail="issue 20: the 304 path of HTTP caching over a bare FastAPI hello",
        ),
        _ratio(
            "GET requests.json ÷ raw asyncpg+orjson",
            div(rps("list_json"), rps("raw_list")),
            0.60,
            at_least=True,
            detail="1000 rows, identical SQL",
        ),
        _ratio(
            "GET requests.xml ÷ requests.json",
            div(rps("list_xml"), rps("list_json")),
            0.50,
            at_least=True,
            detail="same 1000 rows",
        ),
        _ratio(
            "POST requests.json ÷ raw asyncpg INSERT",
            div(rps("post"), rps("raw_insert")),
            0.30,
            at_least=True,
            detail="ward lookup + idempotency vs the same INSERT alone",
        ),
    ]
    post_trips = trips.get("POST requests.json", {}).get("median")
    ratios.append(
        _ratio(
            "database round trips per POST",
            post_trips,
            1,
            at_least=False,
            detail="counted by the protocol proxy (Sync/Query messages)",
        )
    )
    raw_ward = div(rps("raw_insert_noward"), rps("raw_insert"))
    ratios.append(
        _ratio(
            # Information only since issue 17 (the figures of bench.wardcost stay).
            "ward lookup cost on the raw INSERT",
            None if raw_ward is None else raw_ward - 1,
            None,
            at_least=False,
            detail="time per insert with ÷ without the ward expression, minus 1 (information)",
        )
    )
    app_ward = div(rps("post_noward"), rps("post"))
    ratios.append(
        _ratio(
            "ward lookup cost on POST requests.json",
            None if app_ward is None else app_ward - 1,
            0.10,
            at_least=False,
            detail="POST with ÷ without a current ward set, minus 1",
        )
    )
    # The embedded default against PostGIS, same endpoints, same run (issue 17).
    for name, ours, embedded, target in (
        ("GET requests/{id}.json", "get_json", "emb_get_json", 0.65),
        ("POST requests.json", "post", "emb_post", 0.55),
        ("GET requests.json (1000 rows)", "list_json", "emb_list_json", 0.5),
    ):
        ratios.append(
            _ratio(
                f"embedded ÷ PostGIS: {name}",
                div(rps(embedded), rps(ours)),
                target,
                at_least=True,
                detail="the embedded SQLite default over our server on PostGIS",
            )
        )
    if photo_cost is not None:
        ratios.append(
            _ratio(
                "POST requests.json with a 2 MB photo ÷ without",
                photo_cost["ratio"],
                None,
                at_least=False,
                detail=f"12 MP JPEG, decoded, scaled, re-encoded with a thumbnail, stored; "
                f"{photo_cost['with_ms']:.0f} ms ÷ {photo_cost['without_ms']:.1f} ms, "
                f"medians of {photo_cost['runs']} sequential POSTs (information)",
            )
        )
    worst = max(
        (
            (name, v["p99_over_p50"])
            for name, v in s.items()
            if v["p99_over_p50"] is not None
            and name not in ("hello",)
            and not name.startswith("raw")
        ),
        key=lambda item: item[1],
        default=(None, None),
    )
    ratios.append(
        _ratio(
            "worst p99 ÷ p50 (our endpoints)",
            worst[1],
            3,
            at_least=False,
            detail=f"at {args.connections} connections; worst: {worst[0]}",
        )
    )
    if len(scale) >= 2:
        flat = scale[-1]["median_ms"] / scale[0]["median_ms"]
        ratios.append(
            _ratio(
                f"list query time at {scale[-1]['rows']:,} ÷ {scale[0]['rows']:,} rows",
                flat,
                2,
                at_least=False,
                detail="SQL alone, median of 30 runs; EXPLAIN in bench/results",
            )
        )
    for name, timings in (where_scale or {}).items():
        if len(timings) >= 2:
            returned = f"{timings[0]['rows_returned']} and {timings[-1]['rows_returned']} rows"
            ratios.append(
                _ratio(
                    f"list query with {name} at {timings[-1]['rows']:,} ÷ "
                    f"{timings[0]['rows']:,} rows",
                    timings[-1]["median_ms"] / timings[0]["median_ms"],
                    2,
                    at_least=False,
                    detail=f"SQL alone (PostGIS), median of 30 runs, {returned} returned; "
                    "EXPLAIN in bench/results",
                )
            )
        if timings[0]["rows_returned"] != timings[-1]["rows_returned"]:
            ratios[-1]["detail"] += " (not the same answer: compare per row below)"
    for name, timings in (every_match or {}).items():
        if len(timings) >= 2:
            small, large = timings[0], timings[-1]
            per_row = (large["median_ms"] / max(large["rows_returned"], 1)) / (
                small["median_ms"] / max(small["rows_returned"], 1)
            )
            ratios.append(
                _ratio(
                    f"list query with a {name} at {large['rows']:,} ÷ {small['rows']:,} rows",
                    large["median_ms"] / small["median_ms"],
                    None,
                    at_least=False,
                    detail=f"every match returned: {small['rows_returned']} and "
                    f"{large['rows_returned']} rows, {small['median_ms']:.2f} and "
                    f"{large['median_ms']:.2f} ms; time per row returned {per_row:.2f}× "
                    "(information)",
                )
            )
    if report_scale is not None and len(report_scale) >= 2:
        small, large = report_scale[0], report_scale[-1]
        ratios.append(
            _ratio(
                f"key-metrics report at {large['rows']:,} ÷ {small['rows']:,} rows",
                large["median_ms"] / small["median_ms"],
                2,
                at_least=False,
                detail=f"issue 19: {small['median_ms']:.0f} ms and {large['median_ms']:.0f} ms, "
                "median of 10 calls after the rollups were built",
            )
        )
    return {
        "where_scale": where_scale or {},
        "every_match": every_match or {},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "config": {
            "rows": args.rows,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "connections": args.connections,
            "wrk_threads": 1,
            "quick": args.quick,
            "scales": args.scales,
            "embedded_rows": embedded_rows,
            "ten_million": 10_000_000 in args.scales,
            "elapsed_s": round(elapsed_s),
        },
        "list_query": query,
        "endpoints": s,
        "ratios": ratios,
        "round_trips": trips,
        "scale": scale,
        "sql": {k: v["sql"] for k, v in captured.items()},
        "ward_cost": ward_cost,
        "photo_cost": photo_cost,
        "profiles": profiles,
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("PASS" if ok else "FAIL")


ORDER = [
    "hello",
    "get_json",
    "raw_get",
    "services_304",
    "list_json",
    "list_xml",
    "raw_list",
    "post",
    "post_noward",
    "raw_insert",
    "raw_insert_noward",
    "emb_get_json",
    "emb_list_json",
    "emb_list_xml",
    "emb_post",
]


def endpoint_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| endpoint | req/s (median) | min–max | p50 ms | p99 ms | p99/p50 | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    endpoints = result["endpoints"]
    for name in [*ORDER, *(n for n in endpoints if n not in ORDER)]:
        if name not in endpoints:
            continue
        e = endpoints[name]
        lines.append(
            f"| {e['label']} | {e['rps']:,.0f} | {e['rps_min']:,.0f}–{e['rps_max']:,.0f} | "
            f"{_fmt(e['p50_ms'])} | "
            f"{_fmt(e['p99_ms'])} | {_fmt(e['p99_over_p50'])} | {e['errors']} |"
        )
    return lines


WARD_COST_ROWS = [
    ("insert_noward", "INSERT, jurisdiction without a ward set"),
    ("insert_fk", "the same INSERT with a constant ward_id (foreign-key check)"),
    ("insert", "the INSERT our POST sends (ward lookup inside)"),
    ("lookup", "the ward lookup alone, as its own statement"),
]


def ward_cost_table(result: dict[str, Any]) -> list[str]:
    """PostgreSQL's own CPU per statement (bench.wardcost)."""
    cost = result.get("ward_cost")
    if not cost:
        return ["Not measured: the database backend's CPU time was not readable from here."]
    lines = [
        f"PostgreSQL backend CPU per statement (`/proc/<pid>/schedstat`), one connection, "
        f"{cost['rounds']} interleaved rounds of {cost['batch']}, rolled back; "
        "the change is the median of the per-round ratios to the first row.",
        "",
        "| statement | µs (median) | min–max | vs without ward |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, label in WARD_COST_ROWS:
        us = cost["us"][name]
        change = cost["vs_noward"].get(name)
        if change is None:
            shown = "–"
        elif name == "lookup":
            shown = f"({100 * (1 + change):.0f}% of row 1)"
        else:
            shown = f"{100 * change:+.0f}%"
        lines.append(
            f"| {label} | {us['median']:.0f} | {us['min']:.0f}–{us['max']:.0f} | {shown} |"
        )
    return lines


def ratio_table(result: dict[str, Any]) -> list[str]:
    lines = ["| measure | value | target | verdict |", "| --- | ---: | ---: | :---: |"]
    for r in result["ratios"]:
        value = r["value"]
        if isinstance(value, float) and "cost" in r["name"]:
            shown = f"{100 * value:+.1f}%"
        elif isinstance(value, float) and "round trips" in r["name"]:
            shown = f"{value:g}"
        else:
            shown = _fmt(value)
        target = r["target"]
        if "cost" in r["name"] and target != "info":
            target = target.split()[0] + f" {100 * float(target.split()[1]):g}%"
        lines.append(f"| {r['name']} | {shown} | {target} | {_verdict(r['ok'])} |")
    return lines


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    c = result["config"]
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']} + PostGIS {m['postgis']} "
        f"(shared_buffers {m['pg_settings']['shared_buffers']}); "
        f"server, PostgreSQL and wrk (1 thread, {c['connections']} connections) share the machine. "
        f"{c['rows']:,} requests, {c['rounds']} rounds × {c['duration_s']:g} s per target, medians"
        + "; autovacuum paused on the tables the rounds write (checkpoint before the rounds)"
        + (" (--quick)" if c["quick"] else "")
        + f"; {result['when']}. Load average at start/end: "
        + f"{m['loadavg_at_start'][0]:.1f}/{m.get('loadavg_at_end', [0])[0]:.1f}"
        + (
            " (other processes were busy on this machine: absolute rates are depressed and noisy)"
            if max(m["loadavg_at_start"][0], m.get("loadavg_at_end", [0])[0]) > 1.0
            else ""
        )
        + "."
    )


def markdown(result: dict[str, Any]) -> str:
    out = [
        "# Benchmark results",
        "",
        machine_line(result),
        "",
        "## Targets (issue 8)",
        "",
        *ratio_table(result),
        "",
        "## Endpoints",
        "",
        *endpoint_table(result),
        "",
        "## Database round trips per request",
        "",
        "Counted by a PostgreSQL protocol proxy between the server and the database (each Sync or "
        "simple Query is one wait for the server), after warm-up, median of 10 requests.",
        "",
    ]
    for name, value in result["round_trips"].items():
        if not isinstance(value, dict):
            continue
        out.append(f"- **{name}**: {value['median']:g} (min {value['min']}, max {value['max']})")
        for i, label in enumerate(value["example"], 1):
            short = label if len(label) <= 160 else label[:157] + "..."
            out.append(f"  {i}. `{short}`")
    out.append(
        "- list SQL sent by the server identical to the raw baseline's: "
        f"{result['round_trips'].get('list_sql_identical')}"
    )
    if result.get("layers"):
        out += ["", *layers.table(result["layers"])]
    out += ["", "## Ward lookup cost inside PostgreSQL", "", *ward_cost_table(result)]
    out += [
        "",
        "## List query at several table sizes",
        "",
        "| requests in table | rows returned | median ms | p90 ms | plan |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for s in result["scale"]:
        out.append(
            f"| {s['rows_in_table']:,} | {s['rows_returned']} | {s['median_ms']:.2f} | "
            f"{s['p90_ms']:.2f} | `{s['plan_file']}` |"
        )
    if not result["config"]["ten_million"]:
        out.append("")
        out.append(
            "10,000,000 rows: skipped in this run "
            "(add `--with-10m`; ~8 minutes of loading, ~4 GB of disk)."
        )
    out += [
        "",
        "## SQL of the raw baseline",
        "",
        f"Query string: `{result['list_query']}`",
        "",
        "List (`requests.json`), replayed verbatim by the raw asyncpg app:",
        "",
        "```sql",
        result["sql"]["list"],
        "```",
        "",
        "Single row (`requests/{id}.json`):",
        "",
        "```sql",
        result["sql"]["get"],
        "```",
        "",
        "INSERT of POST (ward lookup inside the statement):",
        "",
        "```sql",
        result["sql"]["insert"],
        "```",
        "",
    ]
    if result.get("exports"):
        out += ["## Exports", "", *export_lines(result), ""]
    if result["profiles"]:
        out += ["## Profiles (py-spy)", ""]
        out += [f"- {name}: `{path}`" for name, path in result["profiles"].items()]
        out.append("")
    return "\n".join(out)


def export_lines(result: dict[str, Any]) -> list[str]:
    """The exports' lines (issue 20): memory flat across databases, throughput ÷ COPY."""
    lines = result.get("exports")
    if not lines:
        return []
    out = ["| export (CSV) | rows | peak RSS (MiB) |", "| --- | ---: | ---: |"]
    for rows, line in sorted(lines["memory"].items(), key=lambda item: int(item[0])):
        out.append(
            f"| `open311 export`, {int(rows):,}-row database | {line['rows']:,} | "
            f"{line['peak_rss_mib']:.0f} |"
        )
    http, copy = lines["http_csv"], lines["copy_csv"]
    out += [
        "",
        f"Export memory, largest ÷ smallest database: {lines['memory_ratio_largest_smallest']} "
        "(issue 20: flat). "
        f"GET exports/requests.csv {http['rows'] / http['seconds']:,.0f} rows/s vs PostgreSQL "
        f"COPY TO STDOUT {copy['rows'] / copy['seconds']:,.0f} rows/s: "
        f"{lines['throughput_vs_copy']} × COPY (issue 20: ≥ 0.5).",
    ]
    return out


def terminal(result: dict[str, Any]) -> str:
    speed = ["", *layers.table(result["layers"]), ""] if result.get("layers") else []
    exported = ["", *export_lines(result)] if result.get("exports") else []
    return "\n".join(
        [
            "",
            machine_line(result),
            "",
            *ratio_table(result),
            "",
            *endpoint_table(result),
            *speed,
            *exported,
            "",
        ]
    )


def readme_section(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            README_BEGIN,
            "",
            machine_line(result),
            "",
            *ratio_table(result),
            "",
            *endpoint_table(result),
            "",
            "Ward lookup cost inside PostgreSQL:",
            "",
            *ward_cost_table(result),
            "",
            "Details (round trips, EXPLAIN at each table size, the SQL): "
            "`bench/results/latest.md`.",
            "",
            README_END,
        ]
    )


def update_readme(path: Path, result: dict[str, Any]) -> None:
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit("README.md has no bench markers in its Performance section")
    head, _, rest = text.partition(README_BEGIN)
    _, _, tail = rest.partition(README_END)
    path.write_text(head + readme_section(result) + tail)
