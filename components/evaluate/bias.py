"""The bias metrics Vertex AI's DetectModelBiasOp reports, with Fairlearn's definitions: per slice
column, the largest difference between its values (MetricFrame.difference(method="between_groups"))
of accuracy, recall, specificity and the positive proportion of predicted labels, all at the
decision threshold. Computed from the per-slice confusion matrices TFMA wrote; reported beside the
fairness gate, which stays on the configured fairness_metric.
"""

from __future__ import annotations

from typing import Any

BIAS_METRICS = ("accuracy", "recall", "specificity", "positive_proportion")


def rates(confusion: list[list[int]]) -> dict[str, float | None]:
    """The four rates from [[tn, fp], [fn, tp]]; None where the denominator is 0."""
    (tn, fp), (fn, tp) = confusion
    n = tn + fp + fn + tp

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    return {
        "accuracy": ratio(tp + tn, n),
        "recall": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "positive_proportion": ratio(tp + fp, n),
    }


def bias_metrics(curves: dict[str, dict[str, Any]], slice_columns: list[str]) -> dict[str, dict[str, Any]]:
    """column → {"by_value": {value: rates}, "difference": {metric: max - min over its values}}.

    `curves`: evaluate's classification_curves (slice name "column=value" → confusion_matrix)."""
    out: dict[str, dict[str, Any]] = {}
    for column in slice_columns:
        prefix = f"{column}="
        by_value = {name[len(prefix):]: rates(curve["confusion_matrix"])
                    for name, curve in curves.items() if name.startswith(prefix) and "," not in name}
        difference = {}
        for metric in BIAS_METRICS:
            values = [r[metric] for r in by_value.values() if r[metric] is not None]
            difference[metric] = max(values) - min(values) if len(values) >= 2 else None
        out[column] = {"by_value": dict(sorted(by_value.items())), "difference": difference}
    return out
