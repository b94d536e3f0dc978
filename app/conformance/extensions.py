"""The extension suites: ``updates`` (mySociety), ``chicago`` and ``ours`` (this server's).

They run after the core checks of the same run and share its data (the sample request, the
created request). A suite the user asked for judges its endpoints like core ones: a missing
endpoint is a finding, not a skip.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from app.conformance import rules as R
from app.conformance.checks import (
    DESCRIPTION,
    check,
    created,
    created_id,
    main_value,
    now_utc,
    optional_sample,
    w3c_problems,
    with_key,
)
from app.conformance.context import Context, Skip, passed
from app.conformance.documents import (
    JSON,
    XML,
    format_problems,
    parity_problems,
    parse_w3c,
    short,
)
from app.conformance.rules import Problem, problem

UPDATE_FIELDS = ("update_id", "service_request_id", "status", "updated_datetime")


async def listing(
    ctx: Context, path: str, root: str, rule: R.Rule, params: list[tuple[str, str]] | None = None
) -> tuple[list[Problem], list[Any] | None]:
    """GET a list resource in each format: problems, and the items of the first format."""
    exchanges = await ctx.both(path, params, cache=False)
    problems: list[Problem] = []
    for exchange in exchanges.values():
        problems += format_problems(
            exchange, status=200, json_top=list, xml_root=root, status_rule=rule
        )
    if problems:
        return problems, None
    if set(exchanges) == {JSON, XML}:
        problems += parity_problems(
            exchanges[JSON].value, exchanges[XML].value, f"GET {path}", exchanges[XML]
        )
    value = main_value(exchanges[ctx.options.formats[0]])
    return problems, [item for item in value if isinstance(item, dict)]


# ---------------------------------------------------------------------------------------
# updates: mySociety / FixMyStreet servicerequestupdates


@check(
    "updates.list",
    "GET servicerequestupdates: request_update items with their fields",
    R.UPDATES,
    suite="updates",
)
async def updates_list(ctx: Context) -> str:
    end = now_utc()
    params = [
        ("start_date", (end - timedelta(days=90)).isoformat()),
        ("end_date", end.isoformat()),
    ]
    problems, items = await listing(
        ctx, "servicerequestupdates", "service_request_updates", R.UPDATES, params
    )
    for index, item in enumerate(items or []):
        where = f"service_request_updates[{index}]"
        for name in UPDATE_FIELDS:
            if item.get(name) in (None, ""):
                problems.append(problem(R.UPDATES, f"{name} missing or empty", where))
        absent = [name for name in ("description", "media_url") if name not in item]
        if absent:
            problems.append(problem(R.ALL_FIELDS, f"fields absent: {', '.join(absent)}", where))
        if item.get("updated_datetime") is not None:
            problems += w3c_problems(item["updated_datetime"], "updated_datetime", where)
    return passed(problems, f"{len(items or [])} updates in the last 90 days")


@check(
    "updates.post",
    "POST servicerequestupdates answers the new update_id",
    R.UPDATES_POST,
    needs_api_key=True,
    suite="updates",
)
async def updates_post(ctx: Context) -> str:
    await created(ctx)
    request_id = await created_id(ctx)
    if request_id is None:
        raise Skip("no service_request_id from the POST of a request (see post.create)")
    problems: list[Problem] = []
    for fmt in ctx.options.formats:
        form = [
            ("service_request_id", request_id),
            ("update_id", f"conformance-{uuid.uuid4().hex[:12]}"),
            ("status", "OPEN"),
            ("updated_datetime", now_utc().isoformat()),
            ("description", DESCRIPTION),
        ]
        exchange = await ctx.post("servicerequestupdates", fmt, with_key(ctx, form))
        found = format_problems(
            exchange,
            status=(200, 201),
            json_top=list,
            xml_root="service_request_updates",
            status_rule=R.UPDATES_POST,
        )
        problems += found
        if found:
            continue
        items = main_value(exchange)
        if len(items) != 1 or not isinstance(items[0], dict) or not items[0].get("update_id"):
            problems.append(
                problem(R.UPDATES_POST, "no update_id in the answer", exchange.label, exchange)
            )
    return passed(problems, f"an update of request {request_id} accepted in each format")


# ---------------------------------------------------------------------------------------
# chicago: extensions=true, page_size, updated_after


@check(
    "chicago.extensions",
    "extensions=true adds extended_attributes, attributes and notes",
    R.CHICAGO,
    suite="chicago",
)
async def chicago_extensions(ctx: Context) -> str:
    problems, items = await listing(
        ctx, "requests", "service_requests", R.CHICAGO, [("extensions", "true")]
    )
    if items == []:
        raise Skip("the default window lists no request to extend")
    for index, item in enumerate(items or []):
        where = f"requests[{index}]"
        if not isinstance(item.get("extended_attributes"), dict):
            problems.append(problem(R.CHICAGO, "no extended_attributes object", where))
        if not isinstance(item.get("attributes"), dict | list):
            problems.append(problem(R.CHICAGO_PARTS, "no attributes", where))
        if not isinstance(item.get("notes"), list):
            problems.append(problem(R.CHICAGO_PARTS, "no notes list", where))
    return passed(problems, f"{len(items or [])} extended requests")


@check(
    "chicago.opt_in",
    "without extensions=true the output is core v2",
    R.EXTENSIONS_OPT_IN,
    suite="chicago",
)
async def chicago_opt_in(ctx: Context) -> str:
    exchange = (await ctx.both("requests"))[ctx.options.formats[0]]
    value = main_value(exchange) if exchange.parsed and exchange.status == 200 else None
    if not isinstance(value, list):
        raise Skip("no usable request list (see requests.formats)")
    problems = [
        problem(R.EXTENSIONS_OPT_IN, f"{name} without extensions=true", f"requests[{index}]")
        for index, item in enumerate(value)
        if isinstance(item, dict)
        for name in ("extended_attributes", "notes")
        if name in item
    ]
    return passed(problems, "no extension data unless asked for")


@check("chicago.page_size", "page_size=1 answers at most one request", R.PAGING, suite="chicago")
async def chicago_page_size(ctx: Context) -> str:
    problems, items = await listing(
        ctx, "requests", "service_requests", R.PAGING, [("page_size", "1")]
    )
    if items is not None and len(items) > 1:
        problems.append(problem(R.PAGING, "page_size=1 answered more than one", f"{len(items)}"))
    return passed(problems, f"page_size=1: {len(items or [])} request(s)")


@check(
    "chicago.updated_after",
    "updated_after filters on updated_datetime",
    R.FILTERS,
    suite="chicago",
)
async def chicago_updated_after(ctx: Context) -> str:
    example = await optional_sample(ctx)
    moment = parse_w3c(example.get("updated_datetime")) if example else None
    if moment is None:
        raise Skip("no sample request with a W3C updated_datetime")
    after = moment.isoformat()
    problems, items = await listing(
        ctx, "requests", "service_requests", R.FILTERS, [("updated_after", after)]
    )
    older = [
        i.get("service_request_id")
        for i in items or []
        if (at := parse_w3c(i.get("updated_datetime"))) is not None and at < moment
    ]
    if older:
        problems.append(
            problem(R.FILTERS, "updated_after lists older updates", f"e.g. {short(older[0])}")
        )
    return passed(problems, f"updated_after={after}: {len(items or [])} request(s)")


# ---------------------------------------------------------------------------------------
# ours: this server's extensions


@check("ours.areas", "GET areas: a list of areas in each format", R.OURS, suite="ours")
async def ours_areas(ctx: Context) -> str:
    problems, items = await listing(ctx, "areas", "areas", R.OURS)
    return passed(problems, f"{len(items or [])} areas")


@check(
    "ours.jurisdictions",
    "GET jurisdictions: every jurisdiction with its jurisdiction_id",
    R.OURS,
    suite="ours",
)
async def ours_jurisdictions(ctx: Context) -> str:
    problems, items = await listing(ctx, "jurisdictions", "jurisdictions", R.OURS)
    for index, item in enumerate(items or []):
        if not isinstance(item.get("jurisdiction_id"), str):
            problems.append(problem(R.OURS, "no jurisdiction_id", f"jurisdictions[{index}]"))
    if items == []:
        problems.append(problem(R.OURS, "no jurisdiction listed"))
    return passed(problems, f"{len(items or [])} jurisdiction(s)")


@check("ours.paging", "page/page_size: pages of one, disjoint", R.PAGING, suite="ours")
async def ours_paging(ctx: Context) -> str:
    # First a window that ends before this run's own POSTs: requests it created meanwhile (a
    # batch token resolved by the server's worker, say) would shift the pages. A server with
    # nothing older is paged through its default window.
    end = ctx.before_writes().isoformat(timespec="seconds")
    for window in ([("end_date", end)], []):
        problems, pages = await _two_pages(ctx, window)
        if problems or pages[0]:
            break
    else:
        raise Skip("no request in the default window to page through")
    first = {i.get("service_request_id") for i in pages[0]}
    second = {i.get("service_request_id") for i in pages[1]}
    if first & second:
        overlap = sorted(str(i) for i in first & second)
        problems.append(problem(R.PAGING, "pages 1 and 2 overlap", short(overlap)))
    return passed(
        problems, f"pages of one: {sorted(map(str, first))} then {sorted(map(str, second))}"
    )


async def _two_pages(
    ctx: Context, window: list[tuple[str, str]]
) -> tuple[list[Problem], list[list[dict[str, Any]]]]:
    problems: list[Problem] = []
    pages = []
    for page in ("1", "2"):
        found, items = await listing(
            ctx,
            "requests",
            "service_requests",
            R.PAGING,
            [*window, ("page_size", "1"), ("page", page)],
        )
        problems += found
        pages.append(items or [])
        if items is not None and len(items) > 1:
            problems.append(problem(R.PAGING, "page_size=1 answered more than one", f"page={page}"))
    return problems, pages
