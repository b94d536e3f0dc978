"""Finding 8: X-Forwarded-For is believed only from proxies the operator names.

Driven through a real ``open311 serve`` process (uvicorn), because that is where the trust
used to come from: uvicorn believed the header from any caller on loopback, so a caller on the
server's own host (or behind a loopback proxy) chose its anonymous identity per call.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.ops.server import cli_env, serve
from tests.security.limits_support import BASE, assert_too_many

LIMIT = 3


def _env(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, **extra: str
) -> dict[str, str]:
    if backend == "postgis":
        database = {"OPEN311_DB__URL": request.getfixturevalue("postgis_database")}
    else:
        database = {"OPEN311_DB__SQLITE_PATH": str(request.getfixturevalue("sqlite_path"))}
    return cli_env(
        tmp_path,
        OPEN311_WORKER__IN_PROCESS="false",
        OPEN311_RATE_LIMITS__ANONYMOUS_PER_MINUTE=str(LIMIT),
        **database,
        **extra,
    )


def test_forwarded_for_is_ignored_by_default(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    env = _env(tmp_path, backend, request)
    with serve(tmp_path, env) as server, httpx.Client(base_url=server.url, timeout=10.0) as http:
        answers = [
            http.get(f"{BASE}/discovery.json", headers={"X-Forwarded-For": f"198.51.100.{n}"})
            for n in range(1, LIMIT + 3)
        ]
    # One caller, however many addresses it claims: the limit holds.
    assert [a.status_code for a in answers[:LIMIT]] == [200] * LIMIT
    for answer in answers[LIMIT:]:
        assert_too_many(answer)


def test_named_proxies_are_believed_rightmost_first(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    env = _env(
        tmp_path,
        backend,
        request,
        OPEN311_HTTP__TRUSTED_PROXIES=json.dumps(["127.0.0.1", "10.0.0.0/8"]),
    )
    with serve(tmp_path, env) as server, httpx.Client(base_url=server.url, timeout=10.0) as http:

        def get(forwarded: str) -> httpx.Response:
            return http.get(f"{BASE}/discovery.json", headers={"X-Forwarded-For": forwarded})

        # Clients behind the proxy are told apart: each has its own bucket.
        for n in range(1, LIMIT + 3):
            assert get(f"198.51.100.{n}").status_code == 200
        # The client is the rightmost address no trusted proxy holds: what it wrote itself
        # further left (spoofed addresses) does not change who it is.
        spoofed = [get(f"203.0.113.{n}, 192.0.2.7, 10.1.2.3") for n in range(LIMIT + 2)]
    assert [a.status_code for a in spoofed[:LIMIT]] == [200] * LIMIT
    for answer in spoofed[LIMIT:]:
        assert_too_many(answer)
