"""Intake channels and first-contact resolution (``app.domain.channels``): the rules alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from app.api.routes.admin_auth import ChannelName
from app.domain.api_keys import KeyInfo
from app.domain.channels import (
    intake_channel,
    key_channel,
    parse_channel,
    resolved_at_intake,
    resolved_on_update,
)
from app.errors import Forbidden, InvalidParameter
from app.georeport.models import CHANNELS, Channel

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)


def _key(*scopes: str, channel: str = "api", key_id: int = 7) -> KeyInfo:
    return KeyInfo(
        id=key_id,
        app_id=1,
        app_name="A",
        scopes=frozenset(scopes),
        jurisdiction_pk=None,
        sandbox=False,
        rate_limit_per_minute=None,
        channel=channel,
    )


def test_one_list_of_channels() -> None:
    assert CHANNELS == (
        "phone",
        "web",
        "mobile_app",
        "email",
        "counter",
        "kiosk",
        "social_media",
        "partner",
        "api",
    )
    assert set(get_args(ChannelName)) == set(CHANNELS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phone", Channel.phone),
        (" Mobile app ", Channel.mobile_app),
        ("SOCIAL-MEDIA", Channel.social_media),
        ("api", Channel.api),
    ],
)
def test_channels_are_read_in_any_case(text: str, expected: Channel) -> None:
    assert parse_channel(text) is expected


@pytest.mark.parametrize("text", ["fax", "", "phone!", "p" * 33, "web,phone"])
def test_unknown_channels_are_refused(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_channel(text)


def test_intake_takes_the_keys_channel_unless_staff_names_one() -> None:
    app_key = _key("submit", channel="mobile_app")
    staff = _key("submit", "update", "staff", channel="phone")
    assert intake_channel(app_key, None) is Channel.mobile_app
    assert intake_channel(staff, "") is Channel.phone
    assert intake_channel(staff, "counter") is Channel.counter
    assert intake_channel(None, None) is Channel.api
    assert key_channel(_key("submit", channel="unknown")) is Channel.api
    with pytest.raises(Forbidden):
        intake_channel(app_key, "phone")
    with pytest.raises(InvalidParameter):
        intake_channel(staff, "fax")


def test_filing_a_request_closed_is_first_contact_resolution_for_staff_only() -> None:
    staff = _key("submit", "staff")
    assert resolved_at_intake(staff, "closed") is True
    assert resolved_at_intake(staff, "open") is False
    assert resolved_at_intake(_key("submit"), None) is False
    with pytest.raises(Forbidden):
        resolved_at_intake(_key("submit"), "closed")


@pytest.mark.parametrize(
    ("closing", "filed_by", "scopes", "after", "expected"),
    [
        (True, 7, ("update", "staff"), timedelta(minutes=5), True),
        (True, 7, ("admin",), timedelta(minutes=30), True),
        (True, 7, ("update", "staff"), timedelta(minutes=31), False),  # too late
        (True, 8, ("update", "staff"), timedelta(minutes=5), False),  # another key filed it
        (True, None, ("update", "staff"), timedelta(minutes=5), False),  # filed by nobody known
        (True, 7, ("update",), timedelta(minutes=5), False),  # not a staff key
        (False, 7, ("update", "staff"), timedelta(minutes=5), False),  # not closing it
        (True, 7, ("update", "staff"), timedelta(minutes=-5), False),  # before it was made
    ],
)
def test_first_contact_resolution_on_update(
    closing: bool, filed_by: int | None, scopes: tuple[str, ...], after: timedelta, expected: bool
) -> None:
    assert (
        resolved_on_update(
            closing=closing,
            filed_by_key=filed_by,
            requested_at=NOW,
            actor=_key(*scopes),
            at=NOW + after,
            window=WINDOW,
        )
        is expected
    )
    assert not resolved_on_update(
        closing=closing,
        filed_by_key=filed_by,
        requested_at=NOW,
        actor=None,
        at=NOW + after,
        window=WINDOW,
    )
