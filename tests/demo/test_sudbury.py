"""The demo's second jurisdiction, Greater Sudbury (bilingual), and Toronto staying the
jurisdiction of calls without jurisdiction_id under make run's settings. Both backends."""

from __future__ import annotations

import csv
import json

import httpx

from app.demo.loader import (
    SUDBURY_CATALOG_FILE,
    SUDBURY_TRANSLATIONS_FILE,
    load_demo,
    load_sudbury_demo,
)
from tests.conftest import AppFactory, engine_of
from tests.support import error_descriptions, fetch_both, make_run_default_jurisdiction

SUDBURY = {"jurisdiction_id": "greatersudbury.ca"}
WARDS_FILE = SUDBURY_CATALOG_FILE.parent / "boundaries" / "greater_sudbury_wards_12.geojson"


async def bodies(
    client: httpx.AsyncClient, path: str, params: dict[str, str] | None = None
) -> tuple[bytes, bytes]:
    """The JSON and XML bodies of a successful GET."""
    out = []
    for fmt in ("json", "xml"):
        response = await client.get(f"/open311/v2/{path}.{fmt}", params=params)
        assert response.status_code == 200, (path, fmt, response.text[:300])
        out.append(response.content)
    return out[0], out[1]


async def test_toronto_stays_the_default_and_answers_exactly_as_before(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    engine = engine_of(client)
    await load_demo(engine, original_dates=True)
    window = {"start_date": "2018-10-20T00:00:00-04:00", "end_date": "2018-10-22T00:00:00-04:00"}
    calls = [("services", None), ("services/CSROWC-05", None), ("requests", window)]
    calls += [("areas", None), ("discovery", None)]
    before = {}
    for path, params in calls:
        before[path] = await bodies(client, path, params)  # Toronto alone: single mode

    report = await load_sudbury_demo(engine)
    assert (report.jurisdiction, report.services) == ("greatersudbury.ca", 6)
    served = await make_client(default_jurisdiction=make_run_default_jurisdiction())
    for path, params in calls:
        after = await bodies(served, path, params)
        if path == "discovery":  # the changeset is the newest catalogue's: Sudbury's now
            assert json.loads(after[0])["contact"] == json.loads(before[path][0])["contact"]
            continue
        assert after == before[path], path
        named = await bodies(served, path, {**(params or {}), "jurisdiction_id": "toronto.ca"})
        assert named == before[path], path

    # Without make run's setting the server has two jurisdictions: jurisdiction_id is needed.
    plain = await make_client()
    missing = await fetch_both(plain, "services", expect=400)
    assert error_descriptions(missing.json) == [
        "jurisdiction_id is required: this server hosts several jurisdictions."
    ]


async def test_sudbury_in_english_and_french(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    engine = engine_of(client)
    await load_demo(engine, with_requests=False)
    await load_sudbury_demo(engine)
    again = await load_sudbury_demo(engine)  # idempotent
    assert again.services == 6
    served = await make_client(default_jurisdiction=make_run_default_jurisdiction())
    catalog = json.loads(SUDBURY_CATALOG_FILE.read_text(encoding="utf-8"))
    with SUDBURY_TRANSLATIONS_FILE.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    french = {
        (r["service_code"], r["attribute_code"], r["value_key"], r["field"]): r["text"]
        for r in rows
    }

    english = await fetch_both(served, "services", params=SUDBURY)
    assert english.json_response.headers["content-language"] == "en"
    assert [s["service_name"] for s in english.json] == sorted(
        (s["service_name"] for s in catalog["services"]),
        key=lambda name: next(
            s["service_code"] for s in catalog["services"] if s["service_name"] == name
        ),
    )
    translated = await fetch_both(
        served, "services", params=SUDBURY, headers={"Accept-Language": "fr-CA,fr;q=0.9"}
    )
    assert translated.json_response.headers["content-language"] == "fr"
    for item in translated.json:
        code = item["service_code"]
        for name in ("service_name", "description", "keywords", "group"):
            assert item[name] == french[(code, "", "", name)], (code, name)
    # Every text of every definition is in French (the demo translates them all).
    for service in catalog["services"]:
        code = service["service_code"]
        definition = await fetch_both(
            served, f"services/{code}", params={**SUDBURY, "locale": "fr"}
        )
        for attribute in definition.json["attributes"]:
            key = (code, attribute["code"], "")
            assert attribute["description"] == french[(*key, "description")]
            if attribute["datatype_description"] is not None:
                assert attribute["datatype_description"] == french[(*key, "datatype_description")]
            for value in attribute.get("values", []):
                assert value["name"] == french[(code, attribute["code"], value["key"], "name")]

    # Its 12 real wards.
    wards = json.loads((await bodies(served, "areas", SUDBURY))[0])
    features = json.loads(WARDS_FILE.read_text(encoding="utf-8"))["features"]
    assert sorted(a["code"] for a in wards) == sorted(
        f["properties"]["ward_code"] for f in features
    )
    assert len(wards) == 12
    # French errors for Sudbury's callers too.
    unknown = await fetch_both(
        served, "services/NOPE", params={**SUDBURY, "locale": "fr"}, expect=404
    )
    assert error_descriptions(unknown.json) == [
        "service_code 'NOPE' n'est pas un service de cette juridiction."
    ]
