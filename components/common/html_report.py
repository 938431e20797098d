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
"""

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
        parts.append(f'<text x="{x + 3:.1f}" y="{height - 4}">{escape(bound_label)} {escape(fmt(bound))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def section(title: str, *body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(body)}</section>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def page(title: str, sections: Iterable[str], subtitle: str = "") -> str:
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{sub}{''.join(sections)}</body></html>")
