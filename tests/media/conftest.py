"""Fixtures of the media tests: settings, both object stores, and a real S3 server.

The S3 store runs against moto's S3 server, started once per session in a subprocess on a
free loopback port and stopped at the end: the store speaks real HTTP to it, through boto3.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from pydantic import SecretStr

from app.media.objects import LocalObjectStore, ObjectStore, S3ObjectStore
from app.media.settings import MediaSettings, S3Settings

KEY_ID = "media-tests"
SECRET = "media-tests-secret"  # noqa: S105 - the test server accepts any
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_moto(port: int, log: Path) -> subprocess.Popen[bytes] | None:
    with log.open("ab") as out:
        server = subprocess.Popen(  # noqa: S603 - moto from the venv, fixed arguments, no shell
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return None  # e.g. the port was taken in the meantime
        try:
            if httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    server.wait()
    return None


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of moto's S3 server on 127.0.0.1, running for the whole session."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    for _ in range(3):
        port = _free_port()
        server = _start_moto(port, log)
        if server is not None:
            break
    else:
        pytest.fail(f"moto's S3 server did not start:\n{log.read_text()[-2000:]}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def s3_client(endpoint: str) -> Any:
    """A plain boto3 client of the test server, to set up and inspect buckets directly."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


@pytest.fixture
def s3_settings(s3_endpoint: str) -> Iterator[S3Settings]:
    """Settings of a new, empty bucket on the test server."""
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    try:
        yield S3Settings(
            endpoint_url=s3_endpoint,
            bucket=bucket,
            region=REGION,
            access_key_id=KEY_ID,
            secret_access_key=SecretStr(SECRET),
        )
    finally:
        client.close()


@pytest.fixture
def media_settings(tmp_path: Path) -> MediaSettings:
    """Default media settings with the local store in a fresh directory."""
    return MediaSettings(local_dir=tmp_path / "media")


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    """Each object store in turn: a local directory, then a bucket on the S3 server."""
    made: ObjectStore
    if request.param == "local":
        made = LocalObjectStore(tmp_path / "objects")
    else:
        made = S3ObjectStore(request.getfixturevalue("s3_settings"))
    await made.check()
    try:
        yield made
    finally:
        await made.close()
