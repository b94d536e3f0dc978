"""The authorization policy: who may do what, as one table, and the checks that apply it.

Every operation that touches data — each API route and each CLI action — has a row in
:data:`POLICY`, with a cell for each kind of caller (:class:`Caller`). A cell is ``True`` when
that caller may perform the operation on the row's *target* (the row says which: e.g. "a
public request submitted by the caller's app, in a jurisdiction the key may use"), ``False``
when it is refused (403, or 404 where revealing the target would leak it).
``tests/security/test_policy_matrix.py`` drives every HTTP cell through the API on both
backends, and checks that every route of the app and every CLI command has a row.

The rules behind the cells:

- **Public reads** (discovery, services, requests, tokens, the updates feed, areas, the map,
  the exports) need no key; a key that is unknown or revoked is ignored on a GET (the call is
  anonymous). Exports never hold reporter fields, whoever asks.
- **Sandbox keys only ever read or write sandbox data**: their reads show their app's sandbox
  requests only, their submissions are sandbox requests (never forwarded to a partner city),
  their updates reach only their app's sandbox requests; they cannot manage webhooks or use
  the admin API.
- **Apps act on what they submitted**: an ``update`` key changes only requests its app
  submitted, unless it carries the staff-level ``staff`` scope (a city's own back office);
  ``read_private`` shows the reporter's fields only of the app's own requests.
- **Jurisdiction restrictions hold everywhere**: a restricted key submits, updates, reads
  private fields and administers only in its jurisdiction; every key a restricted admin
  creates carries the same restriction (and a sandbox flag, if it has one); it sees and
  changes only keys and apps of its jurisdiction, and resets only its sandbox requests.
- **Revoked keys** can do nothing a key is needed for.
- **Reports** (service promise, key metrics, their printable page) are for keys with the
  ``reports`` or ``admin`` scope, in their jurisdiction, never sandbox keys.
- **Operations endpoints**: ``/health/live`` is public; ``/metrics`` and ``/health/ready``
  open only to the operator's metrics secret or to loopback callers that came through no
  proxy — never to an API key.
- **CLI actions** run with the database credentials of the host: only the operator (a shell
  on the server) can run them, no API caller can reach them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from app.errors import Forbidden, InvalidApiKey, NotFound

if TYPE_CHECKING:
    from app.domain.api_keys import KeyInfo


class Caller(StrEnum):
    """The kinds of caller every operation is decided for (the matrix test's columns)."""

    ANONYMOUS = "anonymous"  # no key, or a GET with an unknown key
    SUBMIT = "submit"  # a key of the app with the submit scope only
    UPDATE = "update"  # the app's key with the update scope only
    READ_PRIVATE = "read_private"  # the app's key with the read_private scope only
    STAFF = "staff"  # the app's key with submit + update + staff (a city's contact centre)
    ADMIN = "admin"  # an unrestricted admin key
    SANDBOX = "sandbox"  # the app's sandbox key with submit, update and read_private
    RESTRICTED = "restricted"  # the app's key with every scope, restricted to another city
    REVOKED = "revoked"  # the app's key with every scope, revoked
    OTHER_APP = "other_app"  # another app's key with submit, update and read_private


C = Caller
EVERYONE = frozenset(Caller)


@dataclass(frozen=True, slots=True)
class Operation:
    """One row of the policy: what it is, where it is reached, who may do it."""

    name: str
    surface: str  # "METHOD path" of the route, or "open311 command" of the CLI action
    target: str  # what the cells decide about
    allowed: frozenset[Caller]

    def allows(self, caller: Caller) -> bool:
        """The cell of ``caller``."""
        return caller in self.allowed


def _row(
    name: str, surface: str, target: str, allowed: frozenset[Caller] | set[Caller]
) -> Operation:
    return Operation(name, surface, target, frozenset(allowed))


_PUBLIC_READ = EVERYONE
_NOT_SANDBOX = EVERYONE - {C.SANDBOX}
_APP_KEYS = {C.SUBMIT, C.UPDATE, C.READ_PRIVATE, C.STAFF, C.ADMIN, C.RESTRICTED, C.OTHER_APP}
_OPERATOR_ONLY: frozenset[Caller] = frozenset()  # CLI: no API caller reaches it
B = "{base}"

POLICY: tuple[Operation, ...] = (
    # --- GeoReport reads ---------------------------------------------------------------------
    _row("discovery.read", f"GET {B}/discovery.{{format}}", "the discovery document", _PUBLIC_READ),
    _row("services.list", f"GET {B}/services.{{format}}", "the service list", _PUBLIC_READ),
    _row(
        "services.definition",
        f"GET {B}/services/{{service_code}}.{{format}}",
        "a service definition",
        _PUBLIC_READ,
    ),
    _row("areas.list", f"GET {B}/areas.{{format}}", "the wards", _PUBLIC_READ),
    _row("areas.geojson", f"GET {B}/areas.geojson", "the wards as GeoJSON", _PUBLIC_READ),
    _row(
        "media.read",
        f"GET {B}/media/{{key}}",
        "a stored photo or thumbnail (by its unguessable key, as in media_url)",
        _PUBLIC_READ,
    ),
    _row(
        "jurisdictions.list", f"GET {B}/jurisdictions.{{format}}", "the jurisdictions", _PUBLIC_READ
    ),
    _row(
        "jurisdictions.read",
        f"GET {B}/jurisdictions/{{jurisdiction_id}}.{{format}}",
        "one jurisdiction (stored status)",
        _PUBLIC_READ,
    ),
    _row(
        "jurisdictions.check",
        f"GET {B}/jurisdictions/{{jurisdiction_id}}.{{format}}?check=true",
        "a live probe of a partner city's endpoint",
        {C.ADMIN},
    ),
    _row(
        "requests.list",
        f"GET {B}/requests.{{format}}",
        "a public request appears in the list",
        _NOT_SANDBOX,
    ),
    _row(
        "requests.geojson",
        f"GET {B}/requests.geojson",
        "a public request appears in the GeoJSON list",
        _NOT_SANDBOX,
    ),
    _row(
        "requests.read_geojson",
        f"GET {B}/requests/{{service_request_id}}.geojson",
        "a public request as GeoJSON",
        _NOT_SANDBOX,
    ),
    _row(
        "requests.nearby",
        f"GET {B}/requests/nearby.{{format}}",
        "a public request appears among the nearby ones",
        _NOT_SANDBOX,
    ),
    _row(
        "requests.read",
        f"GET {B}/requests/{{service_request_id}}.{{format}}",
        "a public request",
        _NOT_SANDBOX,
    ),
    _row(
        "requests.read_sandbox",
        f"GET {B}/requests/{{service_request_id}}.{{format}}",
        "a sandbox request of the app",
        {C.SANDBOX},
    ),
    _row(
        "requests.read_private",
        f"GET {B}/requests/{{service_request_id}}.{{format}}",
        "the reporter's private fields of a request the app submitted",
        {C.READ_PRIVATE},
    ),
    _row("tokens.read", f"GET {B}/tokens/{{token}}.{{format}}", "a token", _PUBLIC_READ),
    _row(
        "updates.list",
        f"GET {B}/servicerequestupdates.{{format}}",
        "a public update appears in the feed",
        _NOT_SANDBOX,
    ),
    _row(
        "exports.requests",
        f"GET {B}/exports/requests.{{format}}",
        "a public request appears in the export (csv, geojson, ndjson)",
        _NOT_SANDBOX,
    ),
    _row(
        "exports.private",
        f"GET {B}/exports/requests.{{format}}",
        "the reporter's private fields of a request the app submitted (never exported)",
        set(),
    ),
    _row("map.read", "GET /map, /", "the map page and its summary", _PUBLIC_READ),
    # --- the service-promise reports: a key with the reports or admin scope -----------------
    _row(
        "reports.service_promise",
        f"GET {B}/reports/service-promise.{{format}}",
        "a city's service-promise (compliance) report",
        {C.ADMIN},
    ),
    _row(
        "reports.key_metrics",
        f"GET {B}/reports/key-metrics.{{format}}",
        "a city's key-metrics report of a year",
        {C.ADMIN},
    ),
    _row(
        "reports.page",
        "GET /web/reports/{report}.html",
        "a city's printable report page",
        {C.ADMIN},
    ),
    # --- operations: no API key opens these; the operator's metrics secret
    # (metrics.api_key) or a loopback caller that came through no proxy does ------------------
    _row("ops.health_live", "GET /health/live", "the process answers", _PUBLIC_READ),
    _row("ops.health_ready", "GET /health/ready", "readiness, from another address", set()),
    _row("ops.metrics", "GET /metrics", "Prometheus metrics, from another address", set()),
    # --- GeoReport writes --------------------------------------------------------------------
    _row(
        "requests.create",
        f"POST {B}/requests.{{format}}",
        "a new public request in a city the key may use",
        {C.SUBMIT, C.STAFF, C.OTHER_APP},
    ),
    _row(
        "requests.create_staff",
        f"POST {B}/requests.{{format}}",
        "a new request filed by staff intake: naming its channel, filed closed (resolved at "
        "first contact) or with its expected_datetime set (needs submit + staff; other "
        "keys naming any of these: 403)",
        {C.STAFF},
    ),
    _row(
        "requests.create_sandbox",
        f"POST {B}/requests.{{format}}",
        "a new request that only the app's sandbox sees (never forwarded to a partner)",
        {C.SANDBOX},
    ),
    _row(
        "updates.create",
        f"POST {B}/servicerequestupdates.{{format}}",
        "an update of a public request the app submitted",
        {C.UPDATE, C.STAFF},
    ),
    _row(
        "updates.create_other",
        f"POST {B}/servicerequestupdates.{{format}}",
        "an update of a public request another app submitted",
        {C.STAFF},
    ),
    _row(
        "updates.create_sandbox",
        f"POST {B}/servicerequestupdates.{{format}}",
        "an update of a sandbox request of the app",
        {C.SANDBOX},
    ),
    _row(
        "webhooks.create",
        f"POST {B}/webhooks.{{format}}",
        "a webhook of the caller's app",
        _APP_KEYS,
    ),
    _row(
        "webhooks.create_feed",
        f"POST {B}/webhooks.{{format}}",
        "a feed of the public events of any app's requests, in a city the key may use",
        _APP_KEYS - {C.RESTRICTED},
    ),
    _row("webhooks.list", f"GET {B}/webhooks.{{format}}", "the app's webhooks", _APP_KEYS),
    _row(
        "webhooks.deliveries",
        f"GET {B}/webhooks/{{subscription_id}}/deliveries.{{format}}",
        "the delivery log of a webhook of the app (the admin key is the operator's own app's)",
        _APP_KEYS - {C.OTHER_APP, C.ADMIN},
    ),
    _row(
        "webhooks.replay",
        f"POST {B}/webhooks/{{subscription_id}}/replay.{{format}}",
        "a replay of a feed subscription of the app",
        _APP_KEYS - {C.OTHER_APP, C.ADMIN},
    ),
    _row(
        "webhooks.delete",
        f"DELETE {B}/webhooks/{{subscription_id}}.{{format}}",
        "a webhook of the app (the admin key is the operator's own app's)",
        _APP_KEYS - {C.OTHER_APP, C.ADMIN},
    ),
    # --- admin API ---------------------------------------------------------------------------
    _row("admin.apps.list", "GET /admin/v1/apps.json", "another city's app is listed", {C.ADMIN}),
    _row(
        "admin.apps.create",
        "POST /admin/v1/apps.json",
        "a new app",
        {C.ADMIN, C.RESTRICTED},
    ),
    _row("admin.keys.list", "GET /admin/v1/keys.json", "another city's key is listed", {C.ADMIN}),
    _row(
        "admin.keys.create",
        "POST /admin/v1/keys.json",
        "an unrestricted admin key",
        {C.ADMIN},
    ),
    _row(
        "admin.keys.rotate",
        "POST /admin/v1/keys/{key_id}/rotate.json",
        "another city's key",
        {C.ADMIN},
    ),
    _row(
        "admin.keys.revoke",
        "POST /admin/v1/keys/{key_id}/revoke.json",
        "another city's key",
        {C.ADMIN},
    ),
    _row(
        "admin.sandbox.reset",
        "POST /admin/v1/sandbox/reset.json",
        "another city's sandbox requests",
        {C.ADMIN},
    ),
    _row(
        "admin.requests.update",
        "POST /admin/v1/requests/{service_request_id}/updates.json",
        "a request of another city",
        {C.ADMIN},
    ),
    _row(
        "admin.requests.history",
        "GET /admin/v1/requests/{service_request_id}/updates.json",
        "the history of a request of another city",
        {C.ADMIN},
    ),
    _row(
        "admin.requests.read",
        "GET /admin/v1/requests/{service_request_id}.json",
        "the service promise of a request of another city (channel, first contact, target)",
        {C.ADMIN},
    ),
    # --- admin API: the service promise (divisions, service levels, catalogue imports) ------
    _row(
        "admin.divisions.list",
        "GET /admin/v1/divisions.json",
        "another city's divisions",
        {C.ADMIN},
    ),
    _row(
        "admin.divisions.create",
        "POST /admin/v1/divisions.json",
        "a new division of another city",
        {C.ADMIN},
    ),
    _row(
        "admin.divisions.update",
        "POST /admin/v1/divisions/{division_code}.json",
        "a division of another city renamed",
        {C.ADMIN},
    ),
    _row(
        "admin.divisions.delete",
        "DELETE /admin/v1/divisions/{division_code}.json",
        "a division of another city removed",
        {C.ADMIN},
    ),
    _row(
        "admin.services.list",
        "GET /admin/v1/services.json",
        "another city's services with their divisions and service levels",
        {C.ADMIN},
    ),
    _row(
        "admin.services.move",
        "POST /admin/v1/services/{service_code}/move.json",
        "a service of another city moved to another division (recorded)",
        {C.ADMIN},
    ),
    _row(
        "admin.services.levels",
        "POST /admin/v1/services/{service_code}/levels.json",
        "the service levels of a service of another city",
        {C.ADMIN},
    ),
    _row(
        "admin.moves.list",
        "GET /admin/v1/moves.json",
        "the recorded service moves of another city",
        {C.ADMIN},
    ),
    _row(
        "admin.catalog.import",
        "POST /admin/v1/catalog/import.json",
        "a catalogue imported into another city (or its dry run)",
        {C.ADMIN},
    ),
    _row(
        "admin.calendar.read",
        "GET /admin/v1/calendar.json",
        "another city's business calendar",
        {C.ADMIN},
    ),
)


# CLI actions that touch data: the operator's, on the host. No API caller reaches them.
CLI_ACTIONS: Mapping[str, str] = {
    "serve": "run the API server",
    "migrate": "create or upgrade the schema",
    "demo": "load the demo data",
    "keys create": "create an API key",
    "keys list": "list API keys",
    "keys rotate": "replace an API key",
    "keys revoke": "revoke an API key",
    "apps": "list client apps",
    "sandbox-reset": "delete sandbox requests and their photos",
    "jurisdictions list": "list jurisdictions",
    "jurisdictions create": "create a jurisdiction",
    "services import": "import a service catalogue (with --dry-run: show the diff)",
    "services list": "list services with their divisions and service levels",
    "services move": "move a service to another division (recorded)",
    "services moves": "list recorded moves of services",
    "services levels": "set a service's service levels",
    "divisions list": "list divisions",
    "divisions add": "add a division",
    "divisions rename": "rename a division",
    "divisions remove": "remove a division",
    "jurisdictions calendar": "show or set a business calendar",
    "translations import": "import translations of a service catalogue",
    "boundaries import": "import a ward map",
    "addresses import": "import a jurisdiction's address points (the embedded geocoder)",
    "boundaries list": "list boundary sets",
    "boundaries activate": "make a boundary set current",
    "boundaries reassign": "re-assign requests to the current wards",
    "requests update": "staff update of a request",
    "worker": "run the background worker",
    "export": "export requests to a file (csv, geojson, ndjson)",
    "federation add-remote": "add a partner city",
    "federation add-region": "add a region of partner cities",
    "federation refresh": "refresh partner mirrors now",
    "federation status": "list partner status",
    "report service-promise": "print the service-promise report (JSON, CSV or PDF)",
    "report key-metrics": "print the key-metrics report of a year (JSON, CSV or PDF)",
    "openapi": "write the OpenAPI document",
    "conformance": "check a GeoReport server (outbound calls only)",
}
CLI_POLICY: tuple[Operation, ...] = tuple(
    _row(f"cli.{name.replace(' ', '.')}", f"open311 {name}", what, _OPERATOR_ONLY)
    for name, what in CLI_ACTIONS.items()
)


# --- the checks the code applies ----------------------------------------------------------


def require_scope(key: KeyInfo, scope: str) -> None:
    """403 unless the key has the scope."""
    if not key.can(scope):
        raise Forbidden(f"This api_key lacks the {scope!r} scope.")


def require_jurisdiction(key: KeyInfo, jurisdiction_pk: int) -> None:
    """403 when the key is restricted to another jurisdiction."""
    if key.jurisdiction_pk is not None and key.jurisdiction_pk != jurisdiction_pk:
        raise Forbidden("This api_key is not valid for this jurisdiction.")


def private_fields_app(viewer: KeyInfo | None, jurisdiction_pk: int) -> int | None:
    """The app whose requests' private fields ``viewer`` may read here (None: no private
    fields)."""
    if viewer is None or not viewer.can("read_private"):
        return None
    if viewer.jurisdiction_pk is not None and viewer.jurisdiction_pk != jurisdiction_pk:
        return None
    return viewer.app_id


def check_request_update(
    key: KeyInfo, jurisdiction_pk: int, request_app_id: int | None, request_sandbox: bool
) -> None:
    """May ``key`` (already known to have the ``update`` scope) change this request?

    A sandbox key reaches only its app's sandbox requests, a real key only real ones (the
    other kind is not found); an app changes only what it submitted unless it has ``staff``.
    """
    require_jurisdiction(key, jurisdiction_pk)
    if request_sandbox != key.sandbox or (key.sandbox and request_app_id != key.app_id):
        raise NotFound("No such service request.")
    if not key.can("staff") and (key.app_id is None or request_app_id != key.app_id):
        raise Forbidden("This api_key may only update requests its app submitted.")


def require_reports(key: KeyInfo | None) -> None:
    """403 unless the key may read the service-promise reports (the reports or admin scope,
    not a sandbox key)."""
    if key is None:
        raise InvalidApiKey(
            "The reports need an API key with the reports or admin scope (api_key, or "
            "Authorization: Bearer)."
        )
    if not (key.can("reports") or key.can("admin")):
        raise Forbidden("This api_key lacks the 'reports' scope.")
    if key.sandbox:
        raise Forbidden("Sandbox keys cannot read the reports.")


def require_admin(key: KeyInfo) -> None:
    """403 unless the key may use the admin API (admin scope, not a sandbox key)."""
    require_scope(key, "admin")
    if key.sandbox:
        raise Forbidden("Sandbox keys cannot use the admin API.")


def admin_jurisdiction(key: KeyInfo, requested_pk: int | None) -> int | None:
    """The jurisdiction a key created by this admin is restricted to: the admin's own
    restriction is inherited; asking for another one is refused."""
    if key.jurisdiction_pk is None:
        return requested_pk
    if requested_pk is not None and requested_pk != key.jurisdiction_pk:
        raise Forbidden("This admin key may only create keys for its own jurisdiction.")
    return key.jurisdiction_pk


def require_no_sandbox(key: KeyInfo, what: str) -> None:
    """403 for sandbox keys on operations outside the sandbox."""
    if key.sandbox:
        raise Forbidden(f"Sandbox keys cannot {what}.")
