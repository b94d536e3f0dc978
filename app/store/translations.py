"""Catalogue translations in the database: the languages of each jurisdiction's catalogue and
the translated texts of its services, attributes and attribute values.

``app.domain.catalog`` reads through here (with the services, and caches);
``app.domain.catalog_translations`` writes through here (the CSV import) and
``app.domain.catalog_import`` sets a catalogue's own language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import CatalogLocale, CatalogTranslation
from app.store.tables.base import utcnow

LOCALE = CatalogLocale.__table__
TRANSLATION = CatalogTranslation.__table__


@dataclass(frozen=True, slots=True)
class TranslationKey:
    """What one translated text translates: a service's field (``attribute_code`` and
    ``value_key`` empty), an attribute's (``value_key`` empty) or a value's name."""

    locale: str
    service_code: str
    attribute_code: str
    value_key: str
    field: str


@dataclass(frozen=True, slots=True)
class TranslationRecord:
    """One stored translated text."""

    key: TranslationKey
    text: str


@dataclass(frozen=True, slots=True)
class LocaleRecord:
    """One language of a catalogue."""

    locale: str
    is_default: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """What a translations write did."""

    created: int
    updated: int
    removed: int
    unchanged: int


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def read_locales(conn: AsyncConnection, jurisdiction_pk: int) -> list[LocaleRecord]:
    """The languages of a jurisdiction's catalogue, ordered by tag."""
    rows = await conn.execute(
        select(LOCALE.c.locale, LOCALE.c.is_default, LOCALE.c.updated_at)
        .where(LOCALE.c.jurisdiction_id == jurisdiction_pk)
        .order_by(LOCALE.c.locale)
    )
    return [LocaleRecord(str(locale), bool(default), _aware(at)) for locale, default, at in rows]


async def read_translations(conn: AsyncConnection, jurisdiction_pk: int) -> list[TranslationRecord]:
    """Every translated text of a jurisdiction's catalogue."""
    rows = await conn.execute(
        select(
            TRANSLATION.c.locale,
            TRANSLATION.c.service_code,
            TRANSLATION.c.attribute_code,
            TRANSLATION.c.value_key,
            TRANSLATION.c.field,
            TRANSLATION.c.text,
        )
        .where(TRANSLATION.c.jurisdiction_id == jurisdiction_pk)
        .order_by(TRANSLATION.c.id)
    )
    return [
        TranslationRecord(
            TranslationKey(str(locale), str(service), str(attribute), str(value), str(field)),
            str(text),
        )
        for locale, service, attribute, value, field, text in rows
    ]


async def set_default_locale(conn: AsyncConnection, jurisdiction_pk: int, locale: str) -> bool:
    """Make ``locale`` the language the jurisdiction's services are written in; False when
    it already was."""
    rows = await read_locales(conn, jurisdiction_pk)
    if any(r.is_default and r.locale == locale for r in rows):
        return False
    now = utcnow()
    await conn.execute(
        update(LOCALE)
        .where(LOCALE.c.jurisdiction_id == jurisdiction_pk, LOCALE.c.is_default.is_(True))
        .values(is_default=False, updated_at=now)
    )
    if any(r.locale == locale for r in rows):
        await conn.execute(
            update(LOCALE)
            .where(LOCALE.c.jurisdiction_id == jurisdiction_pk, LOCALE.c.locale == locale)
            .values(is_default=True, updated_at=now)
        )
    else:
        await conn.execute(
            insert(LOCALE).values(
                jurisdiction_id=jurisdiction_pk, locale=locale, is_default=True, updated_at=now
            )
        )
    return True


async def write_translations(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    texts: Sequence[TranslationRecord],
    removals: Sequence[TranslationKey],
) -> WriteCounts:
    """Store ``texts`` (created or replaced by key) and delete the ``removals``; every
    language that changed is recorded as changed now."""
    locales = {t.key.locale for t in texts} | {k.locale for k in removals}
    if not locales:
        return WriteCounts(0, 0, 0, 0)
    stored: dict[TranslationKey, tuple[int, str]] = {}
    rows = await conn.execute(
        select(
            TRANSLATION.c.id,
            TRANSLATION.c.locale,
            TRANSLATION.c.service_code,
            TRANSLATION.c.attribute_code,
            TRANSLATION.c.value_key,
            TRANSLATION.c.field,
            TRANSLATION.c.text,
        ).where(
            TRANSLATION.c.jurisdiction_id == jurisdiction_pk,
            TRANSLATION.c.locale.in_(sorted(locales)),
        )
    )
    for pk, locale, service, attribute, value, field, text in rows:
        stored[TranslationKey(locale, service, attribute, value, field)] = (int(pk), str(text))
    now = utcnow()
    new = [t for t in texts if t.key not in stored]
    changed = [
        (stored[t.key][0], t.text) for t in texts if t.key in stored and stored[t.key][1] != t.text
    ]
    unchanged = sum(1 for t in texts if t.key in stored and stored[t.key][1] == t.text)
    gone = [stored[k][0] for k in removals if k in stored]
    if new:
        await conn.execute(
            insert(TRANSLATION),
            [
                {
                    "jurisdiction_id": jurisdiction_pk,
                    "locale": t.key.locale,
                    "service_code": t.key.service_code,
                    "attribute_code": t.key.attribute_code,
                    "value_key": t.key.value_key,
                    "field": t.key.field,
                    "text": t.text,
                    "updated_at": now,
                }
                for t in new
            ],
        )
    if changed:
        await conn.execute(
            update(TRANSLATION)
            .where(TRANSLATION.c.id == bindparam("pk"))
            .values(text=bindparam("new_text"), updated_at=now),
            [{"pk": pk, "new_text": text} for pk, text in changed],
        )
    if gone:
        await conn.execute(delete(TRANSLATION).where(TRANSLATION.c.id.in_(gone)))
    if new or changed or gone:
        await _touch_locales(conn, jurisdiction_pk, locales, now)
    return WriteCounts(len(new), len(changed), len(gone), unchanged)


async def _touch_locales(
    conn: AsyncConnection, jurisdiction_pk: int, locales: set[str], now: datetime
) -> None:
    # A language's row stays when its last text is removed (it is then simply not offered):
    # its updated_at keeps the catalogue's last change from going back in time.
    present = {r.locale for r in await read_locales(conn, jurisdiction_pk)}
    for locale in sorted(locales):
        if locale in present:
            await conn.execute(
                update(LOCALE)
                .where(LOCALE.c.jurisdiction_id == jurisdiction_pk, LOCALE.c.locale == locale)
                .values(updated_at=now)
            )
        else:
            await conn.execute(
                insert(LOCALE).values(
                    jurisdiction_id=jurisdiction_pk, locale=locale, is_default=False, updated_at=now
                )
            )
