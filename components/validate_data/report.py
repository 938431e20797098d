"""The validation report: Markdown (the KFP UI's validation_report) and a self-contained HTML page
(validation_html) with each split's figures per feature and every distance against its limit."""

from __future__ import annotations

from components.common import drift, names, tfdv_stats
from components.validate_data import shift
from components.validate_data.findings import DATASET_FEATURE, KIND_DRIFT, KIND_SKEW, Finding

# --------------------------------------------------------------------------------------------------
# Markdown


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_line(findings: list[Finding]) -> str:
    if not findings:
        return "Data validation passed: no schema, skew or drift anomalies."
    offenders = ", ".join(f"{f.feature} ({f.kind})" for f in findings)
    return f"Data validation failed: {len(findings)} anomalies: {offenders}."


def render_markdown(
    findings: list[Finding], schema_source: str, row_counts: dict[str, int], notes: list[str],
    distances: list[shift.ShiftRow],
) -> str:
    rows = ", ".join(f"{split} {count}" for split, count in row_counts.items())
    lines = [
        "# Data validation report",
        "",
        summary_line(findings),
        "",
        f"- Schema used: `{schema_source}`",
        f"- Rows per split: {rows}",
    ]
    lines += [f"- {note}" for note in notes]
    if findings:
        lines += [
            "",
            "## Anomalies",
            "",
            "| feature | kind | what was expected | what was seen |",
            "|---|---|---|---|",
        ]
        for f in findings:
            seen = f"{f.short} (in {'/'.join(f.splits)}): {f.seen}"
            lines.append(f"| {_cell(f.feature)} | {f.kind} | {_cell(f.expected)} | {_cell(seen)} |")
    if distances:
        lines += [
            "",
            "## Skew and drift per feature",
            "",
            DISTANCE_LEGEND,
            "",
            "| feature | check | distance | value | sampling noise | bound | result |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in sorted(distances, key=lambda r: (r.check, -r.value / r.limit if r.limit else 0, r.feature)):
            noise = "—" if row.noise is None else f"{row.noise:.3g}"
            lines.append(f"| {_cell(row.feature)} | {row.check} | {_SHORT[row.statistic]} | {row.value:.3g} | "
                         f"{noise} | {row.bound:g} | {'**anomaly**' if row.anomalous else 'ok'} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# HTML report (the KFP UI renders it as the validation_html artifact)

_MEASUREMENT_METRICS = {  # TFDV's own comparators (a curated schema's): short names for the table
    "L_INFTY": "L∞",
    "JENSEN_SHANNON_DIVERGENCE": "JS (TFDV)",
    "NORMALIZED_ABSOLUTE_DIFFERENCE": "NAD",
}
_SHORT = {drift.JS_DIVERGENCE: "JS", drift.LINF: "L∞"}
DISTANCE_LEGEND = (
    "Skew = train vs eval, drift = this run's train data vs the champion's. "
    f"JS = {shift.STATISTIC_NAMES[drift.JS_DIVERGENCE]} (base 2, numeric; a cell for missing values "
    f"included), L∞ = {shift.STATISTIC_NAMES[drift.LINF]} (categorical). A distance is an anomaly when "
    "it is above its bound AND above the sampling noise: the level two samples of these sizes reach "
    "with no shift at all (family-wise quantile over the features). JS (TFDV), NAD: a curated "
    "schema's own comparators, judged by TFDV against their thresholds."
)
TOP_VALUES_SHOWN = 5


def feature_summaries(stats) -> dict[str, dict]:
    """feature → the figures the report shows, from one split's DatasetFeatureStatisticsList."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out: dict[str, dict] = {}
    if not stats.datasets:
        return out
    for feature in stats.datasets[0].features:
        name = tfdv_stats.feature_name(feature)
        kind = feature.WhichOneof("stats")
        if kind == "num_stats":
            ns = feature.num_stats
            common = ns.common_stats
            standard = next((h for h in ns.histograms
                             if h.type == statistics_pb2.Histogram.STANDARD), None)
            summary = {
                "kind": "numeric", "mean": ns.mean, "std": ns.std_dev, "min": ns.min, "max": ns.max,
                "histogram": [(b.low_value, b.high_value, b.sample_count) for b in standard.buckets]
                if standard is not None else [],
            }
        elif kind == "string_stats":
            ss = feature.string_stats
            common = ss.common_stats
            summary = {
                "kind": "categorical", "unique": int(ss.unique),
                "top_values": [(v.value, float(v.frequency)) for v in ss.top_values[:TOP_VALUES_SHOWN]],
            }
        else:  # struct/bytes stats: nothing this report can show beyond presence
            continue
        present, missing = int(common.num_non_missing), int(common.num_missing)
        summary.update(count=present, missing=missing,
                       missing_fraction=missing / (present + missing) if present + missing else None)
        out[name] = summary
    return out


def distance_measurements(anomalies, distances: list[shift.ShiftRow]) -> dict[str, list[dict]]:
    """feature → every skew/drift distance measured (shift.py's, and TFDV's for a curated schema's
    comparators), with the limit it was judged against, anomalous or not."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    out: dict[str, list[dict]] = {}
    for row in distances:
        out.setdefault(row.feature, []).append({
            "check": row.check, "metric": _SHORT[row.statistic], "value": row.value, "bound": row.bound,
            "noise": row.noise, "exceeded": row.anomalous,
        })
    names_of = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for check, measurements in ((KIND_SKEW, info.skew_measurements), (KIND_DRIFT, info.drift_measurements)):
            for m in measurements:
                out.setdefault(feature, []).append({
                    "check": check,
                    "metric": _MEASUREMENT_METRICS.get(names_of(m.type), names_of(m.type)),
                    "value": float(m.value),
                    "bound": float(m.threshold),
                    "noise": None,
                    "exceeded": float(m.value) > float(m.threshold),
                })
    return out


def _split_figure(summaries: dict[str, dict], split: str, feature: str, key: str):
    return summaries.get(split, {}).get(feature, {}).get(key)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _top_values(summary: dict | None) -> str:
    if not summary or not summary.get("top_values"):
        return "—"
    count = summary.get("count") or 0
    return ", ".join(f"{value} {freq / count:.0%}" if count else f"{value} {freq:g}"
                     for value, freq in summary["top_values"])


def _distance_cell(measurements: list[dict]) -> str:
    from components.common import html_report as hr

    if not measurements:
        return "—"
    cells = []
    for m in measurements:
        sign = ">" if m["exceeded"] else "≤"
        limit = f"bound {m['bound']:g}" if m["noise"] is None else f"max(bound {m['bound']:g}, noise {m['noise']:.3g})"
        cells.append(hr.badge("fail" if m["exceeded"] else "ok",
                              f"{m['check']} {m['metric']} {m['value']:.3g} {sign} {limit}"))
    return "<br>".join(cells)


def render_html(
    findings: list[Finding],
    schema_source: str,
    row_counts: dict[str, int],
    notes: list[str],
    summaries: dict[str, dict[str, dict]],
    measurements: dict[str, list[dict]],
) -> str:
    """A self-contained page: anomalies first, then each split's figures per feature.

    summaries: split → feature_summaries(...); measurements: distance_measurements(...).
    """
    from components.common import html_report as hr

    splits = [s for s in names.SPLITS if s in summaries]
    flagged = {f.feature for f in findings}
    status = "fail" if findings else "ok"
    head = [
        hr.callout(status, f"<strong>{hr.badge(status, 'FAILED' if findings else 'PASSED')} "
                           f"{hr.escape(summary_line(findings))}</strong>"),
        hr.table(["input", "value"], [
            ["schema used", schema_source],
            ["rows per split", ", ".join(f"{s} {hr.fmt(n)}" for s, n in row_counts.items())],
            *[["note", note] for note in notes],
        ]),
    ]
    sections = [hr.section("Summary", *head)]
    if findings:
        rows = [[hr.badge("anomaly", f.feature), f.kind, f.expected or "—",
                 f"{f.short} (in {'/'.join(f.splits)}): {f.seen}"] for f in findings]
        sections.append(hr.section(
            f"Anomalies ({len(findings)})",
            hr.callout("fail", hr.table(["feature", "kind", "what was expected", "what was seen"], rows,
                                        raw_html_columns=[0])),
        ))

    features = sorted({f for split in splits for f in summaries.get(split, {})} | flagged - {DATASET_FEATURE})

    def kind_of(feature: str) -> str | None:
        return next((summaries[s][feature]["kind"] for s in splits if feature in summaries.get(s, {})), None)

    def name_cell(feature: str) -> str:
        return hr.badge("anomaly", feature) if feature in flagged else hr.escape(feature)

    def pair(feature: str, key: str, formatter=None):
        values = [_split_figure(summaries, s, feature, key) for s in splits]
        # whole numbers (counts, integer min/max) without a run of decimal zeros
        values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
        return [formatter(v) if formatter else v for v in values]

    if measurements:
        sections.append(f'<p class="subtitle">{hr.escape(DISTANCE_LEGEND)}</p>')
    numeric = [f for f in features if kind_of(f) == "numeric"]
    if numeric:
        rows = []
        for feature in numeric:
            histograms = {s: _split_figure(summaries, s, feature, "histogram") or [] for s in splits}
            rows.append([name_cell(feature), *pair(feature, "count"), *pair(feature, "missing_fraction", _percent),
                         *pair(feature, "mean"), *pair(feature, "std"), *pair(feature, "min"),
                         *pair(feature, "max"), hr.histogram_pair(histograms, width=150) or "—",
                         _distance_cell(measurements.get(feature, []))])
        sections.append(hr.section(
            "Numeric features per split",
            hr.grouped_table(
                [("feature", []), ("count", splits), ("missing", splits), ("mean", splits), ("std", splits),
                 ("min", splits), ("max", splits), (f"histogram ({' / '.join(splits)})", []),
                 ("skew / drift distance vs its limit", [])],
                rows, raw_html_columns=[0, 1 + 6 * len(splits), 2 + 6 * len(splits)]),
        ))
    categorical = [f for f in features if kind_of(f) == "categorical"]
    if categorical:
        rows = [[name_cell(feature), *pair(feature, "count"), *pair(feature, "missing_fraction", _percent),
                 *pair(feature, "unique"),
                 *[_top_values(summaries.get(s, {}).get(feature)) for s in splits],
                 _distance_cell(measurements.get(feature, []))] for feature in categorical]
        sections.append(hr.section(
            "Categorical features per split",
            hr.grouped_table(
                [("feature", []), ("count", splits), ("missing", splits), ("unique", splits),
                 ("top values", splits), ("skew / drift distance vs its limit", [])],
                rows, raw_html_columns=[0, 1 + 4 * len(splits)]),
        ))
    absent = [f for f in features if kind_of(f) is None]
    if absent:
        sections.append(hr.section("Features in no split's statistics",
                                   hr.paragraph(", ".join(absent))))
    return hr.page("Data validation", sections,
                   subtitle="TFDV statistics, schema anomalies, train/eval skew and drift from the champion")
