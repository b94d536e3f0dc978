"""Request statuses: the core open/closed and the richer detailed status (FixMyStreet's
``servicerequestupdates`` values), shared by updates and staff intake."""

from __future__ import annotations

from app.errors import InvalidParameter

# Extended statuses (lowercase) and the core status each one means.
DETAILED_STATUSES: dict[str, str] = {
    "open": "open",
    "reopen": "open",
    "in_progress": "open",
    "planned": "open",
    "action_scheduled": "open",
    "investigating": "open",
    "for_triage": "open",
    "closed": "closed",
    "fixed": "closed",
    "duplicate": "closed",
    "not_councils_responsibility": "closed",
    "no_further_action": "closed",
    "internal_referral": "closed",
    "cancelled": "closed",
}


def parse_status(value: str) -> tuple[str, str]:
    """(core status, detailed status) of a status given in any case (``IN_PROGRESS``)."""
    detailed = value.strip().lower().replace(" ", "_")
    if detailed == "reopen":
        return "open", "open"
    core = DETAILED_STATUSES.get(detailed)
    if core is None:
        raise InvalidParameter(
            f"status {value[:40]!r} is not one of {', '.join(sorted(DETAILED_STATUSES))} "
            "(any case)."
        )
    return core, detailed
