"""What ships with the command: the unmodified community schemas and an accurate README."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from app.conformance import CHECKS
from app.conformance.schema import SCHEMA_KINDS, schema_for, schema_problems

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "app" / "conformance" / "schemas"
TESTS = ROOT / "tests" / "schemas"


def test_shipped_schemas_are_the_test_copies_and_match_the_readme_sums() -> None:
    shipped = sorted(p.name for p in (SHIPPED / "georeport-v2").iterdir())
    assert shipped == sorted(p.name for p in (TESTS / "georeport-v2").iterdir())
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    sums = {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)}
    assert sorted(sums) == shipped
    for name in shipped:
        data = (SHIPPED / "georeport-v2" / name).read_bytes()
        assert data == (TESTS / "georeport-v2" / name).read_bytes(), name
        assert hashlib.sha256(data).hexdigest() == sums[name], name
    assert "CC BY 3.0" in readme


@pytest.mark.parametrize("kind", SCHEMA_KINDS)
def test_every_schema_kind_loads_and_rejects_a_wrong_top_level(kind: str) -> None:
    assert schema_for(kind)["type"] in ("array", "object")
    wrong = {} if schema_for(kind)["type"] == "array" else []
    assert schema_problems(kind, wrong) == [
        "$: " + f"{wrong!r} is not of type '{schema_for(kind)['type']}'"
    ]


def test_post_and_token_schemas_allow_nulls_but_not_numbers() -> None:
    assert schema_problems("post", [{"service_request_id": "1", "account_id": None}]) == []
    assert schema_problems("token", [{"service_request_id": None, "token": "t"}]) == []
    assert schema_problems("post", [{"service_request_id": 1}]) == [
        "$[0].service_request_id: 1 is not valid under any of the given schemas"
    ]


def test_the_readme_lists_every_check_in_order() -> None:
    readme = (ROOT / "app" / "conformance" / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", readme, re.M)
    assert listed == [c.name for c in CHECKS]
