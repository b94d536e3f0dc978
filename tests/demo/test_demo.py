"""The Toronto demo data set loads on both backends and is served as captured."""

from __future__ import annotations

import json
from collections import Counter

import httpx

from app.demo.loader import CATALOG_FILE, REQUESTS_FILE, load_demo
from tests.conftest import engine_of
from tests.support import fetch_both, validate_schema


async def test_demo_loads_and_serves(client: httpx.AsyncClient) -> None:
    engine = engine_of(client)
    report = await load_demo(engine)
    catalog = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
    assert report.services == len(catalog["services"])
    assert report.requests_added == len(records) == 1000

    services = await fetch_both(client, "services")
    validate_schema("services", services.json)
    by_code = {s["service_code"]: s for s in services.json}
    assert set(by_code) == {str(s["service_code"]) for s in catalog["services"]}
    types = Counter(s["type"] for s in services.json)
    assert types["batch"] >= 1
    assert types["blackbox"] >= 1
    assert any(not s["metadata"] for s in services.json)
    # A service with required attributes of several datatypes exists.
    datatypes_required = set()
    for service in catalog["services"]:
        required = {a["datatype"] for a in service["attributes"] if a["required"]}
        if len(required) >= 3:
            datatypes_required |= required
    assert len(datatypes_required) >= 3

    # The captured window: every request of the file is listed, newest first.
    window = {"start_date": "2018-09-26T00:00:00-04:00", "end_date": "2018-10-29T00:00:00-04:00"}
    listed = await fetch_both(client, "requests", params=window)
    validate_schema("requests", listed.json)
    assert len(listed.json) == 1000
    assert {r["service_request_id"] for r in listed.json} == {
        str(r["service_request_id"]) for r in records
    }
    stamps = [r["requested_datetime"] for r in listed.json]
    assert stamps == sorted(stamps, reverse=True)
    expected_open = sum(1 for r in records if r["status"] == "open")
    open_only = await fetch_both(client, "requests", params={**window, "status": "open"})
    assert len(open_only.json) == expected_open

    sample = records[0]
    one = await fetch_both(client, f"requests/{sample['service_request_id']}")
    item = one.json[0]
    assert item["requested_datetime"] == sample["requested_datetime"]
    assert item["lat"] == sample["lat"]
    assert item["long"] == sample["long"]
    assert item["address"] == sample["address"]
    assert item["status_notes"] == sample["status_notes"]

    again = await load_demo(engine)
    assert (again.requests_added, again.requests_skipped) == (0, 1000)
