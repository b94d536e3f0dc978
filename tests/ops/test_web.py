"""The public map page: HTML, local assets, and the counts behind it (in process)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.demo.loader import load_demo
from tests.conftest import engine_of, seed_catalog
from tests.ops.test_metrics import scrape, value

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "app" / "web"
OURS = [WEB / "templates" / "map.html", WEB / "static" / "map.js", WEB / "static" / "map.css"]
BASE = "/open311/v2"
ASSET = re.compile(r'(?:src|href)="([^"]+)"')
JS_TYPES = ("text/javascript; charset=utf-8", "application/javascript; charset=utf-8")


async def test_page_and_its_assets_are_served_locally(client: httpx.AsyncClient) -> None:
    pages = [await client.get(path) for path in ("/", "/map")]
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src" not in policy  # scripts: 'self' only (the default)
    html = pages[0].text
    assert pages[1].text == html
    assert f'data-api="{BASE}"' in html
    assert 'data-summary="/web/summary.json"' in html
    assert '<canvas id="chart-services"' in html
    assert '<canvas id="chart-wards"' in html
    assets = ASSET.findall(html)
    assert {
        "/web/static/vendor/leaflet/leaflet.js",
        "/web/static/vendor/leaflet/leaflet.css",
        "/web/static/vendor/chartjs/chart.umd.min.js",
        "/web/static/map.js",
        "/web/static/map.css",
    } <= set(assets)
    for url in assets:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        response = await client.get(url)
        assert response.status_code == 200, url
        kind = response.headers["content-type"]
        if url.endswith(".js"):
            assert kind in JS_TYPES, (url, kind)
        elif url.endswith(".css"):
            assert kind == "text/css; charset=utf-8", (url, kind)
        else:
            assert kind.startswith("application/json"), (url, kind)  # discovery.json
    # Leaflet's stylesheet refers to its images relative to itself: they are there too.
    css = (await client.get("/web/static/vendor/leaflet/leaflet.css")).text
    images = set(re.findall(r"url\((images/[^)]+)\)", css))
    assert images
    for image in images:
        response = await client.get(f"/web/static/vendor/leaflet/{image}")
        assert response.status_code == 200, image
        assert response.headers["content-type"] == "image/png"
    assert (await client.get("/web/static/../__init__.py")).status_code == 404


def test_our_page_files_name_no_other_site() -> None:
    for path in OURS:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), path
        assert not re.search(r"""(?:src|href)=["']//|url\(\s*["']?//|import\s""", text), path
    for name in ("leaflet/LICENSE", "chartjs/LICENSE.md"):
        licence = (WEB / "static" / "vendor" / name).read_text(encoding="utf-8")
        assert "Permission" in licence or "Redistribution" in licence


def test_package_data_ships_the_page() -> None:
    """Every file under app/web that is not Python matches a package-data pattern."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["app"]
    shipped = {p for pattern in patterns for p in (ROOT / "app").glob(pattern) if p.is_file()}
    needed = {p for p in WEB.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert needed
    assert needed <= shipped, sorted(str(p) for p in needed - shipped)


async def _get(client: httpx.AsyncClient, url: str, **params: str) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


async def test_summary_agrees_with_the_requests_api(client: httpx.AsyncClient) -> None:
    await load_demo(engine_of(client), original_dates=True)
    summary = await _get(client, "/web/summary.json")
    assert summary["jurisdiction"] == {
        "jurisdiction_id": "toronto.ca",
        "name": "City of Toronto",
        "timezone": "America/Toronto",
    }
    # No dates given: the 90 days up to the newest request (the demo is from 2018).
    assert summary["data_range"]["last"].startswith("2018-10-28T")
    assert summary["window"]["end_date"] == "2018-10-28"
    assert summary["window"]["start_date"] == "2018-07-31"
    assert summary["window"]["end"] == "2018-10-29T00:00:00-04:00"
    assert summary["statuses"] == ["open", "closed"]
    assert summary["total"] == 1000
    assert len(summary["by_ward"]) == 25
    wards_total = sum(w["count"] for w in summary["by_ward"])
    assert wards_total + summary["outside_wards"] == summary["total"]
    assert sum(s["count"] for s in summary["by_service"]) == summary["total"]

    # The page's own query: open requests in the window, from the GeoReport API.
    end = (date.fromisoformat(summary["window"]["end_date"]) + timedelta(days=1)).isoformat()
    window = {"start_date": summary["window"]["start_date"], "end_date": end}
    opened = await _get(client, "/web/summary.json", status="open", **window)
    items = await _get(client, f"{BASE}/requests.json", status="open", extensions="true", **window)
    assert opened["total"] == len(items) > 0
    by_ward = Counter(i["extended_attributes"]["ward"] for i in items)
    assert {w["code"]: w["count"] for w in opened["by_ward"] if w["count"]} == {
        k: v for k, v in by_ward.items() if k is not None
    }
    assert opened["outside_wards"] == by_ward[None]
    by_service = Counter(i["service_code"] for i in items)
    assert {s["service_code"]: s["count"] for s in opened["by_service"] if s["count"]} == dict(
        by_service
    )
    # The open-requests gauge of /metrics counts the same (the demo is all in the window).
    samples = await scrape(client)
    for ward in opened["by_ward"]:
        gauge = value(
            samples, "open311_open_service_requests", jurisdiction="toronto.ca", ward=ward["code"]
        )
        assert gauge == ward["count"], ward

    # One service, every status, an explicit window.
    code, _ = by_service.most_common(1)[0]
    one = await _get(client, "/web/summary.json", service_code=code, status="open,closed", **window)
    every = await _get(client, f"{BASE}/requests.json", service_code=code, **window)
    assert one["total"] == len(every)
    assert [s["service_code"] for s in one["by_service"] if s["count"]] == [code]
    assert one["window"]["start_date"] == window["start_date"]
    assert one["window"]["end_date"] == summary["window"]["end_date"]

    bad = await client.get("/web/summary.json", params={"status": "pending"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/json; charset=utf-8"
    assert "status must be open or closed" in bad.json()[0]["description"]


async def test_summary_with_several_jurisdictions(client: httpx.AsyncClient) -> None:
    await load_demo(engine_of(client), with_requests=False)
    await seed_catalog(engine_of(client), code="another.example.org")
    first = await _get(client, "/web/summary.json")
    listed = [j["jurisdiction_id"] for j in first["jurisdictions"]]
    assert listed == ["another.example.org", "toronto.ca"]
    assert first["jurisdiction"]["jurisdiction_id"] == "another.example.org"
    assert first["by_ward"] == []
    assert first["total"] == 0
    toronto = await _get(client, "/web/summary.json", jurisdiction_id="toronto.ca")
    assert len(toronto["by_ward"]) == 25
    assert {w["count"] for w in toronto["by_ward"]} == {0}
    unknown = await client.get("/web/summary.json", params={"jurisdiction_id": "nowhere"})
    assert unknown.status_code == 404
