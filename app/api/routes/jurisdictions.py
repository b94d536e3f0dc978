"""Extension: the jurisdictions served (local, remote partners, regions) with their health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from app.api.deps import FormatDep, QueryDep, StateDep, first
from app.api.responses import render
from app.federation import store
from app.federation.service import Federation

router = APIRouter(tags=["jurisdictions (extension)"])


@router.get(
    "/jurisdictions.{format}",
    operation_id="jurisdictions-list",
    response_class=Response,
    include_in_schema=False,
)
async def list_jurisdictions(fmt: FormatDep, state: StateDep) -> Response:
    """Every jurisdiction: jurisdiction_id, name, kind, status, last_synced_at, partner_url."""
    async with state.engine.connect() as conn:
        items = await store.listing(conn)
    return render("jurisdictions", items, fmt)


@router.get(
    "/jurisdictions/{jurisdiction_id}.{format}",
    operation_id="jurisdictions-get",
    response_class=Response,
    include_in_schema=False,
)
async def get_jurisdiction_status(
    request: Request,
    jurisdiction_id: Annotated[str, Path(description="A jurisdiction_id.")],
    fmt: FormatDep,
    state: StateDep,
    query: QueryDep,
) -> Response:
    """One jurisdiction; ``check=true`` probes a remote partner live (502/503/504 on failure,
    within ``federation.timeout_s``; 503 at once while its circuit is open)."""
    if (first(query, "check") or "").strip().lower() in ("true", "1"):
        mounts = getattr(request.app.state, "federation_mounts", None)
        async with Federation(state.engine, state.settings, mounts=mounts) as federation:
            await federation.check(jurisdiction_id)
    async with state.engine.connect() as conn:
        items = [
            i
            for i in await store.listing(conn)
            if i["jurisdiction_id"].lower() == jurisdiction_id.strip().lower()
        ]
    if not items:
        from app.errors import JurisdictionNotFound

        raise JurisdictionNotFound(f"jurisdiction_id {jurisdiction_id!r} is not served here.")
    return render("jurisdictions", items, fmt)
