"""The application factory: ``uvicorn app.main:create_app --factory``."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import observability, web
from app.api import docs, docs_ui, handlers
from app.api.deps import AppState
from app.api.middleware import Edge
from app.api.router import include_georeport
from app.api.routes import admin
from app.domain.api_keys import KeyCache
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import CatalogCache
from app.domain.geocoding import Locator
from app.domain.jurisdictions import JurisdictionRegistry
from app.domain.media import PhotoIntake
from app.domain.ratelimit import RateLimiter
from app.domain.submissions import Submissions
from app.media.runtime import close_object_store
from app.settings import Settings, get_settings
from app.store import open_store
from app.store.tables.base import utcnow

DESCRIPTION = """\
Open311 GeoReport v2 server ([specification](http://wiki.open311.org/GeoReport_v2)).
Every method answers in XML (`.xml`) and JSON (`.json`), chosen by the path suffix; errors
are GeoReport `errors` documents in the same format, with the matching HTTP status.
"""


def _operation_id(route: APIRoute) -> str:
    return route.operation_id or route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing touches the database until the lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        engine = store.engine
        wards = WardIndexCache(engine)
        catalogs = CatalogCache(engine)
        limiter = RateLimiter(engine, settings.rate_limits.max_tracked_clients)
        keys = KeyCache(store)
        photos = None
        if settings.media.enabled:
            photos = PhotoIntake(settings.media, settings.base_path)
            # Fails early (ObjectStoreUnavailable) on a directory that cannot be written or
            # a bucket these credentials cannot reach.
            await photos.store.check()
        locator = Locator(
            settings.geocode, engine, wards=wards, tolerance_m=settings.wards.tolerance_m
        )
        app.state.open311 = AppState(
            settings=settings,
            store=store,
            engine=engine,
            jurisdictions=JurisdictionRegistry(engine, settings),
            catalogs=catalogs,
            wards=wards,
            limiter=limiter,
            keys=keys,
            submissions=Submissions(
                settings, store, limiter, catalogs, wards, keys, photos=photos, locator=locator
            ),
            started_at=utcnow().replace(microsecond=0),
            photos=photos,
            locator=locator,
        )
        # Everything built so far (routes, models, metadata, caches) lives as long as the
        # process: keep it out of the cyclic collector's passes, whose full sweeps over those
        # objects would otherwise show up as latency spikes under load.
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        task = None
        if settings.worker.in_process:
            from app.worker import Worker

            worker = Worker(engine, settings, store)
            task = asyncio.create_task(worker.run(stop), name="open311-worker")
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await locator.aclose()
            if photos is not None:
                await close_object_store(settings.media)
            await store.close()

    app = FastAPI(
        title="Open311 GeoReport v2",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # FastAPI's /docs and /redoc load their assets from a CDN; docs_ui serves them locally.
        docs_url=None,
        redoc_url=None,
        license_info={"name": "MIT"},
    )
    handlers.install(app)
    docs.install(app, success_status_code=settings.requests.success_status_code)
    docs_ui.install(app)
    include_georeport(app, settings.base_path, lean=settings.speed.lean_route)
    app.include_router(admin.router)
    in_flight = observability.InFlight()
    observability.install(app, settings, in_flight)
    web.install(app)
    # The only middleware of ours: load shedding, request ids, the access log, metrics,
    # CORS and response headers in one layer (app.api.middleware).
    app.add_middleware(Edge, settings=settings, in_flight=in_flight)
    if settings.http.trusted_proxies:
        # Outermost, so every layer (limits, access log) sees the client the proxies name.
        # Only the named proxies are believed; `open311 serve` turns uvicorn's own handling
        # off (it would believe any caller on loopback).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.http.trusted_proxies)
    return app
