"""``--layers``: what each hand-made speed layer buys (issue 17, point 3).

One more server of ours per layer, started with that layer switched off through the private
``speed`` settings (the library path instead), same database and settings otherwise. Its
targets run in the same interleaved wrk rounds, each right after the target it varies, and
the headline ratios are computed with (``ours``) and without (that server) the layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.loadgen import Target


@dataclass(frozen=True, slots=True)
class Layer:
    """One speed layer and the targets whose code it is on."""

    name: str  # the ``speed`` setting
    label: str
    library: str  # what runs instead
    targets: tuple[str, ...]

    @property
    def env(self) -> dict[str, str]:
        """The environment turning it off."""
        return {f"OPEN311_SPEED__{self.name.upper()}": "false"}


ALL = ("get_json", "list_json", "list_xml", "post")
LAYERS = (
    Layer("lean_route", "LeanRoute", "FastAPI's APIRoute handler", ALL),
    Layer(
        "direct_pool",
        "compiled statements run by asyncpg (Direct, on the engine's pool)",
        "SQLAlchemy execution",
        ALL,
    ),
    Layer(
        "xml_writers",
        "generated XML item writers",
        "the plain writer `_write`",
        ("list_json", "list_xml"),
    ),
    Layer(
        "direct_access_log",
        "direct access-log writer",
        "logging + its formatter",
        ALL,
    ),
    Layer(
        "sql_timestamps",
        "datetimes rendered by the store (to_char)",
        "`format_w3c` in Python",
        ("get_json", "list_json", "list_xml"),
    ),
)


def variant(layer: Layer, name: str) -> str:
    """The name of ``name``'s target on the server without ``layer``."""
    return f"{name}~{layer.name}"


def interleave(targets: list[Target], bases: dict[str, str]) -> list[Target]:
    """``targets`` with, right after each one a layer varies, its copy on each server without
    a layer (``bases``: layer name -> base URL of that server)."""
    out: list[Target] = []
    for target in targets:
        out.append(target)
        for layer in LAYERS:
            if layer.name not in bases or target.name not in layer.targets:
                continue
            _, _, rest = target.url.partition("://")
            _, _, path = rest.partition("/")
            out.append(
                Target(
                    variant(layer, target.name),
                    f"{bases[layer.name]}/{path}",
                    list(target.args),
                    f"{target.label}, without {layer.label}",
                )
            )
    return out


HEADLINES = (
    ("GET requests/{id}.json ÷ hello", "get_json", "hello"),
    ("GET requests.json ÷ raw asyncpg+orjson", "list_json", "raw_list"),
    ("GET requests.xml ÷ requests.json", "list_xml", "list_json"),
    ("POST requests.json ÷ raw asyncpg INSERT", "post", "raw_insert"),
)


def compare(endpoints: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per layer and headline ratio: the ratio with the layer, without it, and the change.

    Without the layer, our targets are that server's where it measured them (the others run
    code the layer is not on: ours). ``rate_change``: the numerator's own rate with ÷ without
    the layer, minus 1. ``spread`` is the largest relative min–max range of the
    targets involved, a guide to the noise of the rounds."""

    def rps(name: str) -> float | None:
        return endpoints[name]["rps"] if name in endpoints else None

    def spread(name: str) -> float:
        e = endpoints.get(name)
        return (e["rps_max"] - e["rps_min"]) / e["rps"] if e and e["rps"] else 0.0

    rows = []
    for layer in LAYERS:
        if not any(variant(layer, t) in endpoints for t in layer.targets):
            continue
        for headline, numerator, denominator in HEADLINES:

            def without(name: str, layer: Layer = layer) -> str:
                return variant(layer, name) if variant(layer, name) in endpoints else name

            a, b = rps(numerator), rps(denominator)
            c, d = rps(without(numerator)), rps(without(denominator))
            with_ = a / b if a is not None and b else None
            without_ = c / d if c is not None and d else None
            if without(numerator) == numerator and without(denominator) == denominator:
                continue  # the layer is not on this ratio's code
            names = {numerator, denominator, without(numerator), without(denominator)}
            rows.append(
                {
                    "layer": layer.name,
                    "label": layer.label,
                    "library": layer.library,
                    "ratio": headline,
                    "with": with_,
                    "without": without_,
                    "change": with_ / without_ - 1 if with_ and without_ else None,
                    # the rate of our endpoint alone (a layer on both sides of a ratio of two
                    # of our endpoints can move it either way while making both faster)
                    "rate_change": a / c - 1 if a and c else None,
                    "spread": max(spread(n) for n in names),
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table "speed layers: ratio with / without, change"."""
    if not rows:
        return []
    lines = [
        "## Speed layers: ratio with / without, change",
        "",
        "Each layer switched off on a server of its own (private `OPEN311_SPEED__*` settings, the "
        "library path instead), its targets interleaved with ours in the same rounds. "
        "Change: ratio with ÷ ratio without − 1 (what the layer buys); endpoint: the same for "
        "the rate of the ratio's own endpoint alone (XML ÷ JSON moves either way when a layer "
        "speeds up both). Spread: the widest min–max range of the targets involved, relative "
        "to their median (noise guide).",
        "",
        "| layer (library path instead) | headline ratio | with | without | change | endpoint "
        "| spread |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        change = "–" if r["change"] is None else f"{100 * r['change']:+.1f}%"
        rate = "–" if r.get("rate_change") is None else f"{100 * r['rate_change']:+.1f}%"
        with_ = "–" if r["with"] is None else f"{r['with']:.3f}"
        without = "–" if r["without"] is None else f"{r['without']:.3f}"
        lines.append(
            f"| {r['label']} ({r['library']}) | {r['ratio']} | {with_} | {without} | "
            f"{change} | {rate} | {100 * r['spread']:.0f}% |"
        )
    return lines
