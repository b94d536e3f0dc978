"""The application factory: ``uvicorn app.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.api import handlers
from app.api.deps import AppState
from app.api.router import georeport_router
from app.db import is_postgres, make_engine
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import CatalogCache
from app.domain.jurisdictions import JurisdictionRegistry
from app.models.base import utcnow
from app.settings import Settings, get_settings

DESCRIPTION = """\
Open311 GeoReport v2 server. Every method answers in XML (`.xml`) and JSON (`.json`),
chosen by the path suffix; errors are GeoReport `errors` documents in the same format.
"""


def _operation_id(route: APIRoute) -> str:
    return route.operation_id or route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing touches the database until the lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.open311 = AppState(
            settings=settings,
            engine=engine,
            postgis=is_postgres(engine),
            jurisdictions=JurisdictionRegistry(engine, settings),
            catalogs=CatalogCache(engine),
            wards=WardIndexCache(engine),
            started_at=utcnow().replace(microsecond=0),
        )
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Open311 GeoReport v2",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    handlers.install(app)
    app.include_router(georeport_router(settings.base_path))
    return app
