"""The gates a candidate must pass to be blessed: plain functions over figures TFMA computed.

Every gate records its point estimate, the 95% interval TFMA gave for it (when it computed one),
the number of examples behind it and the rule it applied (`gate_rule`):

* point_estimate: the point estimate must meet the bound;
* interval_bound: the unfavourable end of the interval must meet it (the stricter reading: a gate
  on 57 positives cannot pass on luck).

A gate that cannot be judged fails, except where there is nothing to judge (no slice configured,
no champion): those are recorded as not applicable.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from components.common import label_kinds as kinds
from components.common.gate_policy import RULE_INTERVAL, RULE_POINT

GATE_METRIC_FLOOR = "metric_floor"
GATE_NO_REGRESSION = "no_regression"
GATE_FAIRNESS = "fairness"
GATE_CALIBRATION = "calibration"
GATE_BASELINE = "baseline"

# The metric each kind's floor, no-regression and baseline gates judge (higher is better), as
# blessing.json's metrics name it, and how the details and reports write it.
PRIMARY_METRIC = {kinds.BINARY: "auc", kinds.MULTICLASS: "macro_auc", kinds.REGRESSION: "r2"}
PRIMARY_LABEL = {kinds.BINARY: "AUC", kinds.MULTICLASS: "macro AUC", kinds.REGRESSION: "R²"}

Z_95 = 1.959964  # two-sided 95% normal quantile, for a gap's interval from two standard errors


def finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


@dataclasses.dataclass
class Gate:
    name: str
    passed: bool
    value: float | None
    threshold: float
    detail: str
    applicable: bool = True
    """False when the gate has nothing to judge (no slice configured): recorded as such, not as a pass."""
    lower: float | None = None
    upper: float | None = None
    """The 95% interval of `value` (None where none was computed)."""
    n: int | None = None
    """Examples behind `value` (eval rows; for a gap, those of its two slice values)."""
    rule: str = RULE_POINT

    @property
    def verdict(self) -> str:
        return "N/A" if not self.applicable else "PASS" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": bool(self.passed),
            "applicable": bool(self.applicable),
            "value": finite_or_none(self.value),
            "lower": finite_or_none(self.lower),
            "upper": finite_or_none(self.upper),
            "n": None if self.n is None else int(self.n),
            "rule": self.rule,
            "threshold": float(self.threshold),
            "detail": self.detail,
        }


@dataclasses.dataclass
class Interval:
    lower: float | None = None
    upper: float | None = None
    standard_error: float | None = None

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> "Interval":
        record = record or {}
        return cls(*(finite_or_none(record.get(k)) for k in ("lower", "upper", "standard_error")))

    def text(self) -> str:
        return "" if self.lower is None or self.upper is None else f" [95% CI {self.lower:.4f}, {self.upper:.4f}]"


def difference_interval(difference: float, se_a: float | None, se_b: float | None) -> Interval:
    """95% interval of a difference of two independent estimates; empty without both errors."""
    if se_a is None or se_b is None:
        return Interval()
    half = Z_95 * math.sqrt(se_a ** 2 + se_b ** 2)
    return Interval(difference - half, difference + half)


def _judged(value: float, interval: Interval, rule: str, favourable_high: bool) -> tuple[float, str]:
    """The figure the rule compares with the bound: the point estimate, or the interval's
    unfavourable end (lower when higher is better). No interval under interval_bound: the point
    estimate, said so."""
    if rule == RULE_INTERVAL:
        end = interval.lower if favourable_high else interval.upper
        if end is not None:
            return end, "interval bound"
        return value, "point estimate (no interval computed)"
    return value, "point estimate"


def _tfma_judged_on(interval: Interval, end: str) -> str:
    """What TFMA's own threshold was checked on: its interval's `end`, or the point estimate where
    it computed no interval (confidence_intervals off)."""
    return f"on its interval's {end}" if interval.lower is not None else "on the point estimate"


def _count(metrics: dict[str, Any]) -> int | None:
    n = finite_or_none(metrics.get("example_count"))
    return None if n is None else int(n)


def metric_floor_gate(metrics: dict[str, float | None], interval: Interval, auc_floor: float,
                      tfma_failures: list[str], rule: str = RULE_POINT, candidate: str = "candidate",
                      metric: str = "auc", label: str = "AUC") -> Gate:
    """`metric` (named `label`; the AUC, the macro AUC or the R²) >= its floor."""
    auc = finite_or_none(metrics.get(metric))
    n = _count(metrics)
    if auc is None:
        return Gate(GATE_METRIC_FLOOR, False, None, auc_floor, f"candidate {label} undefined", n=n, rule=rule)
    judged, what = _judged(auc, interval, rule, favourable_high=True)
    passed = judged >= auc_floor
    detail = (f"candidate {label} {auc:.4f}{interval.text()}: {what} {judged:.4f} "
              f"{'>=' if passed else '<'} floor {auc_floor:g}")
    value_failures = [f for f in tfma_failures if "(value)" in f and f.startswith(candidate)]
    detail += (f"; TFMA's value threshold ({_tfma_judged_on(interval, 'lower bound')}) "
               + ("failed" if value_failures else "passed"))
    return Gate(GATE_METRIC_FLOOR, passed, auc, auc_floor, detail, lower=interval.lower, upper=interval.upper,
                n=n, rule=rule)


def no_regression_gate(
    metrics: dict[str, float | None],
    baseline_metrics: dict[str, float | None] | None,
    baseline_version: str | None,
    max_auc_regression: float,
    tfma_failures: list[str],
    change_interval: Interval | None = None,
    rule: str = RULE_POINT,
    metric: str = "auc",
    label: str = "AUC",
) -> Gate:
    n = _count(metrics)
    if baseline_metrics is None:
        return Gate(GATE_NO_REGRESSION, True, None, max_auc_regression,
                    "not applicable: no champion to compare with", applicable=False, n=n, rule=rule)
    auc = finite_or_none(metrics.get(metric))
    base = finite_or_none(baseline_metrics.get(metric))
    if auc is None or base is None:
        return Gate(GATE_NO_REGRESSION, False, None, max_auc_regression,
                    f"{label} undefined (candidate {fmt(auc)}, champion {fmt(base)})", n=n, rule=rule)
    change = auc - base
    interval = change_interval or Interval()
    judged, what = _judged(change, interval, rule, favourable_high=True)
    passed = judged >= -max_auc_regression
    who = f"champion {baseline_version}" if baseline_version else "champion"
    detail = (f"candidate {label} {auc:.4f} vs {who} {base:.4f}: change {change:+.4f}{interval.text()}, "
              f"{what} {judged:+.4f} {'within' if passed else 'exceeds'} allowed drop {max_auc_regression:g}")
    change_failures = [f for f in tfma_failures if "(change)" in f]
    detail += (f"; TFMA's change threshold ({_tfma_judged_on(interval, 'bound')}) "
               + ("failed" if change_failures else "passed"))
    return Gate(GATE_NO_REGRESSION, passed, change, max_auc_regression, detail, lower=interval.lower,
                upper=interval.upper, n=n, rule=rule)


def slice_gaps(
    slices: dict[str, dict[str, dict[str, float | None]]],
    fairness_metric: str,
    min_slice_examples: int,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Per slice column, the values the fairness gate compares ({value: metric}), and the values it
    skips with why: too few examples, or the metric undefined (e.g. an FNR without positives).
    The one place the eligible values are chosen (the gate and both reports use it)."""
    eligible: dict[str, dict[str, float]] = {}
    skipped: list[dict[str, Any]] = []
    for column, values in slices.items():
        eligible[column] = {}
        for value, m in sorted(values.items()):
            n = int(m.get("example_count") or 0)
            metric = finite_or_none(m.get(fairness_metric))
            reason = None
            if n < min_slice_examples:
                reason = f"{n} examples < min_slice_examples {min_slice_examples}"
            elif metric is None:
                reason = f"{fairness_metric} undefined (e.g. no examples of the class it needs)"
            if reason:
                skipped.append({"slice": f"{column}={value}", "column": column, "value": value,
                                "example_count": n, "reason": reason})
            else:
                eligible[column][value] = metric
    return eligible, skipped


@dataclasses.dataclass
class Gap:
    column: str
    gap: float
    high: str
    low: str
    lower: float | None
    upper: float | None
    n: int


def column_gap(column: str, eligible: dict[str, float], slices: dict[str, dict[str, Any]],
               intervals: dict[str, Interval]) -> Gap | None:
    """Largest minus smallest eligible value, with a 95% interval from the two values' standard
    errors (independent slices: se = sqrt(se_a² + se_b²)). None with fewer than two values."""
    if len(eligible) < 2:
        return None
    high = max(eligible, key=eligible.get)
    low = min(eligible, key=eligible.get)
    gap = eligible[high] - eligible[low]
    interval = difference_interval(gap, *(intervals.get(v, Interval()).standard_error for v in (high, low)))
    n = sum(int(slices[v].get("example_count") or 0) for v in (high, low))
    return Gap(column, gap, high, low, interval.lower, interval.upper, n)


def fairness_gate(
    slices: dict[str, dict[str, dict[str, float | None]]],
    fairness_metric: str,
    fairness_max_gap: float,
    min_slice_examples: int,
    require_assessment: bool,
    intervals: dict[str, dict[str, Interval]] | None = None,
    rule: str = RULE_POINT,
) -> tuple[Gate, list[dict[str, Any]]]:
    """Largest per-column gap of fairness_metric over slice values with enough examples.

    `intervals`: column → value → the fairness metric's interval. No slice column configured: not
    applicable (recorded, neither pass nor fail). Columns that cannot be assessed (fewer than two
    values with enough examples): the gate fails closed unless require_assessment is off, since an
    unmeasured gap is not a small one."""
    eligible, skipped = slice_gaps(slices, fairness_metric, min_slice_examples)
    if not slices:
        return Gate(GATE_FAIRNESS, True, None, fairness_max_gap, "not applicable: no slice column configured",
                    applicable=False, rule=rule), skipped
    gaps: list[tuple[Gap, float]] = []
    notes: list[str] = []
    for column, values in eligible.items():
        gap = column_gap(column, values, slices[column], (intervals or {}).get(column, {}))
        if gap is None:
            notes.append(f"{column}: fewer than 2 slice values eligible, no gap computed")
            continue
        judged, what = _judged(gap.gap, Interval(gap.lower, gap.upper), rule, favourable_high=False)
        gaps.append((gap, judged))
        interval = Interval(gap.lower, gap.upper).text()
        notes.append(
            f"{column}: {fairness_metric} gap {gap.gap:.4f}{interval} ({gap.high} {values[gap.high]:.4f} vs "
            f"{gap.low} {values[gap.low]:.4f}), {what} {judged:.4f} "
            f"{'<=' if judged <= fairness_max_gap else '>'} {fairness_max_gap:g}"
        )
    if not gaps:
        verdict = ("failed closed (fairness_require_assessment)" if require_assessment
                   else "passed: fairness_require_assessment is off")
        return Gate(GATE_FAIRNESS, not require_assessment, None, fairness_max_gap,
                    f"not assessed, {verdict}: " + "; ".join(notes), rule=rule), skipped
    worst, _ = max(gaps, key=lambda g: g[1])
    passed = all(judged <= fairness_max_gap for _, judged in gaps)
    return Gate(GATE_FAIRNESS, passed, worst.gap, fairness_max_gap, "; ".join(notes), lower=worst.lower,
                upper=worst.upper, n=worst.n, rule=rule), skipped


def calibration_gate(metrics: dict[str, float | None], interval: Interval, band: tuple[float, float],
                     max_ece: float, rule: str = RULE_POINT) -> Gate:
    """Calibration (mean prediction / mean label) within `band` and expected calibration error
    <= max_ece. Under interval_bound the whole interval of calibration must lie in the band."""
    calibration = finite_or_none(metrics.get("calibration"))
    ece = finite_or_none(metrics.get("expected_calibration_error"))
    n = _count(metrics)
    low, high = band
    if calibration is None or ece is None:
        return Gate(GATE_CALIBRATION, False, calibration, max_ece,
                    f"calibration {fmt(calibration)} or ECE {fmt(ece)} undefined", n=n, rule=rule)
    ends = [calibration, calibration]
    what = "point estimate"
    if rule == RULE_INTERVAL and interval.lower is not None and interval.upper is not None:
        ends, what = [interval.lower, interval.upper], "interval"
    in_band = low <= ends[0] and ends[1] <= high
    passed = in_band and ece <= max_ece
    detail = (f"calibration {calibration:.4f}{interval.text()}: {what} "
              f"{'within' if in_band else 'outside'} [{low:g}, {high:g}]; expected calibration error "
              f"{ece:.4f} {'<=' if ece <= max_ece else '>'} {max_ece:g}")
    return Gate(GATE_CALIBRATION, passed, calibration, max_ece, detail, lower=interval.lower,
                upper=interval.upper, n=n, rule=rule)


def multiclass_calibration_gate(metrics: dict[str, float | None], interval: Interval, max_ece: float,
                                rule: str = RULE_POINT) -> Gate:
    """Multiclass: the expected calibration error of the top class's confidence (ten equal-width
    bins, |accuracy - mean confidence| weighted by the bin's share) <= max_ece."""
    ece = finite_or_none(metrics.get("expected_calibration_error"))
    n = _count(metrics)
    if ece is None:
        return Gate(GATE_CALIBRATION, False, None, max_ece, "top-class expected calibration error undefined",
                    n=n, rule=rule)
    judged, what = _judged(ece, interval, rule, favourable_high=False)
    passed = judged <= max_ece
    detail = (f"expected calibration error of the top-class confidence {ece:.4f}{interval.text()} "
              f"(mean confidence {fmt(finite_or_none(metrics.get('mean_confidence')))}, accuracy "
              f"{fmt(finite_or_none(metrics.get('accuracy')))}): {what} {judged:.4f} "
              f"{'<=' if passed else '>'} {max_ece:g}")
    return Gate(GATE_CALIBRATION, passed, ece, max_ece, detail, lower=interval.lower, upper=interval.upper,
                n=n, rule=rule)


def regression_calibration_gate(metrics: dict[str, float | None], interval: Interval, band: tuple[float, float],
                                rule: str = RULE_POINT) -> Gate:
    """Regression: calibration of the mean (mean prediction / mean label) within `band`; with a mean
    label <= 0 the ratio says nothing about bias, so the gate is not applicable (said so)."""
    calibration = finite_or_none(metrics.get("calibration"))
    mean_label = finite_or_none(metrics.get("mean_label"))
    mean_prediction = finite_or_none(metrics.get("mean_prediction"))
    n, (low, high) = _count(metrics), band
    if mean_label is not None and mean_label <= 0:
        return Gate(GATE_CALIBRATION, True, calibration, high,
                    f"not applicable: mean label {mean_label:.4f} <= 0, mean prediction / mean label is no "
                    "measure of bias", applicable=False, n=n, rule=rule)
    if calibration is None:
        return Gate(GATE_CALIBRATION, False, None, high, "calibration of the mean undefined", n=n, rule=rule)
    ends, what = [calibration, calibration], "point estimate"
    if rule == RULE_INTERVAL and interval.lower is not None and interval.upper is not None:
        ends, what = [interval.lower, interval.upper], "interval"
    passed = low <= ends[0] and ends[1] <= high
    detail = (f"calibration of the mean (mean prediction {fmt(mean_prediction)} / mean label {fmt(mean_label)}) "
              f"{calibration:.4f}{interval.text()}: {what} {'within' if passed else 'outside'} [{low:g}, {high:g}]")
    return Gate(GATE_CALIBRATION, passed, calibration, high, detail, lower=interval.lower, upper=interval.upper,
                n=n, rule=rule)


def baseline_gate(candidate_auc: float | None, baseline: dict[str, Any] | None, margin: float,
                  n: int | None = None, candidate_interval: Interval | None = None,
                  rule: str = RULE_POINT, metric: str = "auc", label: str = "AUC") -> Gate:
    """Candidate `metric` >= the simple baseline's - margin (baseline.py fits it on the same split).

    The change's interval treats the two figures as independent (sqrt(se_a² + se_b²), the binary
    baseline's se by DeLong; the other kinds' baselines record none, so no interval): both models
    score the same rows, so it is wider than a paired one and interval_bound judges
    conservatively. No baseline figure: not applicable."""
    if baseline is None or finite_or_none(baseline.get(metric)) is None:
        return Gate(GATE_BASELINE, True, None, margin, f"not applicable: no baseline {label}", applicable=False,
                    n=n, rule=rule)
    name, auc = baseline["name"], float(baseline[metric])
    if candidate_auc is None or not math.isfinite(candidate_auc):
        return Gate(GATE_BASELINE, False, None, margin, f"candidate {label} undefined; {name} {label} {auc:.4f}",
                    n=n, rule=rule)
    change = candidate_auc - auc
    interval = difference_interval(change, (candidate_interval or Interval()).standard_error,
                                   finite_or_none(baseline.get(f"{metric}_standard_error")))
    judged, what = _judged(change, interval, rule, favourable_high=True)
    passed = judged >= -margin
    brier = f" (Brier {fmt(finite_or_none(baseline.get('brier')))})" if "brier" in baseline else ""
    detail = (f"candidate {label} {candidate_auc:.4f} vs {name} baseline {auc:.4f}{brier}: "
              f"change {change:+.4f}{interval.text()}, "
              f"{what} {judged:+.4f} {'within' if passed else 'exceeds'} margin {margin:g}")
    return Gate(GATE_BASELINE, passed, change, margin, detail, lower=interval.lower, upper=interval.upper,
                n=n, rule=rule)
