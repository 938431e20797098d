"""Evaluate's reports: fairness_report.md (the KFP UI's Markdown) and fairness_report.html (gates with
their intervals, metrics against the champion and the simple baselines, calibration, slices, ROC).

Each label kind shows its own figures (the tables below): binary AUC, error rates and calibration;
multiclass macro AUC, accuracy, macro-F1, per-class figures and the confusion matrix; regression
MSE, MAE, R² and the calibration of the mean."""

from __future__ import annotations

from typing import Any

from components.common import label_kinds as kinds
from components.common.gate_policy import GatePolicy
from components.evaluate.bias import BIAS_METRICS
from components.evaluate.blessing import Blessing
from components.evaluate.gates import (
    GATE_BASELINE,
    GATE_CALIBRATION,
    GATE_FAIRNESS,
    GATE_METRIC_FLOOR,
    GATE_NO_REGRESSION,
    PRIMARY_LABEL,
    finite_or_none,
    fmt,
    slice_gaps,
)


# Per kind, (label, metric key) of: the overall line, the champion line, the simple baselines'
# line, the slice tables, and the HTML's overall table. Binary's are the reports' original figures.
OVERALL_FIGURES = {
    kinds.BINARY: [("AUC", "auc"), ("FPR", "false_positive_rate"), ("FNR", "false_negative_rate"),
                   ("accuracy", "accuracy"), ("calibration", "calibration"), ("ECE", "expected_calibration_error"),
                   ("Brier", "brier_score"), ("log-loss", "log_loss")],
    kinds.MULTICLASS: [("macro AUC", "macro_auc"), ("accuracy", "accuracy"), ("macro-F1", "macro_f1"),
                       ("top-class ECE", "expected_calibration_error"), ("mean confidence", "mean_confidence"),
                       ("Brier", "brier_score"), ("log-loss", "log_loss")],
    kinds.REGRESSION: [("R²", "r2"), ("MSE", "mean_squared_error"), ("RMSE", "root_mean_squared_error"),
                       ("MAE", "mean_absolute_error"), ("mean label", "mean_label"),
                       ("mean prediction", "mean_prediction"), ("calibration", "calibration")],
}
CHAMPION_FIGURES = {
    kinds.BINARY: [("AUC", "auc"), ("FPR", "false_positive_rate"), ("FNR", "false_negative_rate")],
    kinds.MULTICLASS: [("macro AUC", "macro_auc"), ("accuracy", "accuracy"), ("macro-F1", "macro_f1")],
    kinds.REGRESSION: [("R²", "r2"), ("MSE", "mean_squared_error"), ("MAE", "mean_absolute_error")],
}
BASELINE_FIGURES = {
    kinds.BINARY: [("AUC", "auc"), ("Brier", "brier")],
    kinds.MULTICLASS: [("macro AUC", "macro_auc"), ("accuracy", "accuracy"), ("log-loss", "log_loss")],
    kinds.REGRESSION: [("R²", "r2"), ("MSE", "mean_squared_error"), ("MAE", "mean_absolute_error")],
}
SLICE_FIGURES = {
    kinds.BINARY: [("AUC", "auc"), ("FPR", "false_positive_rate"), ("FNR", "false_negative_rate"),
                   ("accuracy", "accuracy")],
    kinds.MULTICLASS: [("accuracy", "accuracy"), ("macro-F1", "macro_f1"), ("macro AUC", "macro_auc"),
                       ("top-class ECE", "expected_calibration_error")],
    kinds.REGRESSION: [("MAE", "mean_absolute_error"), ("MAE / overall MAE", "relative_mean_absolute_error"),
                       ("RMSE", "root_mean_squared_error"), ("R²", "r2"), ("mean label", "mean_label"),
                       ("mean prediction", "mean_prediction")],
}
# The HTML's slice tables add these to SLICE_FIGURES (binary: precision and recall).
HTML_SLICE_EXTRA = {kinds.BINARY: [("precision", "precision"), ("recall", "recall")],
                    kinds.MULTICLASS: [("log-loss", "log_loss")], kinds.REGRESSION: []}
CALIBRATION_FIGURES = {
    kinds.BINARY: [("mean prediction", "mean_prediction"), ("positive rate", "mean_label"),
                   ("calibration", "calibration"), ("ECE", "expected_calibration_error"), ("Brier", "brier_score"),
                   ("log-loss", "log_loss")],
    kinds.MULTICLASS: [("mean confidence", "mean_confidence"), ("accuracy", "accuracy"),
                       ("top-class ECE", "expected_calibration_error"), ("Brier", "brier_score"),
                       ("log-loss", "log_loss")],
    kinds.REGRESSION: [("mean prediction", "mean_prediction"), ("mean label", "mean_label"),
                       ("calibration", "calibration")],
}
CALIBRATION_NOTES = {
    kinds.BINARY: "Calibration is mean prediction / positive rate (1 is calibrated); ECE weighs "
                  "|positive rate − mean prediction| over ten equal-width probability bins. In the "
                  "diagram the dashed diagonal is perfect calibration.",
    kinds.MULTICLASS: "The top-class ECE weighs |accuracy − mean confidence of the predicted class| over "
                      "ten equal-width confidence bins (0 is calibrated).",
    kinds.REGRESSION: "Calibration of the mean is mean prediction / mean label (1: no overall bias).",
}


def _figures_text(values: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    return ", ".join(f"{label} {fmt(finite_or_none(values.get(key)))}" for label, key in figures)


def _fairness_bound_text(policy: GatePolicy, label_kind: str) -> str:
    what = f"`{policy.fairness_metric}`"
    if policy.fairness_metric == "relative_mean_absolute_error":
        what += " (each slice's MAE divided by the overall MAE)"
    threshold = f"; decision threshold {policy.decision_threshold:g}" if label_kind == kinds.BINARY else ""
    return (f"Fairness bound: largest gap of {what} between the values of a slice column "
            f"<= {policy.fairness_max_gap:g}, over values with >= {policy.min_slice_examples} examples"
            f"{threshold}. Gates judge the {policy.gate_rule.replace('_', ' ')}; "
            + ("intervals are TFMA's 95% jackknife intervals." if policy.confidence_intervals
               else "no intervals were computed (confidence_intervals off)."))


def fairness_report(blessing: Blessing, slice_columns: list[str], policy: GatePolicy) -> str:
    fairness_metric, fairness_max_gap = policy.fairness_metric, policy.fairness_max_gap
    kind = blessing.label_kind
    lines = [
        f"# Evaluation: {'BLESSED' if blessing.blessed else 'NOT BLESSED'}",
        "",
        _fairness_bound_text(policy, kind),
        "",
        "## Gates",
        "",
    ]
    if kind != kinds.BINARY:
        lines[1:1] = ["", f"Label kind: {kind}" + (f", classes {', '.join(blessing.classes)}" if blessing.classes else "")]
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
        f"n={_count(m.get('example_count'))}, {_figures_text(m, OVERALL_FIGURES[kind])}",
    ]
    for name, b in blessing.simple_baselines.items():
        lines.append(f"Simple baseline {name} (same splits): {_figures_text(b, BASELINE_FIGURES[kind])}")
    if blessing.baseline_metrics is not None:
        lines.append(f"Champion {blessing.baseline_version or ''}: "
                     f"{_figures_text(blessing.baseline_metrics, CHAMPION_FIGURES[kind])}")
    if blessing.per_class:
        lines += ["", "## Per class (one-vs-rest; precision and recall of the top class)", "",
                  "| class | AUC | precision | recall | F1 |", "|---|---|---|---|---|"]
        lines += [f"| {name} | " + " | ".join(fmt(finite_or_none(c.get(k))) for k in ("auc", "precision", "recall", "f1"))
                  + " |" for name, c in blessing.per_class.items()]
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
        figures = SLICE_FIGURES[kind]
        lines += [
            "",
            f"## Slice `{column}`: {gap_text}",
            "",
            "| value | n | " + " | ".join(label for label, _ in figures) + " | in gate |",
            "|---|---|" + "---|" * len(figures) + "---|",
        ]
        for value, x in sorted(values.items()):
            lines.append(
                f"| {value} | {_count(x.get('example_count'))} | "
                + "".join(f"{fmt(finite_or_none(x.get(key)))} | " for _, key in figures)
                + f"{'no (skipped)' if (column, value) in skipped else 'yes'} |"
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


# Fairness metrics where a higher value is the worse one (error rates, regression errors); the others
# (AUC, accuracy, macro-F1) are better when higher, so the gate's band hangs below the best slice value.
HIGHER_IS_WORSE = {"false_negative_rate", "false_positive_rate", "mean_absolute_error", "root_mean_squared_error",
                   "relative_mean_absolute_error"}
_METRIC_LABELS = {
    "auc": "AUC", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
    "false_positive_rate": "FPR", "false_negative_rate": "FNR", "calibration": "calibration",
    "example_count": "examples", "mean_label": "mean label", "mean_prediction": "mean prediction",
    "expected_calibration_error": "ECE", "brier_score": "Brier score", "log_loss": "log-loss",
    "macro_auc": "macro AUC", "macro_f1": "macro-F1", "mean_confidence": "mean confidence",
    "mean_squared_error": "MSE", "root_mean_squared_error": "RMSE", "mean_absolute_error": "MAE", "r2": "R²",
    "relative_mean_absolute_error": "MAE / overall MAE",
}
_GATE_RULES = {
    GATE_METRIC_FLOOR: "candidate {primary} ≥ {t:g}",
    GATE_NO_REGRESSION: "{primary} change vs champion ≥ −{t:g}",
    GATE_FAIRNESS: "largest {metric} gap between slice values ≤ {t:g}",
    GATE_CALIBRATION: "calibration in the band, ECE ≤ {t:g}",
    GATE_BASELINE: "AUC change vs logistic regression ≥ −{t:g}",
}
# The other kinds' wording where binary's does not fit.
_KIND_GATE_RULES = {
    kinds.MULTICLASS: {GATE_CALIBRATION: "top-class ECE ≤ {t:g}",
                       GATE_BASELINE: "{primary} change vs the best simple model ≥ −{t:g}"},
    kinds.REGRESSION: {GATE_CALIBRATION: "mean prediction / mean label in the band (≤ {t:g})",
                       GATE_BASELINE: "{primary} change vs the best simple model ≥ −{t:g}"},
}
# The HTML's overall table, per kind.
SHOWN_METRICS = {
    kinds.BINARY: ["auc", "accuracy", "precision", "recall", "false_positive_rate", "false_negative_rate",
                   "calibration", "expected_calibration_error", "brier_score", "log_loss", "example_count"],
    kinds.MULTICLASS: ["macro_auc", "accuracy", "macro_f1", "expected_calibration_error", "mean_confidence",
                       "brier_score", "log_loss", "example_count"],
    kinds.REGRESSION: ["r2", "mean_squared_error", "root_mean_squared_error", "mean_absolute_error",
                       "mean_label", "mean_prediction", "calibration", "example_count"],
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

    kind = blessing.label_kind
    rules = {**_GATE_RULES, **_KIND_GATE_RULES.get(kind, {})}
    rows = []
    for gate in blessing.gates:
        rule = rules.get(gate.name, "{t:g}").format(t=gate.threshold, metric=label, primary=PRIMARY_LABEL[kind])
        badge = "warn" if not gate.applicable else "pass" if gate.passed else "fail"
        rows.append([gate.name, hr.badge(badge, gate.verdict), finite_or_none(gate.value),
                     _interval_text(gate.lower, gate.upper).strip() or "n/a", gate.n, rule,
                     gate.rule.replace("_", " "), gate.detail])
    sections.append(hr.section("Gates", hr.table(
        ["gate", "status", "value", "95% interval", "n", "bound", "judged on", "detail"], rows,
        raw_html_columns=[1])))

    shown = SHOWN_METRICS[kind]
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
    sections.append(hr.section(f"Overall metrics at decision threshold {decision_threshold:g}"
                               if kind == kinds.BINARY else "Overall metrics", overall))
    if blessing.per_class:
        sections.append(_per_class_section(hr, blessing, (curves or {}).get("overall")))
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
        figures = SLICE_FIGURES[kind] + HTML_SLICE_EXTRA[kind]
        for value, x in sorted(values.items()):
            note = skipped.get((column, value))
            rows.append([f"{column}={value}", _figure(x, "example_count"),
                         *[finite_or_none(x.get(k)) for _, k in figures],
                         hr.badge("warn", "skipped: " + note["reason"]) if note else hr.badge("ok", "in gate")])
        body.append(hr.table(["slice", "n", *[label for label, _ in figures], "fairness gate"],
                             rows, raw_html_columns=[len(figures) + 2]))
        sections.append(hr.section(heading, *body))

    if curves and kind == kinds.MULTICLASS:
        sections.append(_confusion_section(hr, blessing, curves))
    elif curves:
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
    if kind != kinds.BINARY:
        subtitle = f"{kind} label" + (f" ({', '.join(blessing.classes)})" if blessing.classes else "") + "; " + subtitle
    return hr.page("Model evaluation and fairness", sections, subtitle=subtitle)


def _baselines_section(hr, blessing: Blessing) -> str:
    """The candidate beside the simple models fitted on the same train split ("a simpler model must
    not be better")."""
    m, figures = blessing.metrics, BASELINE_FIGURES[blessing.label_kind]
    # The candidate's own names for the baselines' figures (binary's "brier" is its brier_score).
    candidate_keys = {"brier": "brier_score"}
    rows = [["candidate", *[finite_or_none(m.get(candidate_keys.get(k, k))) for _, k in figures]]]
    rows += [[name, *[finite_or_none(b.get(k)) for _, k in figures]] for name, b in blessing.simple_baselines.items()]
    note = ("Fitted on the train split over the model's feature columns, scored on the same eval rows."
            if blessing.simple_baselines else "No simple baseline was fitted.")
    headers = ["model", *[label for label, _ in figures]]
    if blessing.label_kind == kinds.BINARY:
        headers = ["model", "AUC", "Brier score"]
    return hr.section("Candidate vs simple baselines", hr.table(headers, rows), hr.paragraph(note))


def _per_class_section(hr, blessing: Blessing, overall_curve: dict[str, Any] | None) -> str:
    """Multiclass: each class's one-vs-rest AUC and its precision, recall, F1 as the top class."""
    rows = [[name, *[finite_or_none(c.get(k)) for k in ("auc", "precision", "recall", "f1")]]
            for name, c in blessing.per_class.items()]
    return hr.section("Per class", hr.paragraph(
        "One-vs-rest AUC of each class's probability; precision, recall and F1 of predicting the class "
        "as the most probable one. Macro figures average these over the classes."),
        hr.table(["class", "AUC (one-vs-rest)", "precision", "recall", "F1"], rows))


def _confusion_section(hr, blessing: Blessing, curves: dict[str, dict[str, Any]]) -> str:
    """Multiclass: the confusion matrix (rows actual, columns the predicted top class) per slice."""
    tables = []
    for name, curve in curves.items():
        rows = [[f"actual {cls}", *counts] for cls, counts in zip(blessing.classes, curve["confusion_matrix"])]
        tables += [hr.paragraph(f"{name}:"), hr.table(["", *[f"predicted {c}" for c in blessing.classes]], rows)]
    return hr.section("Confusion matrix per slice", hr.paragraph(
        "Counts of eval rows by actual class and predicted (most probable) class; the same figures are in "
        "the classification_metrics and sliced_metrics outputs."), *tables)


def _calibration_section(hr, blessing: Blessing) -> str:
    """Calibration figures overall and per slice value, and the reliability diagram."""
    rows = []
    figures = CALIBRATION_FIGURES[blessing.label_kind]
    named = {"overall": blessing.metrics} | {f"{c}={v}": x for c, values in blessing.slices.items()
                                             for v, x in sorted(values.items())}
    for name, x in named.items():
        rows.append([name, _figure(x, "example_count"), *[finite_or_none(x.get(k)) for _, k in figures]])
    table = hr.table(["slice", "n", *[label for label, _ in figures]], rows)
    plot = {name: [(p, o) for p, o, _ in curve] for name, curve in blessing.calibration_curves.items() if curve}
    chart = hr.unit_chart(plot, "mean predicted probability", "observed positive rate") if plot else ""
    return hr.section(
        "Calibration",
        hr.paragraph(CALIBRATION_NOTES[blessing.label_kind]),
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
