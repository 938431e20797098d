"""The gate policy: the bounds a candidate must meet to be blessed. One place for their defaults;
the pipeline config, the evaluate component and components/evaluate/gates.py read them from here."""

from __future__ import annotations

import dataclasses

from components.common.errors import PipelineInputError

FAIRNESS_METRICS = {"false_negative_rate", "false_positive_rate", "auc", "accuracy"}
# The fairness metrics of the other label kinds; a policy naming a metric of another kind gets the
# kind's default (multiclass: accuracy; regression: the per-slice MAE relative to the overall MAE).
MULTICLASS_FAIRNESS_METRICS = {"accuracy", "macro_f1", "macro_auc"}
REGRESSION_FAIRNESS_METRICS = {"relative_mean_absolute_error", "mean_absolute_error", "root_mean_squared_error"}
ALL_FAIRNESS_METRICS = FAIRNESS_METRICS | MULTICLASS_FAIRNESS_METRICS | REGRESSION_FAIRNESS_METRICS
RULE_POINT = "point_estimate"
RULE_INTERVAL = "interval_bound"
GATE_RULES = (RULE_POINT, RULE_INTERVAL)


@dataclasses.dataclass(frozen=True)
class GatePolicy:
    auc_floor: float = 0.70
    max_auc_regression: float = 0.01
    fairness_metric: str = "false_negative_rate"
    fairness_max_gap: float = 0.25
    decision_threshold: float = 0.0
    """Where a probability becomes a positive decision (FPR/FNR, accuracy, the fairness gap);
    0: the threshold train chose on the validation split (Youden's J, model_info.json)."""
    min_slice_examples: int = 20
    fairness_require_assessment: bool = True
    """A fairness gate that cannot be assessed (fewer than two slice values with min_slice_examples)
    fails; False lets such a run pass, said so in the gate's detail."""
    calibration_min: float = 0.8
    calibration_max: float = 1.25
    """Calibration gate: mean prediction / positive rate on eval within [min, max] ..."""
    max_expected_calibration_error: float = 0.05
    """... and the expected calibration error (ten equal-width bins) at most this."""
    baseline_auc_margin: float = 0.01
    """Baseline gate: candidate AUC >= a logistic regression's on the same splits - this margin
    (multiclass: macro one-vs-rest AUC against the best of a majority-class and a multinomial
    logistic regression)."""
    r2_floor: float = 0.0
    """Regression labels: the floor gate's bound on the candidate's R² (0: better than predicting the
    eval mean); binary and multiclass labels use auc_floor (multiclass: macro one-vs-rest AUC)."""
    max_r2_regression: float = 0.01
    """Regression labels: the largest drop in R² allowed against the champion."""
    baseline_r2_margin: float = 0.01
    """Regression labels: candidate R² >= the best of a mean predictor and a ridge regression - this."""
    gate_rule: str = RULE_POINT
    """point_estimate | interval_bound: what each gate compares with its bound (the unfavourable end
    of TFMA's 95% jackknife interval under interval_bound)."""
    confidence_intervals: bool = True
    """TFMA's 95% jackknife interval on every metric and slice, recorded with each gate. False skips
    them for faster iteration (TFMA 3.7-7.5 times faster on 2,000 eval rows, bench_tfma.py): the
    gates then record point estimates without an interval, so interval_bound cannot be used."""

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.auc_floor <= 1.0:
            problems.append(f"auc_floor must be in [0, 1], got {self.auc_floor}")
        if not 0.0 <= self.decision_threshold < 1.0:
            problems.append(f"decision_threshold must be in [0, 1) (0: the model's own), got {self.decision_threshold}")
        if self.fairness_metric not in ALL_FAIRNESS_METRICS:
            problems.append(f"fairness_metric must be one of {sorted(ALL_FAIRNESS_METRICS)}, got {self.fairness_metric!r}")
        if not self.r2_floor <= 1.0:
            problems.append(f"r2_floor must be <= 1, got {self.r2_floor}")
        if not 0 < self.calibration_min <= 1 <= self.calibration_max:
            problems.append(f"the calibration band [{self.calibration_min:g}, {self.calibration_max:g}] must hold 1")
        if self.max_expected_calibration_error <= 0:
            problems.append("max_expected_calibration_error must be > 0")
        if self.gate_rule not in GATE_RULES:
            problems.append(f"gate_rule must be one of {list(GATE_RULES)}, got {self.gate_rule!r}")
        elif self.gate_rule == RULE_INTERVAL and not self.confidence_intervals:
            problems.append(f"gate_rule {RULE_INTERVAL} judges by TFMA's intervals, which confidence_intervals=False "
                            f"turns off: turn them on or use gate_rule {RULE_POINT}")
        if problems:
            raise PipelineInputError("invalid gate policy: " + "; ".join(problems))

    def with_model_threshold(self, model_threshold: float | None) -> "GatePolicy":
        """This policy with decision_threshold 0 replaced by the model's own."""
        if self.decision_threshold > 0:
            return self
        if model_threshold is None or not 0.0 < model_threshold < 1.0:
            raise PipelineInputError(
                "decision_threshold is 0 (the model's own) but the model records no decision threshold "
                f"in (0, 1) (got {model_threshold!r}); set decision_threshold")
        return dataclasses.replace(self, decision_threshold=float(model_threshold))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]
