"""The blessing evaluate writes (blessing.json) and push, the reports and run summaries read."""

from __future__ import annotations

import dataclasses
from typing import Any

from components.common import io as fio
from components.common import label_kinds, names
from components.evaluate.gates import Gate, finite_or_none


@dataclasses.dataclass
class Blessing:
    blessed: bool
    gates: list[Gate]
    metrics: dict[str, float | None]
    baseline_metrics: dict[str, float | None] | None
    baseline_version: str | None
    slices: dict[str, dict[str, dict[str, float | None]]]
    skipped_slices: list[dict[str, Any]]
    evaluation_seconds: float
    bias_metrics: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """bias.py's per-column differences (Vertex DetectModelBias' metrics, Fairlearn's definitions)."""
    decision_threshold: float = 0.5
    """The threshold the rates were computed at (the model's own unless the policy set one)."""
    intervals: dict[str, dict[str, dict[str, float | None]]] = dataclasses.field(default_factory=dict)
    """Slice name ("overall", "afam=yes") → metric → its 95% interval {lower, upper, standard_error}."""
    simple_baselines: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """baseline.py's models on the same splits: name → {name, auc, brier}."""
    calibration_curves: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    """Slice name → [mean prediction, observed positive rate, examples] per probability bin."""
    label_kind: str = label_kinds.BINARY
    classes: list[str] = dataclasses.field(default_factory=list)
    """Multiclass: class i's name (ingest's metadata)."""
    per_class: dict[str, dict[str, float | None]] = dataclasses.field(default_factory=dict)
    """Multiclass: class name → one-vs-rest auc, precision, recall, f1 (overall)."""
    fairness_metric: str = ""
    """The metric the fairness gate compared (the kind's default where the policy's is another kind's)."""

    def gate(self, name: str) -> Gate:
        return next(g for g in self.gates if g.name == name)

    def to_dict(self) -> dict[str, Any]:
        record = {
            "blessed": bool(self.blessed),
            "gates": [g.to_dict() for g in self.gates],
            "metrics": clean_metrics(self.metrics),
            "intervals": {s: {k: clean_metrics(v) for k, v in m.items()} for s, m in self.intervals.items()},
            "baseline_metrics": None if self.baseline_metrics is None else clean_metrics(self.baseline_metrics),
            "baseline_version": self.baseline_version,
            "simple_baselines": self.simple_baselines,
            "slices": {
                column: {value: clean_metrics(m) for value, m in values.items()}
                for column, values in self.slices.items()
            },
            "skipped_slices": list(self.skipped_slices),
            "calibration_curves": self.calibration_curves,
            "bias_metrics": self.bias_metrics,
            "decision_threshold": float(self.decision_threshold),
            "evaluation_seconds": float(self.evaluation_seconds),
        }
        # A binary blessing keeps its earlier shape (readers default label_kind to binary).
        if self.label_kind != label_kinds.BINARY:
            record.update({"label_kind": self.label_kind, "classes": list(self.classes),
                           "per_class": {c: clean_metrics(m) for c, m in self.per_class.items()},
                           "fairness_metric": self.fairness_metric})
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Blessing":
        return cls(
            blessed=record["blessed"],
            gates=[Gate(**g) for g in record["gates"]],
            metrics=record["metrics"],
            baseline_metrics=record["baseline_metrics"],
            baseline_version=record["baseline_version"],
            slices=record["slices"],
            skipped_slices=record["skipped_slices"],
            evaluation_seconds=record["evaluation_seconds"],
            intervals=record.get("intervals", {}),
            simple_baselines=record.get("simple_baselines", {}),
            calibration_curves=record.get("calibration_curves", {}),
            bias_metrics=record.get("bias_metrics", {}),
            decision_threshold=record.get("decision_threshold", 0.5),
            label_kind=record.get("label_kind", label_kinds.BINARY),
            classes=record.get("classes", []),
            per_class=record.get("per_class", {}),
            fairness_metric=record.get("fairness_metric", ""),
        )


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    return {k: finite_or_none(v) for k, v in metrics.items()}


def read_blessing(blessing_dir: str) -> Blessing:
    return Blessing.from_dict(fio.read_json(fio.join(blessing_dir, names.BLESSING_FILE)))


