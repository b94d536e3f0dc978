"""Everything routes receive, as ``Annotated`` aliases; validation happens here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Path, Request
from starlette.datastructures import URL

from app.api.forms import FileLimits, parse_multipart
from app.domain.api_keys import KeyCache, KeyInfo
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import Catalog, CatalogCache
from app.domain.geocoding import Locator
from app.domain.jurisdictions import JurisdictionInfo, JurisdictionRegistry
from app.domain.media import PhotoIntake
from app.domain.ratelimit import RateLimiter
from app.domain.submissions import Submissions, check_key_and_limit
from app.errors import BadRequest, InvalidApiKey, TooManyRequests
from app.georeport.formats import Format
from app.georeport.params import Parameters
from app.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.store.base import Store


@dataclass(slots=True)
class AppState:
    """What the lifespan builds and every request shares."""

    settings: Settings
    store: Store  # the backend: hot calls, and ``engine`` for everything else
    engine: AsyncEngine  # ``store.engine``
    jurisdictions: JurisdictionRegistry
    catalogs: CatalogCache
    wards: WardIndexCache
    limiter: RateLimiter
    keys: KeyCache
    submissions: Submissions
    started_at: datetime
    # Photos uploaded with POSTs (None: switched off) and the geocoder of intake.
    photos: PhotoIntake | None = None
    locator: Locator | None = None


async def get_state(request: Request) -> AppState:
    """The shared application state."""
    state: AppState = request.app.state.open311
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    """The settings in force."""
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]

FormatDep = Annotated[
    Format, Path(alias="format", description="Response format: the path suffix .xml or .json.")
]

MAX_FORM_FIELDS = 500

Pairs = list[tuple[str, str]]


def _decode_pairs(text: str, source: str) -> Pairs:
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The {source} is not valid UTF-8.") from exc
    except ValueError as exc:
        raise BadRequest(f"The {source} has more than {MAX_FORM_FIELDS} fields.") from exc
    return pairs


_NO_PARAMETERS: Pairs = []


async def query_params(request: Request) -> Parameters:
    """Query-string parameters, decoded strictly as UTF-8 (repeated keys kept).

    The one reading of the query string: routes read their parameters from here, with the
    rule of ``app.georeport.params`` (they declare none to FastAPI; the OpenAPI document
    lists them by hand, see ``app.api.schemas``)."""
    raw = request.scope.get("query_string", b"")
    if not raw:
        return Parameters(_NO_PARAMETERS)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadRequest("The query string must be percent-encoded UTF-8.") from exc
    return Parameters(_decode_pairs(text, "query string"))


QueryDep = Annotated[Parameters, Depends(query_params)]


class PostParameters(Parameters):
    """POST parameters and the photos (``media`` file parts) of a multipart body."""

    __slots__ = ("uploads",)

    def __init__(self, pairs: list[tuple[str, str]], uploads: list[bytes]) -> None:
        super().__init__(pairs)
        self.uploads = uploads


def file_limits(settings: Settings) -> FileLimits | None:
    """The bounds of the photos one POST may carry (None: photos are switched off)."""
    media = settings.media
    if not media.enabled:
        return None
    return FileLimits(media.max_files, media.max_file_bytes)


async def post_params(request: Request, query: QueryDep) -> PostParameters:
    """POST parameters: the form body (urlencoded or multipart), then the query string.

    A key present in the body hides the same key in the query string. The ``media`` file
    parts of a multipart body (photos) are in ``uploads``, bounded in count and size while
    the body is parsed; a route that takes none refuses them (``refuse_uploads``).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body_items: Pairs
    uploads: list[bytes] = []
    # The edge (app.api.middleware.bounded_input) has read the body already, bounded in size
    # and time: request.body() takes it from there.
    if content_type in ("", "application/x-www-form-urlencoded"):
        body = await request.body()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("The request body is not valid UTF-8.") from exc
        body_items = _decode_pairs(text, "request body")
    elif content_type == "multipart/form-data":
        body = await request.body()
        state: AppState = request.app.state.open311
        form = parse_multipart(
            body,
            request.headers["content-type"],
            MAX_FORM_FIELDS,
            file_limits(state.settings),
            refusal="Photos are switched off on this server (media.enabled is false): send "
            "no file parts.",
        )
        body_items, uploads = form.params, form.files
    else:
        raise BadRequest(
            "POST requests takes an application/x-www-form-urlencoded or multipart/form-data body."
        )
    in_body = {k for k, _ in body_items}
    return PostParameters(
        body_items + [(k, v) for k, v in query.pairs if k not in in_body], uploads
    )


def refuse_uploads(params: PostParameters) -> None:
    """400 when a route that takes no files was sent some."""
    if params.uploads:
        raise BadRequest("This call takes no files: send its fields only.")


PostParamsDep = Annotated[PostParameters, Depends(post_params)]


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <key>`` header (None without one)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def get_jurisdiction(state: StateDep, query: QueryDep) -> JurisdictionInfo:
    """The jurisdiction of a GET call (``jurisdiction_id``, documented by
    ``app.api.schemas.JURISDICTION_ID``): 400 when required and missing, 404 when unknown."""
    return await state.jurisdictions.resolve(query.one("jurisdiction_id"))


JurisdictionDep = Annotated[JurisdictionInfo, Depends(get_jurisdiction)]


async def get_post_jurisdiction(state: StateDep, params: PostParamsDep) -> JurisdictionInfo:
    """The jurisdiction of a POST (body first, then query string)."""
    return await state.jurisdictions.resolve(params.one("jurisdiction_id"))


PostJurisdictionDep = Annotated[JurisdictionInfo, Depends(get_post_jurisdiction)]


async def get_catalog(state: StateDep, jurisdiction: JurisdictionDep) -> Catalog:
    """The services of the jurisdiction."""
    return await state.catalogs.get(jurisdiction.pk)


CatalogDep = Annotated[Catalog, Depends(get_catalog)]


def client_address(request: Request) -> str:
    """The caller's address: the connecting peer, or, behind a trusted proxy
    (``http.trusted_proxies``, applied by the outermost middleware), the address it names."""
    client = request.client
    return client.host if client is not None else "unknown"


def refuse_failing_client(request: Request, state: AppState) -> None:
    """429 when the caller's address has had too many bad credentials of late.

    Runs before the credential of a keyed call (POST, DELETE, admin API) is read or checked,
    so an address guessing keys costs no database work once its bucket is empty."""
    per_minute = state.settings.rate_limits.failed_auth_per_minute
    if per_minute:
        refused = state.limiter.failed_auth.refused(f"ip:{client_address(request)}", per_minute)
        if refused is not None:
            raise TooManyRequests(
                "Too many calls with a bad api_key from this address: retry after the time in "
                "Retry-After.",
                headers=refused.headers(),
            )


def count_failed_auth(request: Request) -> None:
    """Count a call refused for a bad credential against the caller's address.

    Called by the error handler for every ``InvalidApiKey`` answer (unknown or revoked key,
    missing admin key), whichever route raised it."""
    state: AppState | None = getattr(request.app.state, "open311", None)
    if state is None:
        return
    per_minute = state.settings.rate_limits.failed_auth_per_minute
    if per_minute:
        state.limiter.failed_auth.take(f"ip:{client_address(request)}", per_minute)


def public_base(request: Request, settings: Settings) -> str:
    """The base URL of the app as links show it (no trailing slash).

    ``discovery.public_url`` when set; else the request's own base URL when its Host names
    one of ``http.allowed_hosts``; else the same with the address the connection arrived at
    in place of the Host. An arbitrary Host header is never echoed.
    """
    if settings.discovery.public_url:
        return settings.discovery.public_url.rstrip("/")
    base = request.base_url
    allowed = settings.http.allowed_hosts
    host = request.headers.get("host", "")
    if not (host and ("*" in allowed or _host_name(host) in allowed)):
        server = request.scope.get("server")
        name, port = (server[0], server[1]) if server else ("localhost", None)
        name = f"[{name}]" if ":" in name else name
        default = {"http": 80, "https": 443}.get(base.scheme)
        base = base.replace(netloc=name if port in (None, default) else f"{name}:{port}")
    return str(base).rstrip("/")


def public_url(request: Request, settings: Settings, url: URL) -> str:
    """``url`` (one of this app's) on the public base URL (see public_base)."""
    root = request.base_url.path.rstrip("/")
    path = url.path[len(root) :] if root and url.path.startswith(root) else url.path
    query = f"?{url.query}" if url.query else ""
    return f"{public_base(request, settings)}{path}{query}"


def _host_name(host: str) -> str:
    """The name of a Host header value, without port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def read_access(request: Request, state: StateDep, query: QueryDep) -> None:
    """Rate limits of GET calls; remembers the caller's key (``request.state.viewer``).

    A valid ``api_key`` draws from that key's bucket and may unlock private fields; an
    invalid one is ignored (GETs are never refused for a key). Anonymous calls draw from a
    per-IP bucket kept in this process. Other methods carry a key that will be checked: an
    address with too many bad keys of late is refused first (see refuse_failing_client).
    """
    if request.method not in ("GET", "HEAD"):
        refuse_failing_client(request, state)
        return
    request.state.viewer = None
    settings = state.settings
    api_key = (query.one("api_key") or "").strip()
    if api_key:
        try:
            viewer, decision = await check_key_and_limit(
                state.engine, state.limiter, settings, api_key, state.keys
            )
        except InvalidApiKey:
            viewer = None
        else:
            request.state.viewer = viewer
            request.state.ratelimit = decision
            return
    limit = settings.rate_limits.anonymous_per_minute
    if limit:
        decision = state.limiter.memory.take(f"ip:{client_address(request)}", limit)
        if not decision.allowed:
            raise TooManyRequests(headers=decision.headers())
        request.state.ratelimit = decision


async def get_viewer(request: Request) -> KeyInfo | None:
    """The verified API key of a GET call, if it carried one."""
    viewer: KeyInfo | None = getattr(request.state, "viewer", None)
    return viewer


ViewerDep = Annotated[KeyInfo | None, Depends(get_viewer)]
