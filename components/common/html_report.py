"""Self-contained HTML reports for the KFP UI's HTML artifacts (and for browsers, offline).

Pages carry their own CSS and inline SVG charts: no script, font or image is fetched, so they
render the same in the Kubeflow UI's sandboxed iframe, in a notebook and from a file.

    html = page("Fairness", [
        section("Gates", table(["gate", "value", "bound", "status"], rows)),
        section("FNR by slice", bar_chart({"afam=no": 0.38, "afam=yes": 0.17}, bound=0.25)),
    ])
"""

from __future__ import annotations

import html as _html
import math
from collections.abc import Iterable, Mapping, Sequence

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328;
max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}.subtitle{color:#59636e;margin:0 0 16px}
table{border-collapse:collapse;font-size:13px;margin:4px 0 12px}th,td{border:1px solid #d0d7de;
padding:4px 8px;text-align:left}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:600;font-size:12px}
.ok{background:#dafbe1;color:#116329}.warn{background:#fff8c5;color:#7d4e00}.bad{background:#ffebe9;color:#a40e26}
.grid{display:flex;flex-wrap:wrap;gap:16px}.grid>div{flex:1 1 320px}
svg text{font-size:11px;fill:#1f2328}
.callout{border-left:4px solid #d0d7de;padding:8px 12px;margin:8px 0 12px;background:#f6f8fa}
.callout.ok{border-color:#2da44e;background:#dafbe1;color:#1f2328}
.callout.warn{border-color:#bf8700;background:#fff8c5;color:#1f2328}
.callout.bad{border-color:#cf222e;background:#ffebe9;color:#1f2328}
.legend{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
th.group{text-align:center}td .badge{white-space:nowrap}
"""

# Series colours (train/candidate first, eval/champion second); colour-blind safe blue/orange first.
PALETTE = ("#0969da", "#e16f24", "#8250df", "#1a7f37", "#bf3989", "#57606a")

STATUS_CLASSES = {"ok": "ok", "pass": "ok", "passed": "ok", "blessed": "ok", "promoted": "ok",
                  "warn": "warn", "warning": "warn",
                  "act": "bad", "fail": "bad", "failed": "bad", "breach": "bad", "rolled_back": "bad",
                  "not_blessed": "bad", "anomaly": "bad"}


def escape(value: object) -> str:
    return _html.escape(str(value), quote=True)


def fmt(value: object, digits: int = 4) -> str:
    """Numbers rounded for reading; None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.{digits}f}"
    return str(value)


def badge(status: str, text: str | None = None) -> str:
    css = STATUS_CLASSES.get(status.lower(), "warn")
    return f'<span class="badge {css}">{escape(text or status)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], raw_html_columns: Iterable[int] = ()) -> str:
    """A table; cells are escaped and numbers right-aligned, except columns named in raw_html_columns."""
    raw = set(raw_html_columns)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i in raw:
                cells.append(f"<td>{cell}</td>")
            elif isinstance(cell, (int, float)) and not isinstance(cell, bool):
                cells.append(f'<td class="num">{escape(fmt(cell))}</td>')
            else:
                cells.append(f"<td>{escape(fmt(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def bar_chart(values: Mapping[str, float | None], bound: float | None = None, bound_label: str = "bound",
              width: int = 520, bar_height: int = 18, higher_is_worse: bool = True) -> str:
    """Horizontal bars with an optional vertical bound line; bars past the bound are red."""
    items = [(k, v) for k, v in values.items() if v is not None]
    if not items:
        return "<p>no values</p>"
    label_width, pad = 150, 6
    top = max([v for _, v in items] + ([bound] if bound is not None else []) + [1e-12])
    scale = (width - label_width - 60) / top
    height = len(items) * (bar_height + pad) + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(items):
        y = i * (bar_height + pad) + 4
        breach = bound is not None and (value > bound if higher_is_worse else value < bound)
        colour = "#cf222e" if breach else "#2da44e"
        parts.append(f'<text x="0" y="{y + bar_height - 5}">{escape(label)[:24]}</text>')
        parts.append(f'<rect x="{label_width}" y="{y}" width="{max(value * scale, 1):.1f}" '
                     f'height="{bar_height}" fill="{colour}"/>')
        parts.append(f'<text x="{label_width + value * scale + 4:.1f}" y="{y + bar_height - 5}">'
                     f'{escape(fmt(value))}</text>')
    if bound is not None:
        x = label_width + bound * scale
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 16}" stroke="#1f2328" '
                     'stroke-dasharray="4 3"/>')
        # label left of the line when the line is in the right half, so it is never cut off
        anchor = f'x="{x - 3:.1f}" text-anchor="end"' if x > width / 2 else f'x="{x + 3:.1f}"'
        parts.append(f'<text {anchor} y="{height - 4}">{escape(bound_label)} {escape(fmt(bound))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def grouped_table(groups: Sequence[tuple[str, Sequence[str]]], rows: Iterable[Sequence[object]],
                  raw_html_columns: Iterable[int] = ()) -> str:
    """A table with two header rows: ("mean", ["train", "eval"]) spans two columns; a group
    with no sub-headers is one column spanning both rows. Cells as in `table`."""
    top, sub = [], []
    for title, children in groups:
        if children:
            top.append(f'<th class="group" colspan="{len(children)}">{escape(title)}</th>')
            sub.extend(f"<th>{escape(c)}</th>" for c in children)
        else:
            top.append(f'<th rowspan="2">{escape(title)}</th>')
    head = f"<tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr>"
    body = table([], rows, raw_html_columns)
    body = body[body.index("<tbody>"):body.index("</table>")]
    return f"<table><thead>{head}</thead>{body}</table>"


def histogram_pair(series: Mapping[str, Sequence[tuple[float, float, float]]], width: int = 180,
                   panel_height: int = 24) -> str:
    """Small stacked histograms, one panel per series on a shared x range.

    Each series is [(low, high, count)] (TFDV's histogram buckets); bar heights are each series'
    fraction per unit of x, scaled together, so panels compare shapes, not row counts.
    """
    clean = {}
    for name, buckets in series.items():
        rows = [(float(lo), float(hi), float(n)) for lo, hi, n in buckets
                if math.isfinite(lo) and math.isfinite(hi) and hi >= lo and n >= 0]
        if rows and sum(n for _, _, n in rows) > 0:
            clean[name] = rows
    if not clean:
        return ""
    lo = min(b[0] for rows in clean.values() for b in rows)
    hi = max(b[1] for rows in clean.values() for b in rows)
    span = (hi - lo) or 1.0
    label_width = 34
    plot = width - label_width

    def density(rows):
        total = sum(n for _, _, n in rows)
        # a point mass (low == high) gets the width of one pixel of the shared range
        return [(a, b, n / total / max(b - a, span / plot)) for a, b, n in rows]

    dens = {name: density(rows) for name, rows in clean.items()}
    top = max(d for rows in dens.values() for _, _, d in rows) or 1.0
    height = len(dens) * (panel_height + 4) + 12
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (name, rows) in enumerate(dens.items()):
        y0 = i * (panel_height + 4)
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="0" y="{y0 + panel_height - 6}">{escape(name)[:6]}</text>')
        parts.append(f'<line x1="{label_width}" x2="{width}" y1="{y0 + panel_height}" '
                     f'y2="{y0 + panel_height}" stroke="#d0d7de"/>')
        for a, b, d in rows:
            x = label_width + (a - lo) / span * plot
            w = max((b - a) / span * plot, 1.0)
            h = d / top * panel_height
            parts.append(f'<rect x="{x:.1f}" y="{y0 + panel_height - h:.1f}" width="{w:.1f}" '
                         f'height="{h:.1f}" fill="{colour}" fill-opacity="0.75"/>')
    parts.append(f'<text x="{label_width}" y="{height - 1}">{lo:.4g}</text>')
    parts.append(f'<text x="{width}" y="{height - 1}" text-anchor="end">{hi:.4g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def roc_chart(curves: Mapping[str, Sequence[tuple[float, float]]], size: int = 300) -> str:
    """ROC curves [(fpr, tpr)] on the unit square, one colour per curve, chance diagonal dashed."""
    return unit_chart(curves, "false positive rate", "true positive rate", size)


def unit_chart(curves: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str,
               size: int = 300) -> str:
    """Curves [(x, y)] on the unit square, one colour per curve, the diagonal dashed (chance for
    ROC curves, perfect calibration for reliability diagrams)."""
    pad, legend = 32, 16 * len(curves)
    side = size - pad - 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + legend}" role="img">',
             f'<rect x="{pad}" y="8" width="{side}" height="{side}" fill="none" stroke="#d0d7de"/>',
             f'<line x1="{pad}" y1="{8 + side}" x2="{pad + side}" y2="8" stroke="#8c959f" '
             'stroke-dasharray="4 3"/>',
             f'<text x="{pad + side / 2:.0f}" y="{side + 30}" text-anchor="middle">{escape(x_label)}</text>',
             f'<text x="10" y="{8 + side / 2:.0f}" transform="rotate(-90 10 {8 + side / 2:.0f})" '
             f'text-anchor="middle">{escape(y_label)}</text>']
    for i, (name, points) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        ordered = sorted((float(x), float(y)) for x, y in points)
        path = " ".join(f"{pad + x * side:.1f},{8 + (1 - y) * side:.1f}" for x, y in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        y = size + 12 + 16 * i
        parts.append(f'<rect x="{pad}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{pad + 16}" y="{y}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def callout(status: str, *body: str) -> str:
    """A coloured box (status as for `badge`) around already-built HTML."""
    css = STATUS_CLASSES.get(status.lower(), "warn")
    return f'<div class="callout {css}">{"".join(body)}</div>'


def section(title: str, *body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(body)}</section>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def page(title: str, sections: Iterable[str], subtitle: str = "") -> str:
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{sub}{''.join(sections)}</body></html>")
