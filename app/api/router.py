"""All GeoReport routes under the configured base path."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from app.api.deps import read_access
from app.api.lean import fastapi_handlers
from app.api.routes import (
    areas,
    discovery,
    exports,
    jurisdictions,
    media,
    reports,
    requests,
    services,
    tokens,
    updates,
    webhooks,
)

# The modules of the GeoReport API, in the order their routes are matched.
MODULES = (
    discovery,
    services,
    requests,
    tokens,
    areas,
    updates,
    webhooks,
    exports,
    jurisdictions,
    media,
    reports,
)


def include_georeport(app: FastAPI, base_path: str, *, lean: bool = True) -> None:
    """The GeoReport v2 API mounted at ``base_path``.

    Each module's router is included in the app directly, not through one GeoReport router:
    FastAPI matches a call by walking included routers level by level, so one level less is
    less work on every call. ``lean=False``: every route runs FastAPI's own handler (no
    ``LeanRoute`` plan; ``speed.lean_route``)."""
    if not lean:
        fastapi_handlers(app)
    for module in MODULES:
        app.include_router(module.router, prefix=base_path, dependencies=[Depends(read_access)])
