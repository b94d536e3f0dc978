"""The printable pages of the service-promise reports: one self-contained HTML document each
(inline CSS and SVG charts; nothing loaded from anywhere), served by the app
(``/web/reports/{report}.html``) and printed to PDF by the CLI (``open311 report ... --pdf``).

Built from the report's JSON form (``app.domain.reports``): what the page shows is what the
API answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

# Inline styles only; no script, no outside resource.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
BLUE = "#1c6dd0"
GREEN = "#2e8540"
RED = "#c62828"
# Colours of the channels in the stacked monthly chart (in order of volume).
PALETTE = ("#1c6dd0", "#f29b30", "#2e8540", "#8e44ad", "#c62828", "#16a2b8", "#6d4c41", "#7f8c8d")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STYLE = """
@page { size: A4; margin: 14mm; }
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b;
  margin: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 8px; }
.note { color: #555; font-size: 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.tile { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.tile b { display: block; font-size: 20px; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { border-bottom: 1px solid #e1e4e8; padding: 3px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
section { break-inside: avoid; }
svg text { font: 11px system-ui, sans-serif; fill: #1b1b1b; }
"""


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def _percent(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def bar_chart(
    items: Sequence[tuple[str, float | None, str]], *, color: str, css_class: str, top: float
) -> str:
    """A horizontal bar chart (SVG): (label, value, text shown after the bar) per bar."""
    row, label_w, bar_w = 20, 230, 380
    height = row * len(items) + 6
    parts = [
        f'<svg class="chart {css_class}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{label_w + bar_w + 90}" height="{height}" role="img">'
    ]
    for index, (label, value, shown) in enumerate(items):
        y = index * row + 3
        width = 0.0 if not value or top <= 0 else bar_w * min(value, top) / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label[:40])}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{width:.1f}" height="{row - 6}" '
            f'fill="{color}"/>'
            f'<text x="{label_w + width + 4:.1f}" y="{y + 13}">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def month_chart(series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """Stacked monthly columns (SVG), one colour per series, with a legend."""
    width, height, left, bottom = 640, 220, 40, 24
    totals = [sum(values[m] for _, values in series) for m in range(12)]
    top = max(totals, default=0) or 1
    column = (width - left) / 12
    parts = [
        f'<svg class="chart months" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height + 20 * ((len(series) + 3) // 4)}" role="img">',
        f'<text x="0" y="12">{top:,}</text><text x="0" y="{height - bottom}">0</text>',
    ]
    for month in range(12):
        x = left + month * column + 4
        y = float(height - bottom)
        for index, (_, values) in enumerate(series):
            h = (height - bottom - 16) * values[month] / top
            y -= h
            color = PALETTE[index % len(PALETTE)]
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{column - 8:.1f}" '
                f'height="{h:.1f}" fill="{color}"/>'
            )
        parts.append(
            f'<text x="{x + (column - 8) / 2:.1f}" y="{height - 8}" '
            f'text-anchor="middle">{MONTHS[month]}</text>'
        )
    for index, (name, _) in enumerate(series):
        x, y = left + (index % 4) * 150, height + 6 + 20 * (index // 4)
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="{y}" width="12" height="12" fill="{color}"/>'
            f'<text x="{x + 16}" y="{y + 10}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _tiles(total: Mapping[str, Any]) -> str:
    tiles = (
        ("Received", _number(total["received"])),
        ("Closed", _number(total["closed"])),
        ("Compliance rate", _percent(total["compliance_rate"])),
        ("Median hours to close", _number(total["median_hours_to_close"])),
        ("90th percentile hours", _number(total["p90_hours_to_close"])),
        ("Open / overdue now", f"{total['open']:,} / {total['overdue']:,}"),
        ("First-contact resolution", _percent(total["first_contact_rate"])),
    )
    cells = "".join(f'<div class="tile">{escape(n)}<b>{escape(v)}</b></div>' for n, v in tiles)
    return f'<div class="tiles">{cells}</div>'


def _figures_table(rows: Sequence[Mapping[str, Any]], first: str) -> str:
    head = (
        f"<tr><th>{escape(first)}</th><th>Received</th><th>Closed</th><th>Within target</th>"
        "<th>Compliance</th><th>Median h</th><th>P90 h</th><th>Open</th><th>Overdue</th>"
        "<th>First contact</th></tr>"
    )
    lines = [
        f"<tr><td>{escape(str(r['label']))}</td><td>{_number(r['received'])}</td>"
        f"<td>{_number(r['closed'])}</td><td>{_number(r['closed_within_target'])}</td>"
        f"<td>{_percent(r['compliance_rate'])}</td><td>{_number(r['median_hours_to_close'])}</td>"
        f"<td>{_number(r['p90_hours_to_close'])}</td><td>{_number(r['open'])}</td>"
        f"<td>{_number(r['overdue'])}</td><td>{_percent(r['first_contact_rate'])}</td></tr>"
        for r in rows
    ]
    return f"<table>{head}{''.join(lines)}</table>"


def _compliance_chart(rows: Sequence[Mapping[str, Any]]) -> str:
    items = [
        (str(r["label"]), r["compliance_rate"], _percent(r["compliance_rate"]))
        for r in rows
        if r["compliance_rate"] is not None
    ]
    if not items:
        return '<p class="note">No request with a target has fallen due in this period.</p>'
    return bar_chart(items, color=GREEN, css_class="compliance", top=1.0)


def service_promise_page(report: Mapping[str, Any]) -> str:
    """The printable page of a service-promise report."""
    rows = report["groups"]
    what = {"division": "Division", "service": "Service", "ward": "Ward", "channel": "Channel"}
    first = what.get(report["group_by"], "Month")
    received = [(str(r["label"]), float(r["received"]), f"{r['received']:,}") for r in rows[:30]]
    most = max([r[1] for r in received], default=0)
    body = (
        f"<h1>Service promise: {escape(report['jurisdiction_id'])}</h1>"
        f'<p class="note">Requests received {escape(report["start"])} to '
        f"{escape(report['end'])}, by {escape(report['group_by'])}; generated "
        f"{escape(report['generated_at'])}. Compliance: closed within target ÷ (within + late "
        "+ overdue now).</p>"
        f"{_tiles(report['total'])}"
        f"<section><h2>Compliance rate by {escape(report['group_by'])}</h2>"
        f"{_compliance_chart(rows[:30])}</section>"
        f"<section><h2>Requests received</h2>"
        f"{bar_chart(received, color=BLUE, css_class='received', top=most)}"
        f"</section>"
        f"<section><h2>Figures</h2>{_figures_table([*rows, report['total']], first)}</section>"
    )
    return _page(f"Service promise {report['jurisdiction_id']}", body)


def key_metrics_page(report: Mapping[str, Any]) -> str:
    """The printable page of a key-metrics report."""
    series = [(str(c["channel"]), list(c["months"])) for c in report["channels"]]
    top = [
        (str(s["service_name"]), float(s["received"]), f"{s['received']:,}")
        for s in report["top_services"]
    ]
    trending = "".join(
        f"<tr><td>{escape(str(t['service_name']))}</td><td>{_number(t['previous_year'])}</td>"
        f"<td>{_number(t['received'])}</td><td>+{_number(t['change'])}</td>"
        f"<td>{_percent(t['change_rate'])}</td></tr>"
        for t in report["trending"]
    )
    body = (
        f"<h1>Key metrics {report['year']}: {escape(report['jurisdiction_id'])}</h1>"
        f'<p class="note">Generated {escape(report["generated_at"])}.</p>'
        f"{_tiles(report['total'])}"
        f"<section><h2>Requests by month and channel</h2>{month_chart(series)}</section>"
        f"<section><h2>Top service types</h2>"
        f"{bar_chart(top, color=BLUE, css_class='top', top=max([t[1] for t in top], default=0))}"
        "</section>"
        f"<section><h2>Trending issues (largest rises against {report['year'] - 1})</h2>"
        "<table><tr><th>Service</th><th>Previous year</th><th>This year</th><th>Change</th>"
        f"<th>Rise</th></tr>{trending}</table></section>"
        f"<section><h2>Compliance by division</h2>{_compliance_chart(report['divisions'])}"
        f"{_figures_table([*report['divisions'], report['total']], 'Division')}</section>"
    )
    return _page(f"Key metrics {report['year']} {report['jurisdiction_id']}", body)
