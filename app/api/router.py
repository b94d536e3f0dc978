"""All GeoReport routes under the configured base path."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import areas, discovery, requests, services, tokens


def georeport_router(base_path: str) -> APIRouter:
    """The GeoReport v2 API mounted at ``base_path``."""
    router = APIRouter(prefix=base_path)
    for module in (discovery, services, requests, tokens, areas):
        router.include_router(module.router)
    return router
