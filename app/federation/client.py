"""``RemoteBackend``: one partner's GeoReport v2 endpoint over the shared ``httpx.AsyncClient``.

Answers are streamed and refused (502) as soon as they pass ``federation.max_response_bytes``
on the wire or decompressed (``read_capped``). Every call is bounded by
``federation.timeout_s`` twice over: httpx's own timeout and an
``asyncio.timeout`` around the whole exchange (a transport that ignores httpx timeouts, or a
partner trickling bytes, still cannot hold us longer). Failures become ``UpstreamError``s:
timeout 504, connection failure / 5xx / 429 503, unreadable body 502, a 4xx with a GeoReport
``errors`` document ``PartnerRejected`` (final). The circuit breaker sits one level up
(``app.federation.service``) because its state lives in the database, shared by processes.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from app.federation import parse
from app.federation.errors import (
    PartnerRejected,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.georeport.datetimes import format_w3c

MAX_BODY_BYTES = 32 << 20  # default of federation.max_response_bytes


async def read_capped(response: httpx.Response, limit: int, code: str) -> bytes:
    """The body of a streamed response, decoded, refused (502) once it passes ``limit`` bytes
    on the wire or decoded: a compression bomb is stopped after ``limit`` bytes of output.

    Reads the raw stream and decodes gzip / deflate itself with zlib's ``max_length``, so no
    chunk ever expands past the limit in memory; other encodings are refused.
    """
    too_large = UpstreamBadResponse(f"{code}: the answer is larger than {limit} bytes.")
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport): already read
        if len(response.content) > limit:
            raise too_large
        return response.content
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder: Any = None
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    elif encoding not in ("", "identity"):
        raise UpstreamBadResponse(f"{code}: unsupported Content-Encoding {encoding!r}.")
    body = bytearray()
    received = 0
    try:
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > limit:
                raise too_large
            if decoder is None:
                body += chunk
                continue
            data = chunk
            while data:
                body += decoder.decompress(data, limit + 1 - len(body))
                if len(body) > limit:
                    raise too_large
                data = decoder.unconsumed_tail
        if decoder is not None:
            body += decoder.flush()
    except zlib.error as exc:
        raise UpstreamBadResponse(f"{code}: the answer is not valid {encoding}.") from exc
    if len(body) > limit:
        raise too_large
    return bytes(body)


@dataclass(frozen=True, slots=True)
class PartnerConfig:
    """A remote jurisdiction's partner endpoint, as stored in ``federation_partner``."""

    pk: int
    code: str
    base_url: str
    fmt: str
    api_key: str | None
    partner_jurisdiction_id: str | None
    tz: tzinfo


class RemoteBackend:
    """GeoReport operations against one partner."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        partner: PartnerConfig,
        timeout_s: float,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.http = http
        self.partner = partner
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    def _url(self, path: str) -> str:
        return f"{self.partner.base_url}/{path}.{self.partner.fmt}"

    def _params(self, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        params = list(extra)
        if self.partner.partner_jurisdiction_id:
            params.append(("jurisdiction_id", self.partner.partner_jurisdiction_id))
        return params

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        form: Sequence[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        timeout = httpx.Timeout(self.timeout_s)
        try:
            query: list[tuple[str, str | int | float | bool | None]] = list(
                params if form is not None else self._params(params)
            )
            async with (
                asyncio.timeout(self.timeout_s),
                self.http.stream(
                    method,
                    self._url(path),
                    params=query,
                    content=urlencode(list(form)).encode("ascii") if form is not None else None,
                    headers={
                        **(headers or {}),
                        # Only encodings read_capped decodes within its limit.
                        "Accept-Encoding": "gzip, deflate",
                        **(
                            {"Content-Type": "application/x-www-form-urlencoded"}
                            if form is not None
                            else {}
                        ),
                    },
                    timeout=timeout,
                ) as response,
            ):
                body = await read_capped(response, self.max_bytes, self.partner.code)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout(
                f"{self.partner.code}: no answer within {self.timeout_s:g} s."
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                f"{self.partner.code}: cannot reach the partner ({type(exc).__name__})."
            ) from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise UpstreamUnavailable(f"{self.partner.code}: the partner answered HTTP {status}.")
        if status >= 400:
            described = parse.errors(body, self.partner.fmt)
            if described is None:
                raise UpstreamBadResponse(
                    f"{self.partner.code}: the partner answered HTTP {status} without a "
                    "GeoReport errors document."
                )
            raise PartnerRejected(status, *[f"{self.partner.code}: {d}" for d in described])
        if not 200 <= status < 300:
            raise UpstreamBadResponse(f"{self.partner.code}: unexpected HTTP {status}.")
        return body

    async def services(self) -> list[dict[str, Any]]:
        """GET services."""
        return parse.services(await self._call("GET", "services"), self.partner.fmt)

    async def definition(self, service_code: str) -> list[dict[str, Any]]:
        """GET services/{code}: the attributes."""
        path = "services/" + quote(service_code, safe="")
        return parse.definition(await self._call("GET", path), self.partner.fmt)

    async def requests(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """GET requests in a requested_datetime window (W3C datetimes, partner time zone)."""
        params = [
            ("start_date", format_w3c(start, self.partner.tz)),
            ("end_date", format_w3c(end, self.partner.tz)),
        ]
        body = await self._call("GET", "requests", params=params)
        return parse.requests(body, self.partner.fmt, self.partner.tz)

    async def request(self, partner_id: str) -> dict[str, Any] | None:
        """GET requests/{id}: the partner's request, or None when it lists none."""
        path = "requests/" + quote(partner_id, safe="")
        body = await self._call("GET", path)
        found = parse.requests(body, self.partner.fmt, self.partner.tz)
        return found[0] if found else None

    async def token(self, partner_token: str) -> str | None:
        """GET tokens/{token}: the partner's id once the partner has created the request."""
        path = "tokens/" + quote(partner_token, safe="")
        return parse.token(await self._call("GET", path), self.partner.fmt)

    async def create(
        self, fields: Sequence[tuple[str, str]], idempotency_key: str
    ) -> tuple[str | None, str | None]:
        """POST requests (form-encoded, with the partner's key): ``(id, token)``."""
        form = [("api_key", self.partner.api_key or ""), *self._params(fields)]
        body = await self._call(
            "POST", "requests", form=form, headers={"Idempotency-Key": idempotency_key}
        )
        return parse.created(body, self.partner.fmt)


def submission_fields(service_code: str, answers: dict[str, Any]) -> list[tuple[str, str]]:
    """The POST requests form fields of a validated submission (``Submission`` as a dict)."""
    fields: list[tuple[str, str]] = [("service_code", service_code)]
    if answers.get("lat") is not None and answers.get("lon") is not None:
        fields += [("lat", repr(float(answers["lat"]))), ("long", repr(float(answers["lon"])))]
    names = {
        "address": "address_string",
        "address_id": "address_id",
        "email": "email",
        "device_id": "device_id",
        "account_id": "account_id",
        "first_name": "first_name",
        "last_name": "last_name",
        "phone": "phone",
        "description": "description",
    }
    for key, name in names.items():
        if answers.get(key) is not None:
            fields.append((name, str(answers[key])))
    fields += [("media_url", url) for url in answers.get("media_urls") or []]
    for code, value in (answers.get("attributes") or {}).items():
        if isinstance(value, list):
            fields += [(f"attribute[{code}][]", str(v)) for v in value]
        else:
            fields.append((f"attribute[{code}]", str(value)))
    return fields
