"""What every check gets: the options, an HTTP client that never raises, shared memoized data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx

from app.conformance.documents import FORMATS, MAX_SHOWN, Exchange, short
from app.conformance.rules import Problem

T = TypeVar("T")
Params = Sequence[tuple[str, str]]
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True)
class Options:
    """What the user asked for."""

    base_url: str
    api_key: str | None = None
    jurisdiction_id: str | None = None
    service_code: str | None = None
    timeout: float = 30.0
    max_definitions: int = 25
    formats: tuple[str, ...] = FORMATS  # the formats to check (both unless told)


class Skip(Exception):
    """The check cannot be judged (its reason is printed)."""


class Failure(Exception):
    """The server broke the rules the check is about (at some level: see ``rules``)."""

    def __init__(self, problems: Sequence[Problem], detail: str = "") -> None:
        self.problems = list(problems)
        self.detail = detail
        super().__init__(summarize(self.problems))


def summarize(problems: Sequence[Problem]) -> str:
    """The first problems in one line, and how many more there are."""
    shown = "; ".join(p.text() for p in problems[:MAX_SHOWN])
    more = len(problems) - MAX_SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def passed(problems: Sequence[Problem], detail: str) -> str:
    """``detail`` when there are no problems; else the check reports them (with the detail)."""
    if problems:
        raise Failure(problems, detail)
    return detail


def segment(value: str) -> str:
    """One path segment (a service code, id or token), percent-encoded."""
    return quote(value, safe="")


class Context:
    """The options, an HTTP client whose failures become data, and memoized shared results."""

    def __init__(self, client: httpx.AsyncClient, options: Options) -> None:
        self.client = client
        self.options = options
        self._responses: dict[tuple[Any, ...], Exchange] = {}
        self._memo: dict[str, tuple[bool, Any]] = {}
        self.history: list[Exchange] = []  # every response, for the cross-cutting checks
        self.started_at = datetime.now(UTC)

    def before_writes(self) -> datetime:
        """A moment before this run wrote anything, on the server's clock when it tells it
        (the ``Date`` of its first answer, less a second), else on ours."""
        for exchange in self.history:
            stamp = {k.lower(): v for k, v in exchange.headers or ()}.get("date")
            if stamp:
                try:
                    return parsedate_to_datetime(stamp).astimezone(UTC) - timedelta(seconds=1)
                except (TypeError, ValueError):
                    break
        return self.started_at - timedelta(seconds=1)

    def _params(self, params: Params | None) -> list[tuple[str, str]]:
        items = list(params or ())
        if self.options.jurisdiction_id:
            items.append(("jurisdiction_id", self.options.jurisdiction_id))
        return items

    async def _send(
        self, method: str, path: str, fmt: str, params: Params | None, form: Params | None
    ) -> Exchange:
        url = f"{self.options.base_url}/{path}.{fmt}"
        query = [] if form is not None else self._params(params)
        label = f"{method} {path}.{fmt}"
        if params:
            label += "?" + urlencode(list(params))
        kwargs: dict[str, Any] = {"params": query}
        if form is not None:
            kwargs["content"] = urlencode(self._params(form)).encode("utf-8")
            kwargs["headers"] = {"Content-Type": FORM_TYPE}
        sent = kwargs.get("content", b"")
        try:
            response = await self.client.request(method, url, **kwargs)
        except Exception as exc:  # any transport failure is a finding, never a crash
            exchange = Exchange(
                method, label, fmt, transport_error=_transport_error(exc), url=url, sent=sent
            )
        else:
            exchange = Exchange.received(
                method,
                label,
                fmt,
                response.status_code,
                response.headers.get("content-type"),
                response.content,
                url=str(response.request.url),
                sent=sent,
                headers=tuple(response.headers.items()),
            )
        self.history.append(exchange)
        return exchange

    async def get(
        self, path: str, fmt: str, params: Params | None = None, *, cache: bool = True
    ) -> Exchange:
        """GET ``{base}/{path}.{fmt}``; cached per path, format and parameters unless asked."""
        key = ("GET", path, fmt, tuple(params or ()))
        if cache and key in self._responses:
            return self._responses[key]
        exchange = await self._send("GET", path, fmt, params, None)
        if cache:
            self._responses[key] = exchange
        return exchange

    async def both(
        self, path: str, params: Params | None = None, *, cache: bool = True
    ) -> dict[str, Exchange]:
        """GET a resource in each checked format (JSON and XML unless told)."""
        return {fmt: await self.get(path, fmt, params, cache=cache) for fmt in self.options.formats}

    async def post(self, path: str, fmt: str, form: Params) -> Exchange:
        """POST a form-encoded body (UTF-8) to ``{base}/{path}.{fmt}``; never cached."""
        return await self._send("POST", path, fmt, None, form)

    async def once(self, key: str, factory: Callable[[], Awaitable[T]]) -> T:
        """Compute shared data once per run; a reason to skip is remembered (as a Skip) too."""
        if key not in self._memo:
            try:
                self._memo[key] = (True, await factory())
            except (Skip, Failure) as exc:
                self._memo[key] = (False, exc)
        ok, value = self._memo[key]
        if not ok:
            raise Skip(str(value))
        result: T = value
        return result


def _transport_error(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    detail = str(exc) or type(exc).__name__
    return f"request failed: {type(exc).__name__}: {short(detail.encode(), 120)}"
