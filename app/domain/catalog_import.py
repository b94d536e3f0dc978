"""Writing service catalogues: jurisdiction and service upserts, the catalogue import.

Used by the demo loader, the federation's mirrors, ``open311 services import`` and the admin
API's ``POST /admin/v1/catalog/import.json``; the files they come from are read by
``app.domain.catalog_files``. Services are upserted by code, a service's attributes replaced
by those given.

**An import** compares the file with what is stored and says what changes, as a readable
diff (``ImportPlan.lines``): divisions added or renamed, services added (or offered again),
changed (field by field), moved to another division, removed, unchanged. A dry run stops
there; otherwise everything is written in one transaction (nothing when anything fails):

* a service's division is the one it names (``division``), else the import's division
  (``--division``), else it stays where it is; every move is recorded (``app.domain.divisions``);
* its service levels are set when the file gives them (an empty value clears them);
* **onboarding a division** is an import with ``division``: the file is that division's whole
  catalogue, so its services that the file leaves out are removed (no longer offered; their
  requests are kept), unless ``keep_missing``. The division is created when the file declares
  it (``divisions``) or ``division_name`` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from app.domain import divisions as division_domain
from app.domain.catalog_files import CatalogueFile
from app.domain.catalog_translations import set_catalog_locale
from app.domain.service_levels import Unit, parse_service_levels
from app.errors import Conflict
from app.store import catalog as store
from app.store import divisions as division_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

# Services written per statement batch of an import (the unit of its progress).
IMPORT_STEP = 20
# The service fields an import compares, as a catalogue file names them.
FIELDS = (
    "service_name",
    "description",
    "type",
    "keywords",
    "group",
    "agency_responsible",
    "service_notice",
)
ServiceChangeKind = Literal["added", "changed", "moved", "removed", "unchanged"]


async def upsert_jurisdiction(conn: AsyncConnection, data: dict[str, Any]) -> int:
    """Create or update a jurisdiction by its code; its primary key.

    ``locale`` (optional) is the language its services are written in (default: English;
    a catalogue without one leaves the stored language as it is)."""
    pk = await store.upsert_jurisdiction(
        conn,
        store.JurisdictionValues(
            code=data["jurisdiction_id"],
            name=data["name"],
            timezone=data.get("timezone", "UTC"),
            contact=data.get("contact"),
            key_service=data.get("key_service"),
        ),
    )
    if data.get("locale"):
        await set_catalog_locale(conn, pk, str(data["locale"]))
    return pk


async def service_pks(conn: AsyncConnection, jurisdiction_pk: int) -> dict[str, int]:
    """Every service of a jurisdiction, active or not: code -> primary key."""
    return await store.service_pks(conn, jurisdiction_pk)


def _attribute(a: dict[str, Any]) -> store.AttributeRecord:
    return store.AttributeRecord(
        code=str(a["code"]),
        variable=bool(a.get("variable", True)),
        datatype=a["datatype"],
        required=bool(a.get("required", False)),
        datatype_description=a.get("datatype_description"),
        order=int(a["order"]),
        description=a.get("description") or "",
        values=tuple((str(v["key"]), str(v["name"])) for v in a["values"])
        if a.get("values")
        else None,
    )


def _service(service: dict[str, Any]) -> store.ServiceValues:
    return store.ServiceValues(
        code=str(service["service_code"]),
        name=service["service_name"],
        description=service.get("description"),
        type=service.get("type", "realtime"),
        keywords=service.get("keywords"),
        group=service.get("group"),
        agency_responsible=service.get("agency_responsible"),
        service_notice=service.get("service_notice"),
        attributes=tuple(_attribute(a) for a in service.get("attributes", [])),
    )


async def upsert_services(
    conn: AsyncConnection, jurisdiction_pk: int, services: list[dict[str, Any]]
) -> dict[str, int]:
    """Create or update services by code, replacing their attributes; code -> primary key."""
    return await store.upsert_services(conn, jurisdiction_pk, [_service(s) for s in services])


# --- the import: plan (a diff), then apply -------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a service that the import changes."""

    name: str
    before: str | None
    after: str | None

    def line(self) -> str:
        """``name: before -> after``."""
        return f"{self.name}: {_shown(self.before)} -> {_shown(self.after)}"


def _shown(value: str | None) -> str:
    if value is None or value == "":
        return "(none)"
    text = value if len(value) <= 60 else value[:57] + "..."
    return repr(text)


@dataclass(slots=True)
class ServiceDiff:
    """What the import does to one service."""

    code: str
    name: str
    kind: ServiceChangeKind
    changes: list[FieldChange] = field(default_factory=list)
    from_division: str | None = None
    to_division: str | None = None
    reactivated: bool = False

    def item(self) -> dict[str, Any]:
        """The admin API's view."""
        return {
            "service_code": self.code,
            "service_name": self.name,
            "change": self.kind,
            "fields": [
                {"field": c.name, "before": c.before, "after": c.after} for c in self.changes
            ],
            "from_division": self.from_division,
            "to_division": self.to_division,
            "reactivated": self.reactivated,
        }


@dataclass(frozen=True, slots=True)
class DivisionDiff:
    """A division the import adds or renames."""

    code: str
    name: str
    kind: Literal["added", "renamed"]
    before: str | None = None
    contact: str | None = None


@dataclass(slots=True)
class ImportPlan:
    """What an import changes (or changed): divisions, then services by kind."""

    jurisdiction: str
    division: str | None
    divisions: list[DivisionDiff] = field(default_factory=list)
    services: list[ServiceDiff] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    applied: bool = False

    def of(self, kind: ServiceChangeKind) -> list[ServiceDiff]:
        """The services of one kind of change, by code."""
        return [s for s in self.services if s.kind == kind]

    def counts(self) -> dict[str, int]:
        """How many services of each kind."""
        kinds: tuple[ServiceChangeKind, ...] = (
            "added",
            "changed",
            "moved",
            "removed",
            "unchanged",
        )
        return {kind: len(self.of(kind)) for kind in kinds}

    @property
    def changes_anything(self) -> bool:
        """Whether applying it writes anything."""
        counts = self.counts()
        return bool(self.divisions) or any(counts[k] for k in counts if k != "unchanged")

    def summary(self) -> str:
        """``2 added, 1 changed, 0 moved, 1 removed, 18 unchanged``."""
        return ", ".join(f"{n} {kind}" for kind, n in self.counts().items())

    def lines(self) -> list[str]:
        """The readable diff: ``+`` added, ``~`` changed, ``>`` moved, ``-`` removed."""
        out: list[str] = []
        for division in self.divisions:
            if division.kind == "added":
                out.append(f"+ division {division.code}: {division.name!r} (new)")
            else:
                out.append(
                    f"~ division {division.code}: renamed {division.before!r} -> {division.name!r}"
                )
        for service in self.services:
            if service.kind == "unchanged":
                continue
            head = f"{service.code}  {service.name}"
            if service.kind == "added":
                again = " (offered again)" if service.reactivated else ""
                where = f" [{service.to_division}]" if service.to_division else ""
                out.append(f"+ {head}{where}{again}")
            elif service.kind == "removed":
                out.append(f"- {head} (no longer offered; its requests are kept)")
            elif service.kind == "moved":
                out.append(
                    f"> {head}: moved from {service.from_division or '(no division)'} "
                    f"to {service.to_division or '(no division)'}"
                )
            else:
                out.append(f"~ {head}")
            out.extend(f"    {change.line()}" for change in service.changes)
        unchanged = len(self.of("unchanged"))
        if unchanged:
            out.append(f"= {unchanged} service{'s' if unchanged != 1 else ''} unchanged")
        out.extend(f"! {warning}" for warning in self.warnings)
        return out

    def item(self) -> dict[str, Any]:
        """The admin API's view."""
        return {
            "jurisdiction_id": self.jurisdiction,
            "division": self.division,
            "applied": self.applied,
            "summary": self.counts(),
            "divisions": [
                {"code": d.code, "name": d.name, "change": d.kind, "before": d.before}
                for d in self.divisions
            ],
            "services": [s.item() for s in self.services if s.kind != "unchanged"],
            "warnings": self.warnings,
            "diff": self.lines(),
        }


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _attributes_change(record: store.ServiceRecord, service: dict[str, Any]) -> FieldChange | None:
    """The attributes a JSON service replaces, when they differ from the stored ones."""
    after = tuple(_attribute(a) for a in service.get("attributes", []))
    before = record.attributes
    if after == before:
        return None
    before_codes = ", ".join(a.code for a in before) or None
    after_codes = ", ".join(a.code for a in after) or None
    if before_codes == after_codes:
        return FieldChange("attributes", before_codes, f"{after_codes} (definitions changed)")
    return FieldChange("attributes", before_codes, after_codes)


@dataclass(slots=True)
class _Target:
    """Where the import puts one service, computed once for the plan and the writes."""

    service: dict[str, Any]
    division: str | None  # the division it ends up in
    levels: str | None  # canonical text to store; None: keep
    set_levels: bool


def _targets(
    catalogue: CatalogueFile, division: str | None, stored: dict[str, store.ServiceRecord]
) -> list[_Target]:
    out: list[_Target] = []
    for service in catalogue.services:
        code = str(service["service_code"])
        record = stored.get(code)
        if service.get("division"):
            target = service["division"]
        elif division is not None:
            target = division
        else:
            target = record.division_code if record is not None else None
        set_levels = "service_levels" in service
        levels = (service.get("service_levels") or None) if set_levels else None
        out.append(_Target(service, target, levels, set_levels))
    return out


async def _divisions(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    catalogue: CatalogueFile,
    division: str | None,
    division_name: str | None,
    targets: list[_Target],
) -> list[DivisionDiff]:
    """The divisions the import adds or renames (400 when it uses one that would not exist,
    or would give two divisions one name)."""
    existing = {d.code: d for d in await division_store.list_divisions(conn, jurisdiction_pk)}
    declared = {str(d["code"]): d for d in catalogue.divisions}
    if division is not None and division_name is not None:
        declared.setdefault(division, {"code": division, "name": division_name, "contact": None})
        declared[division] = {**declared[division], "name": division_name}
    names = {code: row.name for code, row in existing.items()}
    diffs: list[DivisionDiff] = []
    for code, spec in declared.items():
        name = str(spec["name"])
        contact = spec.get("contact")
        if code not in existing:
            diffs.append(DivisionDiff(code, name, "added", contact=contact))
        elif existing[code].name != name:
            diffs.append(DivisionDiff(code, name, "renamed", existing[code].name, contact))
        names[code] = name
    # A name held by two divisions after the import is refused (names are unique).
    by_name: dict[str, str] = {}
    for code, name in names.items():
        other = by_name.setdefault(name.lower(), code)
        if other != code:
            raise Conflict(f"Divisions {other!r} and {code!r} would both be named {name!r}.")
    used = {t.division for t in targets if t.division is not None}
    if division is not None:
        used.add(division)
    unknown = sorted(used - set(names))
    if unknown:
        raise division_domain.DivisionNotFound(
            f"No division {', '.join(repr(u) for u in unknown)} in this jurisdiction: declare it "
            'in the file\'s "divisions" list or give its name (--division-name, division_name) '
            "to create it."
        )
    return diffs


async def plan_import(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    jurisdiction_code: str,
    catalogue: CatalogueFile,
    *,
    division: str | None = None,
    division_name: str | None = None,
    keep_missing: bool = False,
    has_calendar: bool = True,
) -> ImportPlan:
    """What importing ``catalogue`` would change, compared with what is stored (400 when it
    names a division that neither exists nor is declared)."""
    if division is not None:
        division = division_domain.check_code(division)
    if division_name is not None:
        division_name = division_domain.check_text(
            division_name, "The division name", division_domain.MAX_NAME
        )
    stored = {r.code: r for r in await store.read_services(conn, jurisdiction_pk, inactive=True)}
    targets = _targets(catalogue, division, stored)
    new_divisions = await _divisions(
        conn, jurisdiction_pk, catalogue, division, division_name, targets
    )
    plan = ImportPlan(jurisdiction_code, division, new_divisions)
    in_file: set[str] = set()
    for target in targets:
        service = target.service
        code = str(service["service_code"])
        in_file.add(code)
        record = stored.get(code)
        if record is None or not record.active:
            plan.services.append(
                ServiceDiff(
                    code,
                    service["service_name"],
                    "added",
                    from_division=record.division_code if record else None,
                    to_division=target.division,
                    reactivated=record is not None,
                )
            )
            continue
        diff = ServiceDiff(
            code,
            service["service_name"],
            "unchanged",
            from_division=record.division_code,
            to_division=target.division,
        )
        for name in FIELDS:
            if name == "agency_responsible" and target.division is not None:
                continue  # the division's name is the service's agency_responsible
            before = _text(getattr(record, "name" if name == "service_name" else name))
            after = _text(service.get(name, "realtime" if name == "type" else None))
            if before != after:
                diff.changes.append(FieldChange(name, before, after))
        if catalogue.kind == "json":
            change = _attributes_change(record, service)
            if change is not None:
                diff.changes.append(change)
        if target.set_levels and (target.levels or None) != record.service_levels:
            diff.changes.append(FieldChange("service_levels", record.service_levels, target.levels))
        if target.division != record.division_code:
            diff.kind = "moved"
        elif diff.changes:
            diff.kind = "changed"
        plan.services.append(diff)
    if division is not None and not keep_missing:
        for record in stored.values():
            if record.active and record.division_code == division and record.code not in in_file:
                plan.services.append(
                    ServiceDiff(record.code, record.name, "removed", from_division=division)
                )
    plan.services.sort(key=lambda s: s.code)
    if not has_calendar:
        business = sorted(
            str(t.service["service_code"])
            for t in targets
            if t.levels
            and any(
                level.unit in (Unit.BUSINESS_DAYS, Unit.BUSINESS_HOURS)
                for level in parse_service_levels(t.levels)
            )
        )
        if business:
            plan.warnings.append(
                f"{jurisdiction_code} has no business calendar: the business-time targets of "
                f"{', '.join(business[:10])}{' ...' if len(business) > 10 else ''} give no "
                "expected_datetime until one is set ('open311 jurisdictions calendar')."
            )
    return plan


async def apply_import(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    jurisdiction_code: str,
    catalogue: CatalogueFile,
    *,
    by: str,
    division: str | None = None,
    division_name: str | None = None,
    keep_missing: bool = False,
    has_calendar: bool = True,
    progress: Callable[[int], object] | None = None,
) -> ImportPlan:
    """Import ``catalogue`` on ``conn`` (the caller's transaction); what it changed.

    ``by`` names who imports (recorded with each move). A CSV file (no attributes) keeps the
    stored attributes of its services.
    """
    plan = await plan_import(
        conn,
        jurisdiction_pk,
        jurisdiction_code,
        catalogue,
        division=division,
        division_name=division_name,
        keep_missing=keep_missing,
        has_calendar=has_calendar,
    )
    for change in plan.divisions:
        if change.kind == "added":
            await division_domain.create_division(
                conn, jurisdiction_pk, change.code, change.name, change.contact
            )
        else:
            await division_domain.update_division(
                conn, jurisdiction_pk, change.code, name=change.name
            )
    stored = {r.code: r for r in await store.read_services(conn, jurisdiction_pk, inactive=True)}
    targets = _targets(catalogue, plan.division, stored)
    services = [t.service for t in targets]
    if catalogue.kind == "csv":
        for service in services:
            found = stored.get(str(service["service_code"]))
            service["attributes"] = [
                _attribute_entry(a) for a in (found.attributes if found else ())
            ]
    pks: dict[str, int] = {}
    for start in range(0, len(services), IMPORT_STEP):
        chunk = services[start : start + IMPORT_STEP]
        pks.update(await upsert_services(conn, jurisdiction_pk, chunk))
        if progress is not None:
            progress(len(chunk))
    for target in targets:
        code = str(target.service["service_code"])
        record = stored.get(code)
        if target.set_levels:
            await store.set_service_levels(conn, pks[code], target.levels)
        before = record.division_code if record is not None else None
        if target.division != before:
            await division_domain.record_move(
                conn,
                jurisdiction_pk,
                pks[code],
                before,
                target.division,
                by=f"{by} (import)"[:255],
            )
    removed = [stored[s.code].pk for s in plan.of("removed")]
    await store.deactivate_services(conn, removed)
    plan.applied = True
    return plan


def _attribute_entry(a: store.AttributeRecord) -> dict[str, Any]:
    return {
        "code": a.code,
        "variable": a.variable,
        "datatype": a.datatype,
        "required": a.required,
        "datatype_description": a.datatype_description,
        "order": a.order,
        "description": a.description,
        "values": None if a.values is None else [{"key": k, "name": n} for k, n in a.values],
    }
