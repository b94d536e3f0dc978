"""LeanRoute answers exactly as FastAPI's APIRoute: same values, same errors, same order."""

# No postponed annotations: FastAPI must see the local dependencies in the signatures.

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from app.api.lean import LeanRoute


class Colour(StrEnum):
    red = "red"
    blue = "blue"


@dataclass
class Built:
    app: FastAPI
    calls: Counter[str]
    router: APIRouter
    path_of: Any


def build(route_class: type[APIRoute]) -> Built:
    """The same little app on either route class; ``calls`` counts dependency calls."""
    calls: Counter[str] = Counter()

    async def guard(request: Request) -> None:
        calls["guard"] += 1
        if request.query_params.get("deny"):
            raise HTTPException(403, "denied")

    async def path_of(request: Request) -> str:
        calls["path_of"] += 1
        return request.url.path

    async def limit(
        path: Annotated[str, Depends(path_of)],
        q: Annotated[int | None, Query(description="A number.")] = None,
    ) -> str:
        calls["limit"] += 1
        if q == 13:
            raise HTTPException(400, "unlucky")
        return f"{path}:{q}"

    router = APIRouter(route_class=route_class)

    @router.get("/items/{item}.{c}")
    async def item(
        item: Annotated[str, Path(description="An item.")],
        colour: Annotated[Colour, Path(alias="c")],
        path: Annotated[str, Depends(path_of)],
        limited: Annotated[str, Depends(limit)],
        n: Annotated[int, Query()],
        request: Request,
        flag: bool = False,
        name: str | None = None,
        ratio: Annotated[float | None, Query()] = None,
    ) -> Response:
        body = {
            "item": item,
            "colour": colour.value,
            "path": path,
            "limited": limited,
            "n": n,
            "flag": flag,
            "name": name,
            "ratio": ratio,
            "method": request.method,
        }
        return JSONResponse(body)

    @router.get("/headers")
    async def with_header(x_thing: Annotated[str | None, Header()] = None) -> Response:
        return JSONResponse({"x_thing": x_thing})

    app = FastAPI()
    app.include_router(router, prefix="/v1", dependencies=[Depends(guard)])
    return Built(app, calls, router, path_of)


CASES = [
    "/v1/items/a.red?n=1",
    "/v1/items/a.blue?n=2&flag=true&name=x&ratio=0.5",
    "/v1/items/a.red?n=1&n=7&name=first&name=last",  # repeated scalars: the last one
    "/v1/items/a.green?n=1",  # not an enum value
    "/v1/items/a.red",  # missing required
    "/v1/items/a.red?n=one&flag=maybe&ratio=x",  # several errors at once
    "/v1/items/a.green?n=x&q=y",  # errors from a dependency's parameters too
    "/v1/items/a.red?n=1&q=13",  # a dependency raising
    "/v1/items/a.red?n=1&deny=1",  # the inclusion's dependency raising
    "/v1/items/%C3%A9t%C3%A9.red?n=1&name=%F0%9F%9A%A7",
    "/v1/items/a.red?n=1&q=5&flag=0&name=",
    "/v1/headers",
]


@pytest.mark.parametrize("path", CASES)
async def test_same_answers_as_apiroute(path: str) -> None:
    answers = []
    for route_class in (APIRoute, LeanRoute):
        built = build(route_class)
        transport = httpx.ASGITransport(app=built.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(path, headers={"x-thing": "t"})
        answers.append((response.status_code, response.json(), dict(built.calls)))
    assert answers[0] == answers[1]
    if path.startswith("/v1/items") and answers[0][0] == 200:
        assert answers[0][2]["path_of"] == 1  # one call per request, however often used


def test_simple_routes_run_a_plan_and_others_fastapi() -> None:
    router = build(LeanRoute).router
    lean = {r.path: hasattr(r.get_route_handler(), "plan") for r in router.routes}  # type: ignore[attr-defined]
    assert lean == {"/items/{item}.{c}": True, "/headers": False}


async def test_dependency_overrides_are_honoured() -> None:
    built = build(LeanRoute)

    async def fixed(request: Request) -> str:
        return "overridden"

    built.app.dependency_overrides[built.path_of] = fixed
    transport = httpx.ASGITransport(app=built.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/v1/items/a.red?n=1")
    assert response.status_code == 200
    assert response.json()["path"] == "overridden"


def test_every_georeport_read_runs_a_plan() -> None:
    from app.api.routes import discovery, requests, services, tokens

    for module in (discovery, services, requests, tokens):
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            if "GET" in route.methods:
                assert hasattr(route.get_route_handler(), "plan"), route.path
