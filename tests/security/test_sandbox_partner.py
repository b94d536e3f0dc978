"""Finding 5: a sandbox key's POST to a partner city is never forwarded, and never public."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.domain.api_keys import create_key
from app.domain.queue import QueueProcessor
from tests.conftest import engine_of
from tests.federation.conftest import BASE, PARTNER_HOST, Partner, invalidate
from tests.federation.test_partner import POTHOLE, REMOTE, _remote


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_sandbox_submission_to_a_partner_stays_in_the_sandbox(
    client: httpx.AsyncClient, partner: Partner, make_federation, fmt: str
) -> None:
    await _remote(client, partner, "json")
    federation = make_federation({PARTNER_HOST: partner.transport})
    assert (await federation.refresh(REMOTE))[0].error is None
    invalidate(client)
    engine = engine_of(client)
    app = f"sandbox app {uuid.uuid4().hex[:6]}"
    async with engine.begin() as conn:
        sandbox_key, _ = await create_key(conn, app, app=app, sandbox=True)

    posted = await client.post(
        f"{BASE}/requests.{fmt}",
        data={**POTHOLE, "api_key": sandbox_key, "jurisdiction_id": REMOTE},
    )
    assert posted.status_code == 200, posted.text
    token = (
        posted.json()[0]["token"]
        if fmt == "json"
        else posted.text.split("<token>")[1].split("</token>")[0]
    )

    # Nothing is forwarded to the partner, now or later.
    assert await federation.forward_due() == 0
    assert (await partner.http.get(f"{BASE}/requests.json")).json() == []

    # The worker stores it as a sandbox request of the remote jurisdiction.
    settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    assert await QueueProcessor(engine, settings).run_once() == 1
    params = {"jurisdiction_id": REMOTE}
    [resolved] = (await client.get(f"{BASE}/tokens/{token}.json", params=params)).json()
    request_id = resolved["service_request_id"]
    assert request_id is not None
    assert await federation.forward_due() == 0
    assert (await partner.http.get(f"{BASE}/requests.json")).json() == []

    # Public readers never see it; the app's sandbox does.
    public = await client.get(f"{BASE}/requests/{request_id}.json", params=params)
    assert public.status_code == 404
    listing = await client.get(f"{BASE}/requests.json", params=params)
    assert request_id not in [item["service_request_id"] for item in listing.json()]
    mine = await client.get(
        f"{BASE}/requests/{request_id}.json", params={**params, "api_key": sandbox_key}
    )
    assert mine.status_code == 200
    assert mine.json()[0]["description"] == POTHOLE["description"]
