"""The monitor's outputs: JSON, Markdown, a self-contained HTML page and flat KFP metrics."""

from __future__ import annotations

import math
import os

from components.common import html_report as hr
from components.common import io as fio
from components.common import names
from components.monitor.feedback import GAP_METRICS, METRIC_TITLES, FeedbackResult, feedback_metrics, slice_headers, \
    slice_table
from components.monitor.config import ACT, OK, STATISTICS, WARN
from components.monitor.monitor import MonitorResult

DECISION_CODES = {OK: 0.0, WARN: 1.0, ACT: 2.0}
STATISTIC_TITLES = {"psi": "PSI (numeric)", "ks": "KS statistic (numeric)", "js": "Jensen–Shannon distance "
                    "(categorical)", "linf": "L-infinity distance (categorical)"}


def _f(value, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def decision_text(result: MonitorResult) -> str:
    """One line: the decision and, per flagged feature, its worst figure against its bound."""
    if result.decision == OK:
        return f"ok: no feature or prediction past its warn threshold ({len(result.rows)} figures)"
    parts = []
    for level in (ACT, WARN):
        flagged = result.by_severity.get(level, [])
        if not flagged:
            continue
        figures = []
        for feature in flagged:
            row = max((r for r in result.rows if r.feature == feature and r.severity == level),
                      key=lambda r: r.value / r.bounds[1])
            bound = row.bounds[1] if level == ACT else row.bounds[0]
            figures.append(f"{feature} ({row.statistic} {row.value:.3f} > {bound:g})")
        parts.append(f"{level}: " + ", ".join(figures))
    return "; ".join(parts)


def metrics(result: MonitorResult, feedback: FeedbackResult | None = None) -> dict[str, float]:
    out = {"decision_code": DECISION_CODES[result.decision], "predictions": float(result.counts.used),
           "malformed_lines": float(result.counts.malformed), "invalid_records": float(result.counts.invalid),
           "features_act": float(len(result.by_severity.get(ACT, []))),
           "features_warn": float(len(result.by_severity.get(WARN, [])))}
    for row in result.rows:
        out[f"{row.feature}_{row.statistic}"] = float(row.value)
    if feedback is not None:
        out.update(feedback_metrics(feedback))
    return {k: v for k, v in out.items() if math.isfinite(v)}


def _row_cells(result: MonitorResult) -> list[list]:
    return [[r.feature, r.kind, r.statistic, r.value, f"{r.warn:g} / {r.act:g}", r.severity, r.noise, r.rows,
             _pct(r.missing_fraction), _pct(r.baseline_missing_fraction)] for r in result.rows]


ROW_HEADERS = ("feature", "kind", "statistic", "value", "warn / act", "severity", "noise level", "rows",
               "missing (log)", "missing (train)")


def _log_facts(result: MonitorResult) -> list[tuple[str, object]]:
    c = result.counts
    window = " → ".join(v or "…" for v in (result.window.get("since"), result.window.get("until")))
    others = ", ".join(f"{v}: {n}" for v, n in sorted(c.other_versions.items())) or "none"
    base = result.baseline
    return [("log", result.log_uri), ("lines read", c.lines), ("predictions used", c.used),
            ("malformed lines (not JSON)", c.malformed), ("invalid records", c.invalid),
            ("synthetic records (warm-up, load tests; skipped)", c.synthetic),
            ("window", window if window != "… → …" else "all"), ("outside the window", c.outside_window),
            ("other versions (skipped)", others),
            ("feature baseline", f"{base['statistics']} ({base['training_rows']} training rows)"),
            ("prediction baseline", f"{base['prediction']} ({base['prediction_rows']} predictions)")]


SCOPE = ("Training/serving skew and drift: the features the model actually served (its prediction log) "
         "against the statistics of the data it was trained on, and its predictions against its own "
         "first logged ones.")


def report_markdown(result: MonitorResult, feedback: FeedbackResult | None = None) -> str:
    lines = [f"# Drift monitor: `{result.model_name}` version `{result.model_version}`", "",
             f"**Decision: {result.decision.upper()}** — {decision_text(result)}", "",
             SCOPE, ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in _log_facts(result)] + [""]
    lines += ["| " + " | ".join(ROW_HEADERS) + " |", "|" + "---|" * len(ROW_HEADERS)]
    for cells in _row_cells(result):
        cells[5] = f"**{cells[5]}**" if cells[5] != OK else cells[5]
        lines.append("| " + " | ".join(_f(c) for c in cells) + " |")
    if result.notes or result.counts.examples:
        lines += ["", "Notes:"] + [f"- {n}" for n in result.notes]
        lines += [f"- skipped: {e}" for e in result.counts.examples]
    if feedback is not None:
        lines += ["", *feedback_markdown(feedback)]
    return "\n".join(lines) + "\n"


def feedback_markdown(feedback: FeedbackResult) -> list[str]:
    lines = ["## Label feedback", "",
             f"{feedback.labelled} of {feedback.predictions} predictions labelled (coverage "
             f"{_pct(feedback.coverage)}); {feedback.labels_read} labels read, {feedback.unmatched_labels} "
             f"unmatched, {feedback.duplicate_labels} duplicate, {feedback.invalid_labels} invalid, "
             f"{feedback.late_labels} late.{_threshold_text(feedback)}", ""]
    rows, headers = slice_table(feedback), slice_headers(feedback)
    if rows:
        lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    shown = ("fnr", "fpr", "accuracy") if feedback.label_kind == "binary" else GAP_METRICS[feedback.label_kind]
    for column, gap in feedback.gaps.items():
        lines.append(f"\nGap between {column} values: "
                     + ", ".join(f"{METRIC_TITLES[m]} {_f(gap.get(m))}" for m in shown))
    lines += [f"- {n}" for n in feedback.notes]
    return lines


def _threshold_text(feedback: FeedbackResult) -> str:
    """The decision threshold, which only a binary model's figures depend on."""
    if feedback.label_kind != "binary":
        return ""
    return f" Decision threshold {feedback.threshold:g} (positive: p > threshold)."


def threshold_bars(values: dict[str, float], warn: float, act: float, width: int = 560, bar_height: int = 16) -> str:
    """Horizontal bars coloured by severity, with dashed lines at the warn and act bounds (html_report's
    bar_chart draws one bound)."""
    if not values:
        return "<p>no values</p>"
    label_width, pad = 150, 5
    top = max(max(values.values()), act * 1.15, 1e-12)
    scale = (width - label_width - 60) / top
    height = len(values) * (bar_height + pad) + 22
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(values.items()):
        y = i * (bar_height + pad) + 4
        colour = "#cf222e" if value > act else "#bf8700" if value > warn else "#2da44e"
        parts.append(f'<text x="0" y="{y + bar_height - 4}">{hr.escape(label)[:24]}</text>')
        parts.append(f'<rect x="{label_width}" y="{y}" width="{max(value * scale, 1):.1f}" height="{bar_height}" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{label_width + value * scale + 4:.1f}" y="{y + bar_height - 4}">{hr.fmt(value)}</text>')
    for bound, name in ((warn, "warn"), (act, "act")):
        x = label_width + bound * scale
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 16}" stroke="#1f2328" '
                     f'stroke-dasharray="{"2 3" if name == "warn" else "5 3"}"/>')
        # warn's label left of its line, act's right of its: close bounds never overprint
        anchor, dx = ("end", -3) if name == "warn" else ("start", 3)
        parts.append(f'<text x="{x + dx:.1f}" y="{height - 4}" text-anchor="{anchor}">{name} {hr.fmt(bound)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def report_html(result: MonitorResult, feedback: FeedbackResult | None = None) -> str:
    status = {OK: "ok", WARN: "warn", ACT: "act"}[result.decision]
    cells = _row_cells(result)
    for row in cells:
        row[5] = hr.badge(row[5])
    sections = [
        hr.callout(status, f"<strong>Decision: {hr.escape(result.decision.upper())}</strong> — "
                           f"{hr.escape(decision_text(result))}"),
        hr.section("Log and baseline", hr.table(["", ""], _log_facts(result))),
        hr.section("Drift by feature", hr.table(ROW_HEADERS, cells, raw_html_columns=[5])),
    ]
    charts = []
    for statistic in STATISTICS:
        rows = [r for r in result.rows if r.statistic == statistic]
        if rows:
            charts.append(f"<div><h3>{hr.escape(STATISTIC_TITLES[statistic])}</h3>"
                          f"{threshold_bars({r.feature: r.value for r in rows}, rows[0].warn, rows[0].act)}</div>")
    sections.append(hr.section("Figures against the warn / act bounds", f'<div class="grid">{"".join(charts)}</div>'))
    notes = result.notes + [f"skipped: {e}" for e in result.counts.examples]
    if notes:
        sections.append(hr.section("Notes", "<ul>" + "".join(f"<li>{hr.escape(n)}</li>" for n in notes) + "</ul>"))
    if feedback is not None:
        sections.append(feedback_html(feedback))
    return hr.page(f"Drift monitor: {result.model_name} {result.model_version}", sections,
                   subtitle=f"{SCOPE} {result.counts.used} predictions from {result.log_uri}; {result.created_at}")


def feedback_html(feedback: FeedbackResult) -> str:
    facts = [("predictions", feedback.predictions), ("labelled", feedback.labelled),
             ("coverage", _pct(feedback.coverage)), ("labels read", feedback.labels_read),
             ("unmatched label ids", feedback.unmatched_labels), ("duplicate labels", feedback.duplicate_labels),
             ("invalid labels", feedback.invalid_labels), ("late labels", feedback.late_labels)]
    if feedback.label_kind == "binary":
        facts.append(("decision threshold", f"{feedback.threshold:g} (positive: p > threshold)"))
    body = [hr.table(["", ""], facts), hr.table(slice_headers(feedback), slice_table(feedback))]
    fnr = {f"{c}={v}": m.get("fnr") for c, per in feedback.slices.items() for v, m in per.items()
           if m.get("fnr") is not None}
    if fnr:
        body.append("<h3>FNR by slice value</h3>" + hr.bar_chart(fnr))
    if feedback.gaps:
        gap_names = GAP_METRICS[feedback.label_kind]
        body.append(hr.table(["slice column", *(f"{METRIC_TITLES[m]} gap" for m in gap_names)],
                             [[c, *(g.get(m) for m in gap_names)] for c, g in feedback.gaps.items()]))
    if feedback.notes:
        body.append("<ul>" + "".join(f"<li>{hr.escape(n)}</li>" for n in feedback.notes) + "</ul>")
    return hr.section("Label feedback", *body)


def write_outputs(result: MonitorResult, out_dir: str, feedback: FeedbackResult | None = None) -> dict[str, str]:
    """drift.json (+ feedback.json), report.md, report.html in out_dir; returns what was written."""
    fio.makedirs(out_dir)
    written = {"json": os.path.join(out_dir, names.DRIFT_RESULT_FILE),
               "markdown": os.path.join(out_dir, names.REPORT_MD_FILE),
               "html": os.path.join(out_dir, names.REPORT_HTML_FILE)}
    fio.write_json_atomic(written["json"], result.to_dict())
    fio.write_text_atomic(written["markdown"], report_markdown(result, feedback))
    fio.write_text_atomic(written["html"], report_html(result, feedback))
    if feedback is not None:
        written["feedback"] = os.path.join(out_dir, names.FEEDBACK_RESULT_FILE)
        fio.write_json_atomic(written["feedback"], feedback.to_dict())
    return written
