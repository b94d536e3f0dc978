"""``LeanRoute``: FastAPI's parameter solving, worked out once per route instead of per call.

On every call FastAPI walks the endpoint's dependency tree and re-derives, for each parameter,
where it comes from and how to read it (``solve_dependencies``); on a short read that is most
of the time spent in our code. For routes made only of simple parts, all of that is the same
on every call, so ``LeanRoute`` derives a plan when the route is built and each call only runs
it: call the dependencies (once each, in FastAPI's order), read the path and query values and
validate them with FastAPI's own fields. Semantics stay FastAPI's: dependencies first,
parameter errors collected into one ``RequestValidationError``, the endpoint's Response
returned as is.

Simple parts: ``Request``; path and query parameters of a scalar type (str, int, float, bool,
an Enum, optionally ``| None``); ``Depends`` on ``async def`` functions made of simple parts.
A route with anything else (bodies, headers, generators, plain ``def``, security scopes,
sequences, models), or an app with dependency overrides, runs FastAPI's own handler, as do
the routes of an app given to ``fastapi_handlers`` (``speed.lean_route`` off, to measure).
"""

from __future__ import annotations

import copy
import enum
import inspect
import types
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from fastapi import FastAPI, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

_included: ContextVar[Any] | None
try:  # FastAPI >= 0.120 builds an included route's handler with its inclusion's dependencies.
    from fastapi.routing import _effective_route_context_var as _included
except ImportError:  # older versions copy included routes, dependencies merged
    _included = None

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_SCALARS = (str, int, float, bool)


def fastapi_handlers(app: FastAPI) -> None:
    """The routes included in ``app`` run FastAPI's own handler, never a plan."""
    app.state.fastapi_handlers = True


class Unsupported(Exception):
    """A part of the route the plan does not handle (FastAPI's handler runs it)."""


def _scalar(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return len(members) == 1 and _scalar(members[0])
    return annotation in _SCALARS or (
        isinstance(annotation, type) and issubclass(annotation, enum.Enum)
    )


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    alias: str
    loc: tuple[str, str]
    field: Any  # fastapi's ModelField

    @classmethod
    def of(cls, field: Any, where: str) -> _Param:
        info = field.field_info
        expected = params.Path if where == "path" else params.Query
        if type(info) is not expected or info.validation_alias not in (None, field.alias):
            raise Unsupported(f"{where} parameter {field.name}")
        if not _scalar(info.annotation):
            raise Unsupported(f"type of {field.name}")
        return cls(field.name, field.alias, (where, field.alias), field)

    def read(self, source: Any, values: dict[str, Any], errors: list[Any]) -> None:
        """Validate this parameter's value from ``source`` into ``values`` (as FastAPI)."""
        value = source.get(self.alias)
        field = self.field
        if value is None:
            if field.field_info.is_required():
                errors.append(
                    {"type": "missing", "loc": self.loc, "msg": "Field required", "input": None}
                )
                return
            value = copy.deepcopy(field.default)
            if not field.field_info.validate_default:
                values[self.name] = value
                return
        validated, problems = field.validate(value, values, loc=self.loc)
        if problems:
            errors.extend(problems)
        else:
            values[self.name] = validated


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to produce the keyword arguments of one callable."""

    calls: tuple[tuple[str | None, Callable[..., Any], _Plan], ...]
    path: tuple[_Param, ...]
    query: tuple[_Param, ...]
    request_name: str | None

    @classmethod
    def of(cls, dependant: Any) -> _Plan:
        if (
            dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.websocket_param_name
            or dependant.http_connection_param_name
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
            or getattr(dependant, "own_oauth_scopes", None)
        ):
            raise Unsupported("a parameter kind FastAPI must handle")
        calls = []
        for sub in dependant.dependencies:
            call = sub.call
            if not inspect.iscoroutinefunction(call) or not sub.use_cache:
                raise Unsupported(f"dependency {call!r}")
            if getattr(sub, "concurrency", None) is not None:
                raise Unsupported(f"dependency {call!r} with a concurrency limit")
            calls.append((sub.name, call, cls.of(sub)))
        return cls(
            calls=tuple(calls),
            path=tuple(_Param.of(f, "path") for f in dependant.path_params),
            query=tuple(_Param.of(f, "query") for f in dependant.query_params),
            request_name=dependant.request_param_name,
        )

    async def solve(
        self, request: Request, cache: dict[Any, Any], errors: list[Any]
    ) -> dict[str, Any]:
        """The arguments, calling each dependency once per request (``cache``)."""
        values: dict[str, Any] = {}
        for name, call, plan in self.calls:
            if call in cache:
                solved = cache[call]
            else:
                own: list[Any] = []
                arguments = await plan.solve(request, cache, own)
                if own:
                    errors.extend(own)
                    continue
                solved = cache[call] = await call(**arguments)
            if name is not None:
                values[name] = solved
        if self.path:
            path_params = request.path_params
            for param in self.path:
                param.read(path_params, values, errors)
        if self.query:
            query_params = request.query_params
            for param in self.query:
                param.read(query_params, values, errors)
        if self.request_name is not None:
            values[self.request_name] = request
        return values


def _answers_response(endpoint: Any) -> bool:
    """An ``async def`` endpoint annotated to return a Response (FastAPI passes it through)."""
    if not inspect.iscoroutinefunction(endpoint):
        return False
    returned = inspect.signature(endpoint).return_annotation
    if isinstance(returned, str):  # postponed annotations: resolve the return type alone
        try:
            returned = eval(returned, getattr(endpoint, "__globals__", {}))  # noqa: S307 - resolves the endpoint's own string annotation (code, not input)
        except Exception:  # unresolvable: let FastAPI decide
            return False
    return isinstance(returned, type) and issubclass(returned, Response)


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose calls run a plan made once (see the module docstring)."""

    def get_route_handler(self) -> Handler:
        """A handler running the plan, or FastAPI's when the route is not simple."""
        fastapi_handler = super().get_route_handler()
        route: Any = self
        context = _included.get() if _included is not None else None
        if context is not None and context.original_route is self:
            route = context
        # The app a route is included in provides its dependency overrides.
        app_state = getattr(route.dependency_overrides_provider, "state", None)
        if getattr(app_state, "fastapi_handlers", False):
            return fastapi_handler
        if route.body_field is not None or not _answers_response(route.dependant.call):
            return fastapi_handler
        try:
            plan = _Plan.of(route.dependant)
        except Unsupported:
            return fastapi_handler
        endpoint = route.dependant.call
        overrides = route.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await fastapi_handler(request)
            errors: list[Any] = []
            values = await plan.solve(request, {}, errors)
            if errors:
                raise RequestValidationError(errors)
            response = await endpoint(**values)
            if not isinstance(response, Response):
                raise TypeError(
                    f"{endpoint.__qualname__} returned {type(response)}, not a Response"
                )
            return response

        handler.plan = plan  # type: ignore[attr-defined]  # tests check which routes are lean
        return handler
