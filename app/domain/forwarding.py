"""POST requests to a remote or region jurisdiction: validate locally, pick the partner.

Federation planning is domain work (``app.domain.submissions`` calls it); ``app.federation``
mirrors the partners' services and forwards what is queued here, so the domain never imports it.

The submission is validated against the partner's mirrored definition (so a client gets the
same 400s as from a local jurisdiction, at once), then queued for the worker to forward; the
client gets a token whatever the service's type. A region needs ``lat``/``long``: the point is
looked up in the region's current partner boundary set (Shapely index on both backends, with
the ward tolerance); outside every partner it is a 400. A routed submission's token belongs to
the region (poll it with the region's jurisdiction_id); the id it resolves to is that of the
synced copy in the partner's remote jurisdiction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domain.boundaries import PARTNER_SET_KIND, WardIndexCache, current_set
from app.domain.catalog import CatalogCache, ServiceInfo
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.requests import Submission, validate_submission
from app.errors import InvalidParameter, ServiceNotFound
from app.settings import Settings
from app.store import forwarding as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


async def remote_partner(conn: AsyncConnection, code: str) -> tuple[int, str] | None:
    """The primary key and code of the remote jurisdiction with this code (any case)."""
    return await store.remote_partner(conn, code)


@dataclass(frozen=True, slots=True)
class ForwardPlan:
    """Where a validated submission goes."""

    target_pk: int
    service: ServiceInfo
    submission: Submission


async def plan_forward(
    *,
    engine: AsyncEngine,
    settings: Settings,
    catalogs: CatalogCache,
    wards: WardIndexCache,
    jurisdiction: JurisdictionInfo,
    service_code: str,
    params: Sequence[tuple[str, str]],
) -> ForwardPlan:
    """Validate a POST for a remote/region jurisdiction and pick the partner (400/404)."""
    service = (await catalogs.get(jurisdiction.pk)).get(service_code)
    submission = validate_submission(params, service, settings.requests)
    if jurisdiction.kind == "remote":
        return ForwardPlan(jurisdiction.pk, service, submission)
    if submission.lat is None or submission.lon is None:
        raise InvalidParameter(
            f"{jurisdiction.name} routes requests to its partner cities by location: "
            "lat and long are required."
        )
    async with engine.connect() as conn:
        set_id = await current_set(conn, jurisdiction.pk, PARTNER_SET_KIND)
    hit = None
    if set_id is not None:
        index = await wards.get(set_id)
        hit = index.lookup(submission.lat, submission.lon, settings.wards.tolerance_m)
    if hit is None:
        raise InvalidParameter(
            f"The location lat/long is outside every partner city of {jurisdiction.name} "
            f"({jurisdiction.code}). Check the coordinates (decimal degrees, WGS84)."
        )
    async with engine.connect() as conn:
        target = await remote_partner(conn, hit.code)
    if target is None:
        raise InvalidParameter(f"The partner {hit.code} of {jurisdiction.code} is not configured.")
    target_pk, target_code = target
    try:
        routed = (await catalogs.get(target_pk)).get(service_code)
    except ServiceNotFound as exc:
        raise InvalidParameter(
            f"service_code {service_code!r} is not offered by {target_code}, the partner city "
            "at this location."
        ) from exc
    return ForwardPlan(target_pk, routed, validate_submission(params, routed, settings.requests))
