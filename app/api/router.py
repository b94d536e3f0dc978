"""All GeoReport routes under the configured base path."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import read_access
from app.api.routes import (
    areas,
    discovery,
    jurisdictions,
    requests,
    services,
    tokens,
    updates,
    webhooks,
)


def georeport_router(base_path: str) -> APIRouter:
    """The GeoReport v2 API mounted at ``base_path``."""
    router = APIRouter(prefix=base_path, dependencies=[Depends(read_access)])
    for module in (discovery, services, requests, tokens, areas, updates, webhooks, jurisdictions):
        router.include_router(module.router)
    return router
