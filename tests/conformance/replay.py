"""A replay server: the captured real responses of other cities' GeoReport v2 servers.

It serves the byte-identical copies in ``tests/data/open311/`` (from ``../shared/data/open311``;
provenance in that directory's README) at the path they were captured from, through
``httpx.MockTransport``. Only what was captured is served: any other request is recorded in
``uncaptured`` and answered ``599``, so a golden run can prove that every verdict came from
captured bytes. The captures hold bodies only: the replay sends the spec's Content-Type, and
the goldens skip ``format.content_type`` (there is nothing captured to judge).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

DATA = Path(__file__).resolve().parents[1] / "data" / "open311"
CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
BASE_URL = "http://replay.invalid/open311/v2"


@dataclass(frozen=True)
class City:
    """One city's captured responses: the format and the file of each resource."""

    name: str
    fmt: str
    files: dict[str, str]

    @property
    def only(self) -> list[str]:
        """The checks whose every request was captured."""
        checks = ["format.xml"] if self.fmt == "xml" else []
        if "services" in self.files:
            checks += ["services.formats", "services.fields", "services.schema"]
        if "requests" in self.files:
            checks += ["requests.formats", "requests.fields", "requests.datetimes"]
            checks += ["requests.schema"]
        return checks


CITIES = {
    city.name: city
    for city in (
        City(
            "toronto",
            "json",
            {
                "services": "toronto_services_2018.json",
                "requests": "toronto_requests_2018-09-26_to_2018-10-28.json",
            },
        ),
        City(
            "bloomington",
            "json",
            {
                "services": "bloomington_in_services_2012.json",
                "requests": "bloomington_in_requests_2012.json",
            },
        ),
        City(
            "san_francisco",
            "xml",
            {
                "services": "san_francisco_services_2012.xml",
                "requests": "san_francisco_requests_2012.xml",
            },
        ),
        City("giessen", "xml", {"services": "giessen_de_services_2018.xml"}),
        City("chicago", "json", {"requests": "chicago_requests_sample_2014.json"}),
    )
}


@dataclass
class Replay:
    """The transport serving one city's captures."""

    city: City
    uncaptured: list[str] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        """The replay as an httpx transport."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """A captured body for a captured GET without parameters; else 599 (recorded)."""
        path = request.url.path.removeprefix("/open311/v2/")
        resource, _, fmt = path.rpartition(".")
        name = self.city.files.get(resource)
        if request.method == "GET" and not request.url.query and fmt == self.city.fmt and name:
            body = (DATA / name).read_bytes()
            return httpx.Response(200, content=body, headers={"Content-Type": CONTENT_TYPES[fmt]})
        self.uncaptured.append(f"{request.method} {request.url}")
        return httpx.Response(599, content=b"not captured")
