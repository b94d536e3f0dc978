"""Catalogue translations from a CSV file (``open311 translations import``), checked first.

One translated text a row, with a header row::

    locale,service_code,attribute_code,value_key,field,text
    fr,POTHOLE,,,service_name,Nid-de-poule
    fr,POTHOLE,,,description,Signaler un nid-de-poule sur la chaussée.
    fr,POTHOLE,SIZE,,description,Taille du nid-de-poule
    fr,POTHOLE,SIZE,small,name,Petit

* ``locale``: a language tag (``fr``, ``fr-CA``) of a language CLDR knows, not the one the
  catalogue is written in;
* a service's text (``attribute_code`` and ``value_key`` empty): ``field`` is one of
  ``service_name``, ``description``, ``keywords``, ``group``; an attribute's
  (``attribute_code``): ``description`` or ``datatype_description``; a list value's name
  (``attribute_code`` and ``value_key``): ``name``;
* ``text``: the translation; an empty ``text`` removes a stored one;
* an optional ``source`` column (the text as written, for translators) is not read.

The columns ``attribute_code`` and ``value_key`` may be left out of a file of services' texts.
Every service, attribute and value named must exist in the jurisdiction (inactive services
count). Nothing is written if any row is wrong; every problem is reported with its line.

Bounds, checked before the work they limit: the file is at most ``MAX_FILE_BYTES`` (checked
before it is read), at most ``MAX_ROWS`` rows (reading stops past it), texts at most the
lengths of the columns they translate.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain.catalog import DEFAULT_LOCALE, ServiceInfo, read_services
from app.domain.i18n import canonical_tag, known_locale
from app.domain.problems import ProblemsError
from app.georeport.models import LIST_DATATYPES
from app.store import translations as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

CSV_COLUMNS = ("locale", "service_code", "attribute_code", "value_key", "field", "text", "source")
REQUIRED_COLUMNS = ("locale", "service_code", "field", "text")
MAX_FILE_BYTES = 8 << 20
MAX_ROWS = 50_000
# field -> longest text, by what a row translates (the lengths of the translated columns).
SERVICE_FIELDS = {"service_name": 255, "description": 4000, "keywords": 1000, "group": 255}
ATTRIBUTE_FIELDS = {"description": 4000, "datatype_description": 1000}
VALUE_FIELDS = {"name": 1000}
KEY_LENGTH = 255


class TranslationFileError(ProblemsError):
    """A translations file that cannot be imported; ``problems`` say where and why."""


@dataclass(frozen=True, slots=True)
class TranslationRow:
    """One row of a translations file (``text`` None: remove the stored translation)."""

    line: int
    locale: str
    service_code: str
    attribute_code: str
    value_key: str
    field: str
    text: str | None

    @property
    def key(self) -> store.TranslationKey:
        """What the row translates."""
        return store.TranslationKey(
            self.locale, self.service_code, self.attribute_code, self.value_key, self.field
        )


@dataclass(slots=True)
class ImportReport:
    """What an import did (or, dry, would do)."""

    rows: int
    locales: dict[str, int] = field(default_factory=dict)
    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0


def _fields_of(attribute_code: str, value_key: str) -> dict[str, int]:
    if value_key:
        return VALUE_FIELDS
    return ATTRIBUTE_FIELDS if attribute_code else SERVICE_FIELDS


def _check_row(values: dict[str, str], line: int, problems: list[str]) -> TranslationRow | None:
    at = f"line {line}"
    before = len(problems)
    raw_locale = values.get("locale", "")
    locale = canonical_tag(raw_locale)
    if not raw_locale:
        problems.append(f"{at}: locale is empty")
    elif locale is None:
        problems.append(f"{at}: locale {raw_locale!r} is not a language tag (e.g. fr or fr-CA)")
    elif not known_locale(locale):
        problems.append(f"{at}: locale {raw_locale!r} is not a language CLDR knows")
    service_code = values.get("service_code", "")
    attribute_code = values.get("attribute_code", "")
    value_key = values.get("value_key", "")
    if not service_code:
        problems.append(f"{at}: service_code is empty")
    if value_key and not attribute_code:
        problems.append(f"{at}: value_key {value_key!r} needs the attribute_code of its list")
    for name in ("service_code", "attribute_code", "value_key"):
        if len(values.get(name, "")) > KEY_LENGTH:
            problems.append(f"{at}: {name} is longer than {KEY_LENGTH} characters")
    fields = _fields_of(attribute_code, value_key)
    name = values.get("field", "")
    kind = "a value" if value_key else "an attribute" if attribute_code else "a service"
    if name not in fields:
        problems.append(
            f"{at}: field {name!r} is not a text of {kind}; use one of {', '.join(fields)}"
        )
    text = values.get("text", "")
    if name in fields and len(text) > fields[name]:
        problems.append(f"{at}: text is longer than {fields[name]} characters (the {name})")
    if len(problems) > before or locale is None:
        return None
    return TranslationRow(
        line, locale, service_code, attribute_code, value_key, name, text.strip() or None
    )


def read_translations_csv(path: Path) -> list[TranslationRow]:
    """The rows of a translations file (see the module docstring), checked on their own."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TranslationFileError([f"cannot read {path.name}: {exc.strerror}"]) from exc
    if size > MAX_FILE_BYTES:
        raise TranslationFileError(
            [f"{path.name} is {size} bytes: at most {MAX_FILE_BYTES} bytes can be imported"]
        )
    try:
        text = path.read_bytes()[: MAX_FILE_BYTES + 1].decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TranslationFileError(
            [f"{path.name} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8"]
        ) from exc
    return parse_translations(text, path.name)


def parse_translations(text: str, name: str) -> list[TranslationRow]:
    """The rows of a translations file's text (``name`` for messages)."""
    # strict: a stray or unclosed quote is an error, not text taken as it comes.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    rows: list[TranslationRow] = []
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise TranslationFileError([f"{name} is empty: expected a header row"])
        names = [h.strip().lower() for h in header]
        unknown = [n for n in names if n not in CSV_COLUMNS]
        if unknown:
            problems.append(
                f"line 1: unknown column(s) {', '.join(repr(n) for n in unknown)}; the columns "
                f"are {', '.join(CSV_COLUMNS)}"
            )
        problems += [
            f"line 1: the column {required!r} is missing"
            for required in REQUIRED_COLUMNS
            if required not in names
        ]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"line 1: column(s) {', '.join(repeated)} appear twice")
        if problems:
            raise TranslationFileError(problems)
        seen: dict[store.TranslationKey, int] = {}
        end = reader.line_num
        for cells in reader:
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise TranslationFileError(
                    [*problems, f"line {line}: more than {MAX_ROWS} rows; split the file"]
                )
            if len(cells) != len(names):
                problems.append(
                    f"line {line}: {len(cells)} fields, but the header has {len(names)}"
                )
                continue
            values = {
                column: cell if column == "text" else cell.strip()
                for column, cell in zip(names, cells, strict=True)
            }
            row = _check_row(values, line, problems)
            if row is None:
                continue
            if row.key in seen:
                problems.append(f"line {line}: the same text as line {seen[row.key]}")
                continue
            seen[row.key] = line
            rows.append(row)
    except csv.Error as exc:
        raise TranslationFileError([*problems, f"line {reader.line_num}: {exc}"]) from exc
    if problems:
        raise TranslationFileError(problems)
    if not rows:
        raise TranslationFileError([f"{name} has a header but no translations"])
    return rows


def check_references(
    rows: Sequence[TranslationRow], services: Sequence[ServiceInfo], own_locale: str, code: str
) -> list[str]:
    """The problems of rows that name what the jurisdiction ``code`` does not have."""
    by_code = {s.code: s for s in services}
    problems: list[str] = []
    for row in rows:
        at = f"line {row.line}"
        if row.locale.lower() == own_locale.lower():
            problems.append(
                f"{at}: {code}'s services are written in {own_locale}: change them with "
                "'open311 services import' instead"
            )
            continue
        service = by_code.get(row.service_code)
        if service is None:
            problems.append(f"{at}: service_code {row.service_code!r} is not a service of {code}")
            continue
        if not row.attribute_code:
            continue
        attribute = next((a for a in service.attributes if a.code == row.attribute_code), None)
        if attribute is None:
            problems.append(f"{at}: {row.service_code} has no attribute {row.attribute_code!r}")
        elif row.value_key and attribute.datatype not in LIST_DATATYPES:
            problems.append(
                f"{at}: attribute {row.attribute_code!r} of {row.service_code} has no values "
                f"(datatype {attribute.datatype})"
            )
        elif row.value_key and row.value_key not in attribute.keys:
            problems.append(
                f"{at}: attribute {row.attribute_code!r} of {row.service_code} has no value "
                f"{row.value_key!r}"
            )
    return problems


async def catalog_locale(conn: AsyncConnection, jurisdiction_pk: int) -> str:
    """The language a jurisdiction's services are written in."""
    records = await store.read_locales(conn, jurisdiction_pk)
    return next((r.locale for r in records if r.is_default), DEFAULT_LOCALE)


async def set_catalog_locale(conn: AsyncConnection, jurisdiction_pk: int, locale: str) -> bool:
    """Record the language a jurisdiction's services are written in (a language tag CLDR
    knows); False when it already was."""
    tag = canonical_tag(locale)
    if tag is None or not known_locale(tag):
        raise ValueError(f"locale {locale!r} is not a language tag CLDR knows (e.g. en, fr)")
    return await store.set_default_locale(conn, jurisdiction_pk, tag)


async def import_translations(
    engine: AsyncEngine,
    jurisdiction_pk: int,
    code: str,
    rows: Sequence[TranslationRow],
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Check ``rows`` against the jurisdiction's catalogue, then (unless ``dry_run``) store
    them in one transaction. Raises TranslationFileError, writing nothing, on any problem."""
    report = ImportReport(rows=len(rows))
    for row in rows:
        report.locales[row.locale] = report.locales.get(row.locale, 0) + 1
    async with engine.begin() as conn:
        services = await read_services(conn, jurisdiction_pk, inactive=True)
        own = await catalog_locale(conn, jurisdiction_pk)
        problems = check_references(rows, services, own, code)
        if problems:
            raise TranslationFileError(problems)
        if dry_run:
            return report
        counts = await store.write_translations(
            conn,
            jurisdiction_pk,
            [store.TranslationRecord(r.key, r.text) for r in rows if r.text is not None],
            [r.key for r in rows if r.text is None],
        )
    report.created, report.updated = counts.created, counts.updated
    report.removed, report.unchanged = counts.removed, counts.unchanged
    return report
