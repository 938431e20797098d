"""Evaluate's reports: fairness_report.md (the KFP UI's Markdown) and fairness_report.html (gates with
their intervals, metrics against the champion and the simple baselines, calibration, slices, ROC)."""

from __future__ import annotations

from typing import Any

from components.common.gate_policy import GatePolicy
from components.evaluate.bias import BIAS_METRICS
from components.evaluate.blessing import Blessing
from components.evaluate.gates import (
    GATE_BASELINE,
    GATE_CALIBRATION,
    GATE_FAIRNESS,
    GATE_METRIC_FLOOR,
    GATE_NO_REGRESSION,
    finite_or_none,
    fmt,
    slice_gaps,
)


def fairness_report(blessing: Blessing, slice_columns: list[str], policy: GatePolicy) -> str:
    fairness_metric, fairness_max_gap = policy.fairness_metric, policy.fairness_max_gap
    lines = [
        f"# Evaluation: {'BLESSED' if blessing.blessed else 'NOT BLESSED'}",
        "",
        f"Fairness bound: largest gap of `{fairness_metric}` between the values of a slice column "
        f"<= {fairness_max_gap:g}, over values with >= {policy.min_slice_examples} examples; "
        f"decision threshold {policy.decision_threshold:g}. Gates judge the {policy.gate_rule.replace('_', ' ')}; "
        "intervals are TFMA's 95% jackknife intervals.",
        "",
        "## Gates",
        "",
    ]
    for gate in blessing.gates:
        lines.append(
            f"- **{gate.name}**: {gate.verdict} "
            f"(value {fmt(gate.value)}{_interval_text(gate.lower, gate.upper)}, n {_count(gate.n)}, "
            f"threshold {gate.threshold:g}) {gate.detail}"
        )
    m = blessing.metrics
    lines += [
        "",
        "## Overall",
        "",
        f"n={_count(m.get('example_count'))}, AUC {fmt(m.get('auc'))}, "
        f"FPR {fmt(m.get('false_positive_rate'))}, FNR {fmt(m.get('false_negative_rate'))}, "
        f"accuracy {fmt(m.get('accuracy'))}, calibration {fmt(m.get('calibration'))}, "
        f"ECE {fmt(m.get('expected_calibration_error'))}, Brier {fmt(m.get('brier_score'))}, "
        f"log-loss {fmt(m.get('log_loss'))}",
    ]
    for name, b in blessing.simple_baselines.items():
        lines.append(f"Simple baseline {name} (same splits): AUC {fmt(finite_or_none(b.get('auc')))}, "
                     f"Brier {fmt(finite_or_none(b.get('brier')))}")
    if blessing.baseline_metrics is not None:
        b = blessing.baseline_metrics
        lines.append(
            f"Champion {blessing.baseline_version or ''}: AUC {fmt(b.get('auc'))}, "
            f"FPR {fmt(b.get('false_positive_rate'))}, FNR {fmt(b.get('false_negative_rate'))}"
        )
    eligible_by_column, _ = slice_gaps(blessing.slices, fairness_metric, policy.min_slice_examples)
    skipped = {(s["column"], s["value"]) for s in blessing.skipped_slices}
    for column in slice_columns:
        values = blessing.slices.get(column, {})
        eligible = eligible_by_column.get(column, {})
        gap = max(eligible.values()) - min(eligible.values()) if len(eligible) >= 2 else None
        gap_text = (
            f"{fairness_metric} gap {gap:.4f} "
            f"({'within' if gap <= fairness_max_gap else 'exceeds'} bound {fairness_max_gap:g})"
            if gap is not None else "gap not computed (fewer than 2 eligible values)"
        )
        lines += [
            "",
            f"## Slice `{column}`: {gap_text}",
            "",
            "| value | n | AUC | FPR | FNR | accuracy | in gate |",
            "|---|---|---|---|---|---|---|",
        ]
        for value, x in sorted(values.items()):
            lines.append(
                f"| {value} | {_count(x.get('example_count'))} | {fmt(x.get('auc'))} | "
                f"{fmt(x.get('false_positive_rate'))} | {fmt(x.get('false_negative_rate'))} | "
                f"{fmt(x.get('accuracy'))} | {'no (skipped)' if (column, value) in skipped else 'yes'} |"
            )
    if blessing.bias_metrics:
        lines += ["", f"## Bias metrics at threshold {blessing.decision_threshold:.4g} "
                  "(Vertex DetectModelBias, Fairlearn's between-groups difference)", "",
                  "| slice column | accuracy diff | recall diff | specificity diff | positive proportion diff |",
                  "|---|---|---|---|---|"]
        for column, b in blessing.bias_metrics.items():
            d = b["difference"]
            lines.append(f"| {column} | " + " | ".join(fmt(d.get(k)) for k in BIAS_METRICS) + " |")
    if blessing.skipped_slices:
        lines += ["", "## Skipped slices", ""]
        lines += [f"- {s['slice']}: {s['reason']}" for s in blessing.skipped_slices]
    return "\n".join(lines) + "\n"


def _count(value: Any) -> str:
    return "n/a" if value is None else str(int(value))


def _interval_text(lower: float | None, upper: float | None) -> str:
    return "" if lower is None or upper is None else f" [{lower:.4f}, {upper:.4f}]"


# Fairness metrics where a higher value is the worse one (error rates); the others (AUC, accuracy)
# are better when higher, so the gate's band hangs below the best slice value instead.
HIGHER_IS_WORSE = {"false_negative_rate", "false_positive_rate"}
_METRIC_LABELS = {
    "auc": "AUC", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
    "false_positive_rate": "FPR", "false_negative_rate": "FNR", "calibration": "calibration",
    "example_count": "examples", "mean_label": "mean label", "mean_prediction": "mean prediction",
    "expected_calibration_error": "ECE", "brier_score": "Brier score", "log_loss": "log-loss",
}
_GATE_RULES = {
    GATE_METRIC_FLOOR: "candidate AUC ≥ {t:g}",
    GATE_NO_REGRESSION: "AUC change vs champion ≥ −{t:g}",
    GATE_FAIRNESS: "largest {metric} gap between slice values ≤ {t:g}",
    GATE_CALIBRATION: "calibration in the band, ECE ≤ {t:g}",
    GATE_BASELINE: "AUC change vs logistic regression ≥ −{t:g}",
}


def _figure(metrics: dict[str, Any], key: str) -> float | int | None:
    value = finite_or_none(metrics.get(key))
    return int(value) if key == "example_count" and value is not None else value


def fairness_html(
    blessing: Blessing, slice_columns: list[str], policy: GatePolicy,
    curves: dict[str, dict[str, Any]] | None = None,
    baseline_curve: dict[str, Any] | None = None,
) -> str:
    """A self-contained page: the verdict, each gate, overall metrics (vs the champion), the
    fairness metric per slice value as bars against the gate's band, counts and metrics per slice,
    and per-slice ROC curves and confusion matrices (the figures of the SlicedClassificationMetrics
    output, which the KFP UI does not render)."""
    from components.common import html_report as hr

    fairness_metric, fairness_max_gap = policy.fairness_metric, policy.fairness_max_gap
    min_slice_examples, decision_threshold = policy.min_slice_examples, policy.decision_threshold
    eligible_by_column, _ = slice_gaps(blessing.slices, fairness_metric, min_slice_examples)
    curves = curves or {}
    label = _METRIC_LABELS.get(fairness_metric, fairness_metric)
    verdict = "blessed" if blessing.blessed else "not_blessed"
    failed = [g.name for g in blessing.gates if not g.passed]
    sections = [hr.section("Verdict", hr.callout(
        verdict,
        f"<strong>{hr.badge(verdict, 'BLESSED' if blessing.blessed else 'NOT BLESSED')} ",
        hr.escape("all gates passed" if not failed else "failed gates: " + ", ".join(failed)),
        "</strong>",
    ))]

    rows = []
    for gate in blessing.gates:
        rule = _GATE_RULES.get(gate.name, "{t:g}").format(t=gate.threshold, metric=label)
        badge = "warn" if not gate.applicable else "pass" if gate.passed else "fail"
        rows.append([gate.name, hr.badge(badge, gate.verdict), finite_or_none(gate.value),
                     _interval_text(gate.lower, gate.upper).strip() or "n/a", gate.n, rule,
                     gate.rule.replace("_", " "), gate.detail])
    sections.append(hr.section("Gates", hr.table(
        ["gate", "status", "value", "95% interval", "n", "bound", "judged on", "detail"], rows,
        raw_html_columns=[1])))

    shown = ["auc", "accuracy", "precision", "recall", "false_positive_rate", "false_negative_rate",
             "calibration", "expected_calibration_error", "brier_score", "log_loss", "example_count"]
    if blessing.baseline_metrics is not None:
        champion = f"champion {blessing.baseline_version or ''}".strip()
        rows = []
        for key in shown:
            new, old = _figure(blessing.metrics, key), _figure(blessing.baseline_metrics, key)
            change = None if new is None or old is None else new - old
            rows.append([_METRIC_LABELS[key], new, old, None if change is None else f"{change:+.4f}"])
        overall = hr.table(["metric", "candidate", champion, "change"], rows)
    else:
        overall = hr.table(["metric", "candidate"], [[_METRIC_LABELS[k], _figure(blessing.metrics, k)] for k in shown])
        overall += hr.paragraph("No champion in the registry: nothing to compare against.")
    sections.append(hr.section(f"Overall metrics at decision threshold {decision_threshold:g}", overall))
    sections.append(_baselines_section(hr, blessing))
    if blessing.bias_metrics:
        sections.append(_bias_section(hr, blessing))
    sections.append(_calibration_section(hr, blessing))

    skipped = {(s["column"], s["value"]): s for s in blessing.skipped_slices}
    for column in slice_columns:
        values = blessing.slices.get(column, {})
        eligible = eligible_by_column.get(column, {})
        body = []
        if len(eligible) >= 2:
            gap = max(eligible.values()) - min(eligible.values())
            ok = gap <= fairness_max_gap
            heading = f"Slice {column}: {label} gap {gap:.4f} {'≤' if ok else '>'} {fairness_max_gap:g}"
            worse_up = fairness_metric in HIGHER_IS_WORSE
            # The gate bounds the gap; drawn as a line: no bar may pass best value ± max gap.
            bound = (min(eligible.values()) + fairness_max_gap if worse_up
                     else max(eligible.values()) - fairness_max_gap)
            body.append(hr.callout("ok" if ok else "fail", hr.escape(
                f"{label} per {column} value; the dashed line is the best value "
                f"{'+' if worse_up else '−'} the allowed gap {fairness_max_gap:g}: a bar past it fails the gate.")))
            body.append(hr.bar_chart({f"{column}={v}": x for v, x in eligible.items()}, bound=bound,
                                     bound_label=f"bound {'min +' if worse_up else 'max −'} {fairness_max_gap:g} =",
                                     higher_is_worse=worse_up))
        else:
            heading = f"Slice {column}: gap not computed"
            body.append(hr.callout("warn", hr.escape(
                f"Fewer than 2 values of {column} have >= {min_slice_examples} examples and a defined "
                f"{label}: the fairness gate does not compare them.")))
        rows = []
        for value, x in sorted(values.items()):
            note = skipped.get((column, value))
            rows.append([f"{column}={value}", _figure(x, "example_count"),
                         *[finite_or_none(x.get(k)) for k in ("auc", "false_positive_rate", "false_negative_rate",
                                                                 "accuracy", "precision", "recall")],
                         hr.badge("warn", "skipped: " + note["reason"]) if note else hr.badge("ok", "in gate")])
        body.append(hr.table(["slice", "n", "AUC", "FPR", "FNR", "accuracy", "precision", "recall", "fairness gate"],
                             rows, raw_html_columns=[8]))
        sections.append(hr.section(heading, *body))

    if curves:
        roc = {name: [(f, t) for f, t, _ in c["roc"]] for name, c in curves.items() if c["roc"]}
        if baseline_curve and baseline_curve.get("roc"):
            roc[f"champion {blessing.baseline_version or ''} (overall)".replace("  ", " ")] = [
                (f, t) for f, t, _ in baseline_curve["roc"]]
        rows = []
        for name, c in curves.items():
            (tn, fp), (fn, tp) = c["confusion_matrix"]
            rows.append([name, tn + fp + fn + tp, tn, fp, fn, tp,
                         fp / (fp + tn) if fp + tn else None, tp / (tp + fn) if tp + fn else None])
        sections.append(hr.section(
            "ROC curve and confusion matrix per slice",
            hr.paragraph(f"Confusion matrices at the decision threshold {decision_threshold:g} "
                         "(label 1 = positive); the same figures are in the sliced_metrics output."),
            '<div class="grid"><div>',
            hr.table(["slice", "n", "TN", "FP", "FN", "TP", "FPR", "TPR"], rows),
            "</div><div>", hr.roc_chart(roc), "</div></div>",
        ))
    subtitle = (f"TFMA on the eval split; fairness metric {fairness_metric}, max gap {fairness_max_gap:g} "
                f"over slice values with ≥ {min_slice_examples} examples")
    return hr.page("Model evaluation and fairness", sections, subtitle=subtitle)


def _baselines_section(hr, blessing: Blessing) -> str:
    """The candidate beside the simple models fitted on the same train split ("a simpler model must
    not be better")."""
    m = blessing.metrics
    rows = [["candidate", finite_or_none(m.get("auc")), finite_or_none(m.get("brier_score"))]]
    rows += [[name, finite_or_none(b.get("auc")), finite_or_none(b.get("brier"))]
             for name, b in blessing.simple_baselines.items()]
    note = ("Fitted on the train split over the model's feature columns, scored on the same eval rows."
            if blessing.simple_baselines else "No simple baseline was fitted.")
    return hr.section("Candidate vs simple baselines", hr.table(["model", "AUC", "Brier score"], rows),
                      hr.paragraph(note))


def _calibration_section(hr, blessing: Blessing) -> str:
    """Calibration figures overall and per slice value, and the reliability diagram."""
    rows = []
    named = {"overall": blessing.metrics} | {f"{c}={v}": x for c, values in blessing.slices.items()
                                             for v, x in sorted(values.items())}
    for name, x in named.items():
        rows.append([name, _figure(x, "example_count"), *[finite_or_none(x.get(k)) for k in
                     ("mean_prediction", "mean_label", "calibration", "expected_calibration_error",
                      "brier_score", "log_loss")]])
    table = hr.table(["slice", "n", "mean prediction", "positive rate", "calibration", "ECE", "Brier", "log-loss"],
                     rows)
    plot = {name: [(p, o) for p, o, _ in curve] for name, curve in blessing.calibration_curves.items() if curve}
    chart = hr.unit_chart(plot, "mean predicted probability", "observed positive rate") if plot else ""
    return hr.section(
        "Calibration",
        hr.paragraph("Calibration is mean prediction / positive rate (1 is calibrated); ECE weighs "
                     "|positive rate − mean prediction| over ten equal-width probability bins. In the "
                     "diagram the dashed diagonal is perfect calibration."),
        '<div class="grid"><div>', table, "</div><div>", chart, "</div></div>",
    )


def _bias_section(hr, blessing: Blessing) -> str:
    rows = []
    for column, b in blessing.bias_metrics.items():
        for value, r in b["by_value"].items():
            rows.append([f"{column}={value}", *[r.get(k) for k in BIAS_METRICS]])
        rows.append([f"{column}: difference (max − min)", *[b["difference"].get(k) for k in BIAS_METRICS]])
    return hr.section(
        f"Bias metrics at decision threshold {blessing.decision_threshold:.4g}",
        hr.paragraph("The metrics of Vertex AI's DetectModelBiasOp, defined as Fairlearn's MetricFrame "
                     "(difference between groups: largest minus smallest value). Reported, not gated: "
                     "the fairness gate judges the configured fairness metric."),
        hr.table(["slice", "accuracy", "recall", "specificity", "positive proportion"], rows),
    )
