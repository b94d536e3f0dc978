"""Records built from the store's: a class that extends a store record (the catalogue's
``AttributeInfo`` and ``ServiceInfo``, ``DivisionInfo``, ``MoveInfo``, the federation's
``PartnerState``) adds behaviour or fields, never a second list of the same fields, and is
made from the record by its fields."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def field_values(record: Any, kind: type[Any] | None = None) -> dict[str, Any]:
    """The values of ``record``'s dataclass fields by name (only those of ``kind``, one of its
    dataclass bases, when given)."""
    return {f.name: getattr(record, f.name) for f in fields(kind or record)}


def extend(kind: type[T], record: Any) -> T:
    """``record`` as an instance of ``kind``, a dataclass that extends its class."""
    return kind(**field_values(record))
