"""The one rule for repeated parameters (``app.georeport.params``)."""

from __future__ import annotations

import pytest

from app.errors import InvalidParameter
from app.georeport.params import Parameters, single


def test_single_valued_parameters() -> None:
    query = Parameters(
        [
            ("a", "1"),
            ("b", ""),
            ("b", " "),
            ("c", ""),
            ("c", "x"),
            ("c", "x"),
            ("d", "1"),
            ("d", "2"),
            ("e", "x"),
            ("e", " x"),
        ]
    )
    assert query.one("a") == "1"
    assert query.one("b") is None  # empty means absent
    assert query.one("missing") is None
    assert query.one("c") == "x"  # the same value repeated counts once
    for name in ("d", "e"):  # different values (compared as sent)
        with pytest.raises(InvalidParameter) as refused:
            query.one(name)
        assert refused.value.descriptions == [
            f"{name} was given more than once with different values."
        ]
    problems: list[str] = []
    assert query.one("d", problems) == "1"  # collected, so a caller can report them all
    assert problems == ["d was given more than once with different values."]
    assert query.every("c") == ["", "x", "x"]
    assert query.every("missing") == []
    assert single(query.pairs, "c") == "x"
    with pytest.raises(InvalidParameter):
        single(query.pairs, "d")
