"""Evaluate: TFMA over the eval split → per-slice metrics, quality gates and a blessing.

One Beam pass (DirectRunner locally; Dataflow/Flink/Spark with beam_args) runs TFMA on the
candidate and, when a champion exists, the baseline model: TFMA computes both models' metrics, their
diff and its own validation result (AUC value threshold + change threshold) in the same pass.

Three gates decide the blessing, each recorded with its value, threshold and a readable detail:

* `metric_floor`: candidate overall AUC >= auc_floor.
* `no_regression`: candidate AUC >= baseline AUC - max_auc_regression (passes, "no champion",
  when there is no baseline).
* `fairness`: for every slice column, the largest gap of `fairness_metric` between its values,
  counting only values with >= min_slice_examples examples, is <= fairness_max_gap. Slice values
  below the minimum (or whose metric is undefined, e.g. a false negative rate without positives) are
  listed in `skipped_slices`, never silently dropped. Fewer than two eligible values: the gate
  fails closed (unless fairness_require_assessment is off); no slice column: not applicable.

Outputs: TFMA's output in `evaluation_dir` (tfma.load_eval_result works on it), and
`<blessing_dir>/blessing.json` + `<blessing_dir>/fairness_report.{md,html}` (the HTML page also
carries the per-slice ROC points and confusion matrices).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

from components.common import io as fio
from components.common import names
from components.common.config import FAIRNESS_METRICS
from components.common.errors import PipelineInputError

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
BASELINE = "baseline"
SIGNATURE = "serving_default"
PREDICTION_KEY = "probability"
FAIRNESS_REPORT_FILE = "fairness_report.md"
FAIRNESS_HTML_FILE = "fairness_report.html"

GATE_METRIC_FLOOR = "metric_floor"
GATE_NO_REGRESSION = "no_regression"
GATE_FAIRNESS = "fairness"

# Our metric names → the TFMA metric names they are read from.
METRIC_NAMES = {
    "auc": "auc",
    "accuracy": "binary_accuracy",
    "precision": "precision",
    "recall": "recall",
    "calibration": "calibration",
    "example_count": "example_count",
    "false_positive_rate": "false_positive_rate",
    "false_negative_rate": "false_negative_rate",
    "mean_label": "mean_label",
    "mean_prediction": "mean_prediction",
}
TFMA_TO_METRIC = {v: k for k, v in METRIC_NAMES.items()}

# Local settings used when no beam_args are given (tests/benchmarks/bench_tfma.py, 20k rows, 3
# slicing specs, 2 shared cores: median 59.5 s vs 87.6 s for DirectRunner defaults and 101.7 s for
# multi_processing on all cores; in-process, no worker start-up or cross-process pickling).
# --runner=FnApiRunner: Beam 2.72's DirectRunner first tries the Prism runner, which it downloads
# from GitHub (fails offline, and changes the engine where it succeeds).
FAST_DIRECT_BEAM_ARGS = (
    "--runner=FnApiRunner",
    "--direct_running_mode=in_memory",
    "--direct_num_workers=1",
)
# Fixed TFXIO batch size: one model call per this many examples.
DEFAULT_BATCH_SIZE = 1000


@dataclasses.dataclass
class Gate:
    name: str
    passed: bool
    value: float | None
    threshold: float
    detail: str
    applicable: bool = True
    """False when the gate has nothing to judge (no slice configured): recorded as such, not as a pass."""

    @property
    def verdict(self) -> str:
        return "N/A" if not self.applicable else "PASS" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": bool(self.passed),
            "applicable": bool(self.applicable),
            "value": _finite_or_none(self.value),
            "threshold": float(self.threshold),
            "detail": self.detail,
        }


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

    def gate(self, name: str) -> Gate:
        return next(g for g in self.gates if g.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blessed": bool(self.blessed),
            "gates": [g.to_dict() for g in self.gates],
            "metrics": _clean_metrics(self.metrics),
            "baseline_metrics": None if self.baseline_metrics is None else _clean_metrics(self.baseline_metrics),
            "baseline_version": self.baseline_version,
            "slices": {
                column: {value: _clean_metrics(m) for value, m in values.items()}
                for column, values in self.slices.items()
            },
            "skipped_slices": list(self.skipped_slices),
            "evaluation_seconds": float(self.evaluation_seconds),
        }

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
        )


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clean_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    return {k: _finite_or_none(v) for k, v in metrics.items()}


def read_blessing(blessing_dir: str) -> Blessing:
    return Blessing.from_dict(fio.read_json(fio.join(blessing_dir, names.BLESSING_FILE)))


# --------------------------------------------------------------------------------------------
# Inputs


def resolve_saved_model(model_dir: str, role: str = "model") -> str:
    """The SavedModel directory: `<model_dir>/saved_model/` or `model_dir` itself."""
    if not model_dir:
        raise PipelineInputError(f"{role} directory is empty")
    nested = fio.join(model_dir, names.SAVED_MODEL_DIR)
    for candidate in (nested, model_dir):
        if fio.exists(fio.join(candidate, "saved_model.pb")):
            return candidate
    if not fio.exists(model_dir):
        raise PipelineInputError(f"{role} directory {model_dir} does not exist")
    raise PipelineInputError(
        f"{role} directory {model_dir} holds no SavedModel (expected {nested}/saved_model.pb)"
    )


def _check_inputs(examples_dir: str, label: str, slices: list[str]) -> tuple[str, list[str], str]:
    from components.ingest.ingest import read_metadata, sanitize_name, split_path

    eval_path = split_path(examples_dir, names.EVAL)
    metadata_path = fio.join(examples_dir, names.EXAMPLES_METADATA_FILE)
    if not fio.exists(metadata_path):
        raise PipelineInputError(f"{examples_dir}: no {names.EXAMPLES_METADATA_FILE}; not an ingest output")
    if not fio.exists(eval_path):
        raise PipelineInputError(f"{examples_dir}: no eval split at {eval_path}")
    metadata = read_metadata(examples_dir)
    columns = set(metadata.get("column_types", {}))
    label = sanitize_name(label) if label else ""
    if not label or label not in columns:
        raise PipelineInputError(
            f"label {label!r} is not a column of {examples_dir} (columns: {sorted(columns)})"
        )
    clean_slices = []
    for column in slices:
        name = sanitize_name(column)
        if name not in columns:
            raise PipelineInputError(
                f"slice {column!r} is not a column of {examples_dir} (columns: {sorted(columns)})"
            )
        if name == label:
            raise PipelineInputError(f"slice {column!r} is the label")
        if name not in clean_slices:
            clean_slices.append(name)
    return label, clean_slices, eval_path


# --------------------------------------------------------------------------------------------
# TFMA


def build_eval_config(
    label: str,
    slices: list[str],
    *,
    has_baseline: bool,
    auc_floor: float,
    max_auc_regression: float,
    decision_threshold: float,
):
    """EvalConfig: candidate (+ baseline), overall + per-column slices, metrics and thresholds."""
    import json

    import tensorflow_model_analysis as tfma

    model_specs = [
        tfma.ModelSpec(
            name=CANDIDATE, label_key=label, signature_name=SIGNATURE, prediction_key=PREDICTION_KEY
        )
    ]
    if has_baseline:
        model_specs.append(
            tfma.ModelSpec(
                name=BASELINE,
                label_key=label,
                signature_name=SIGNATURE,
                prediction_key=PREDICTION_KEY,
                is_baseline=True,
            )
        )
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": auc_floor})
    )
    if has_baseline:
        auc_threshold.change_threshold.CopyFrom(
            tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                absolute={"value": -max_auc_regression},
            )
        )
    at = json.dumps({"thresholds": [decision_threshold]})

    def at_threshold(class_name: str, name: str) -> Any:
        return tfma.MetricConfig(
            class_name=class_name, config=json.dumps({"thresholds": [decision_threshold], "name": name})
        )

    metrics = [
        tfma.MetricConfig(class_name="ExampleCount"),
        tfma.MetricConfig(class_name="AUC", threshold=auc_threshold),
        tfma.MetricConfig(class_name="BinaryAccuracy", config=json.dumps({"threshold": decision_threshold})),
        tfma.MetricConfig(class_name="Precision", config=at),
        tfma.MetricConfig(class_name="Recall", config=at),
        # Fairness indicators at the decision threshold.
        at_threshold("FallOut", "false_positive_rate"),
        at_threshold("MissRate", "false_negative_rate"),
        tfma.MetricConfig(class_name="Calibration"),
        tfma.MetricConfig(class_name="MeanLabel"),
        tfma.MetricConfig(class_name="MeanPrediction"),
        # ROC points and the confusion matrix at the decision threshold (KFP ClassificationMetrics).
        tfma.MetricConfig(
            class_name="ConfusionMatrixAtThresholds",
            config=json.dumps({"thresholds": curve_thresholds(decision_threshold)}),
        ),
    ]
    slicing_specs = [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[c]) for c in slices]
    return tfma.EvalConfig(
        model_specs=model_specs,
        slicing_specs=slicing_specs,
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def curve_thresholds(decision_threshold: float) -> list[float]:
    """ROC thresholds: a 5% grid, just below 0 (everything positive), and the decision threshold."""
    grid = {-1e-7, 1.0, float(decision_threshold)} | {round(i / 20, 2) for i in range(1, 20)}
    return sorted(grid)


def effective_beam_args(beam_args: list[str] | None) -> list[str]:
    return list(beam_args) if beam_args else list(FAST_DIRECT_BEAM_ARGS)


def run_tfma(
    eval_path: str,
    eval_config,
    models: dict[str, str],
    output_path: str,
    beam_args: list[str] | None = None,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> None:
    """One Beam pipeline: read the eval TFRecords, run TFMA for all `models`, write results."""
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_model_analysis import constants as tfma_constants
    from tfx_bsl.public import tfxio as tfxio_lib

    shared = [
        tfma.default_eval_shared_model(eval_saved_model_path=path, model_name=name, eval_config=eval_config)
        for name, path in models.items()
    ]
    source = tfxio_lib.TFExampleRecord(
        file_pattern=eval_path,
        raw_record_column_name=tfma_constants.ARROW_INPUT_COLUMN,
        telemetry_descriptors=["kfp-prod-components", "evaluate"],
    )
    with beam.Pipeline(options=PipelineOptions(effective_beam_args(beam_args))) as pipeline:
        _ = (
            pipeline
            | "ReadEvalExamples" >> source.BeamSource(batch_size=batch_size)
            | "TFMA"
            >> tfma.ExtractEvaluateAndWriteResults(
                eval_shared_model=shared if len(shared) > 1 else shared[0],
                eval_config=eval_config,
                output_path=output_path,
            )
        )


def _slice_value(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_tfma_metrics(output_path: str) -> dict[str, dict[tuple, dict[str, float]]]:
    """{model_name: {slice_key: {our_metric_name: value}}}; slice_key () is overall."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.slicer import slicer_lib

    out: dict[str, dict[tuple, dict[str, float]]] = {}
    for record in tfma.load_metrics(output_path):
        key = slicer_lib.deserialize_slice_key(record.slice_key)
        slice_key = tuple((column, _slice_value(value)) for column, value in key)
        for kv in record.metric_keys_and_values:
            name = TFMA_TO_METRIC.get(kv.key.name)
            if name is None or kv.key.is_diff or kv.key.HasField("sub_key"):
                continue
            if not kv.value.HasField("double_value"):
                continue
            model = kv.key.model_name or CANDIDATE
            out.setdefault(model, {}).setdefault(slice_key, {})[name] = kv.value.double_value.value
    return out


def read_tfma_validation(output_path: str) -> tuple[bool, list[str]]:
    """TFMA's own verdict on the AUC value/change thresholds: (ok, failure messages)."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(output_path)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            kind = "change" if failure.metric_key.is_diff else "value"
            failures.append(
                f"{failure.metric_key.model_name or CANDIDATE} {failure.metric_key.name} ({kind}): "
                f"{failure.message}".strip()
            )
    return bool(result.validation_ok), failures


OVERALL = "overall"


def slice_name(slice_key: tuple) -> str:
    """"overall" for the whole eval split, "afam=yes" (or "a=x,b=y") for a slice."""
    return ",".join(f"{column}={value}" for column, value in slice_key) or OVERALL


def _curve(matrices, decision_threshold: float) -> dict[str, Any]:
    roc, confusion = [], [[0, 0], [0, 0]]
    for m in matrices:
        negatives, positives = m.true_negatives + m.false_positives, m.true_positives + m.false_negatives
        fpr = m.false_positives / negatives if negatives else 0.0
        tpr = m.true_positives / positives if positives else 0.0
        roc.append((float(fpr), float(tpr), float(m.threshold)))
    if matrices:
        decision = min(matrices, key=lambda m: abs(m.threshold - decision_threshold))
        confusion = [
            [int(decision.true_negatives), int(decision.false_positives)],
            [int(decision.false_negatives), int(decision.true_positives)],
        ]
    return {"roc": roc, "confusion_matrix": confusion}


def classification_curves(
    output_path: str, decision_threshold: float = 0.5, model_name: str = CANDIDATE
) -> dict[str, dict[str, Any]]:
    """Per slice ("overall", "afam=yes", ...): the model's ROC points [(fpr, tpr, threshold)] and
    its confusion matrix [[tn, fp], [fn, tp]] at the decision threshold, from TFMA's
    ConfusionMatrixAtThresholds. Overall first, then slices in name order."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.slicer import slicer_lib

    curves: dict[str, dict[str, Any]] = {}
    for record in tfma.load_metrics(output_path):
        key = slicer_lib.deserialize_slice_key(record.slice_key)
        name = slice_name(tuple((column, _slice_value(value)) for column, value in key))
        for kv in record.metric_keys_and_values:
            if (kv.key.name == "confusion_matrix_at_thresholds" and not kv.key.is_diff
                    and (kv.key.model_name or CANDIDATE) == model_name):
                curves[name] = _curve(list(kv.value.confusion_matrix_at_thresholds.matrices), decision_threshold)
    ordered = {OVERALL: curves.pop(OVERALL)} if OVERALL in curves else {}
    ordered.update(sorted(curves.items()))
    return ordered


def classification_curve(
    output_path: str, decision_threshold: float = 0.5, model_name: str = CANDIDATE
) -> dict[str, Any]:
    """The model's overall ROC points and confusion matrix (see classification_curves)."""
    curves = classification_curves(output_path, decision_threshold, model_name)
    return curves.get(OVERALL, {"roc": [], "confusion_matrix": [[0, 0], [0, 0]]})


CONFUSION_CATEGORIES = ["0", "1"]


def log_classification_metrics(artifact, curve: dict[str, Any]) -> None:
    """Fill a kfp ClassificationMetrics artifact: ROC points and the confusion matrix."""
    if curve["roc"]:
        fpr, tpr, thresholds = zip(*curve["roc"])
        artifact.log_roc_curve(list(fpr), list(tpr), list(thresholds))
    artifact.log_confusion_matrix(CONFUSION_CATEGORIES, curve["confusion_matrix"])


def log_sliced_classification_metrics(artifact, curves: dict[str, dict[str, Any]]) -> None:
    """Fill a kfp SlicedClassificationMetrics artifact, one ClassificationMetrics per slice.

    kfp 2.13's own SlicedClassificationMetrics methods cannot do it: `_sliced_metrics` is never
    initialised, load_roc_readings calls a ClassificationMetrics method that does not exist and
    load_confusion_matrix calls log_confusion_matrix_cell with the wrong arguments
    (kubeflow/pipelines#8117, #10250). So each slice is filled through ClassificationMetrics' working
    API and stored in the schema SlicedClassificationMetrics._update_metadata writes.
    """
    from kfp import dsl

    entries = []
    for name, curve in curves.items():
        per_slice = dsl.ClassificationMetrics()
        log_classification_metrics(per_slice, curve)
        entries.append({"slice": name, "sliceClassificationMetrics": dict(per_slice.metadata)})
    artifact.metadata["evaluationSlices"] = entries


# --------------------------------------------------------------------------------------------
# Gates


def _full_metrics(values: dict[str, float] | None) -> dict[str, float | None]:
    values = values or {}
    return {name: values.get(name) for name in METRIC_NAMES}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def metric_floor_gate(metrics: dict[str, float | None], auc_floor: float, tfma_failures: list[str]) -> Gate:
    auc = _finite_or_none(metrics.get("auc"))
    passed = auc is not None and auc >= auc_floor
    detail = f"candidate AUC {_fmt(auc)} {'>=' if passed else '<'} floor {auc_floor:g}"
    value_failures = [f for f in tfma_failures if "(value)" in f and f.startswith(CANDIDATE)]
    if value_failures and passed:
        log.warning("TFMA's value threshold failed although AUC passed: %s", value_failures)
    detail += "; TFMA value threshold " + ("failed" if value_failures else "passed")
    return Gate(GATE_METRIC_FLOOR, passed, auc, auc_floor, detail)


def no_regression_gate(
    metrics: dict[str, float | None],
    baseline_metrics: dict[str, float | None] | None,
    baseline_version: str | None,
    max_auc_regression: float,
    tfma_failures: list[str],
) -> Gate:
    if baseline_metrics is None:
        return Gate(GATE_NO_REGRESSION, True, None, max_auc_regression, "no champion")
    auc = _finite_or_none(metrics.get("auc"))
    base = _finite_or_none(baseline_metrics.get("auc"))
    if auc is None or base is None:
        return Gate(
            GATE_NO_REGRESSION, False, None, max_auc_regression,
            f"AUC undefined (candidate {_fmt(auc)}, champion {_fmt(base)})",
        )
    change = auc - base
    passed = change >= -max_auc_regression
    who = f"champion {baseline_version}" if baseline_version else "champion"
    detail = (
        f"candidate AUC {auc:.4f} vs {who} {base:.4f}: change {change:+.4f} "
        f"{'within' if passed else 'exceeds'} allowed drop {max_auc_regression:g}"
    )
    change_failures = [f for f in tfma_failures if "(change)" in f]
    detail += "; TFMA change threshold " + ("failed" if change_failures else "passed")
    return Gate(GATE_NO_REGRESSION, passed, change, max_auc_regression, detail)


def fairness_gate(
    slices: dict[str, dict[str, dict[str, float | None]]],
    fairness_metric: str,
    fairness_max_gap: float,
    min_slice_examples: int,
    require_assessment: bool,
) -> tuple[Gate, list[dict[str, Any]]]:
    """Largest per-column gap of fairness_metric over slice values with enough examples.

    No slice column configured: not applicable (recorded, neither pass nor fail). Columns that
    cannot be assessed (fewer than two values with enough examples): the gate fails closed unless
    require_assessment is off, since an unmeasured gap is not a small one."""
    skipped: list[dict[str, Any]] = []
    gaps: list[tuple[float, str]] = []
    notes: list[str] = []
    for column, values in slices.items():
        eligible: dict[str, float] = {}
        for value, m in sorted(values.items()):
            n = int(m.get("example_count") or 0)
            metric = _finite_or_none(m.get(fairness_metric))
            reason = None
            if n < min_slice_examples:
                reason = f"{n} examples < min_slice_examples {min_slice_examples}"
            elif metric is None:
                reason = f"{fairness_metric} undefined (e.g. no examples of the class it needs)"
            if reason:
                skipped.append(
                    {"slice": f"{column}={value}", "column": column, "value": value,
                     "example_count": n, "reason": reason}
                )
            else:
                eligible[value] = metric
        if len(eligible) < 2:
            notes.append(f"{column}: fewer than 2 slice values eligible, no gap computed")
            continue
        high = max(eligible, key=eligible.get)
        low = min(eligible, key=eligible.get)
        gap = eligible[high] - eligible[low]
        gaps.append((gap, column))
        notes.append(
            f"{column}: {fairness_metric} gap {gap:.4f} ({high} {eligible[high]:.4f} vs "
            f"{low} {eligible[low]:.4f}) {'<=' if gap <= fairness_max_gap else '>'} {fairness_max_gap:g}"
        )
    if not slices:
        return Gate(GATE_FAIRNESS, True, None, fairness_max_gap, "not applicable: no slice column configured",
                    applicable=False), skipped
    if not gaps:
        rule = ("failed closed (fairness_require_assessment)" if require_assessment
                else "passed: fairness_require_assessment is off")
        return Gate(GATE_FAIRNESS, not require_assessment, None, fairness_max_gap,
                    f"not assessed, {rule}: " + "; ".join(notes)), skipped
    largest = max(gaps)[0]
    passed = all(gap <= fairness_max_gap for gap, _ in gaps)
    return Gate(GATE_FAIRNESS, passed, largest, fairness_max_gap, "; ".join(notes)), skipped


# --------------------------------------------------------------------------------------------
# Report


def fairness_report(
    blessing: Blessing, slice_columns: list[str], fairness_metric: str, fairness_max_gap: float,
    min_slice_examples: int, decision_threshold: float,
) -> str:
    lines = [
        f"# Evaluation: {'BLESSED' if blessing.blessed else 'NOT BLESSED'}",
        "",
        f"Fairness bound: largest gap of `{fairness_metric}` between the values of a slice column "
        f"<= {fairness_max_gap:g}, over values with >= {min_slice_examples} examples; "
        f"decision threshold {decision_threshold:g}.",
        "",
        "## Gates",
        "",
    ]
    for gate in blessing.gates:
        lines.append(
            f"- **{gate.name}**: {gate.verdict} "
            f"(value {_fmt(gate.value)}, threshold {gate.threshold:g}) {gate.detail}"
        )
    m = blessing.metrics
    lines += [
        "",
        "## Overall",
        "",
        f"n={_count(m.get('example_count'))}, AUC {_fmt(m.get('auc'))}, "
        f"FPR {_fmt(m.get('false_positive_rate'))}, FNR {_fmt(m.get('false_negative_rate'))}, "
        f"accuracy {_fmt(m.get('accuracy'))}, calibration {_fmt(m.get('calibration'))}",
    ]
    if blessing.baseline_metrics is not None:
        b = blessing.baseline_metrics
        lines.append(
            f"Champion {blessing.baseline_version or ''}: AUC {_fmt(b.get('auc'))}, "
            f"FPR {_fmt(b.get('false_positive_rate'))}, FNR {_fmt(b.get('false_negative_rate'))}"
        )
    skipped = {(s["column"], s["value"]) for s in blessing.skipped_slices}
    for column in slice_columns:
        values = blessing.slices.get(column, {})
        eligible = {
            v: _finite_or_none(x.get(fairness_metric))
            for v, x in values.items() if (column, v) not in skipped
        }
        eligible = {v: x for v, x in eligible.items() if x is not None}
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
                f"| {value} | {_count(x.get('example_count'))} | {_fmt(x.get('auc'))} | "
                f"{_fmt(x.get('false_positive_rate'))} | {_fmt(x.get('false_negative_rate'))} | "
                f"{_fmt(x.get('accuracy'))} | {'no (skipped)' if (column, value) in skipped else 'yes'} |"
            )
    if blessing.skipped_slices:
        lines += ["", "## Skipped slices", ""]
        lines += [f"- {s['slice']}: {s['reason']}" for s in blessing.skipped_slices]
    return "\n".join(lines) + "\n"


def _count(value: Any) -> str:
    return "n/a" if value is None else str(int(value))


# Fairness metrics where a higher value is the worse one (error rates); the others (AUC, accuracy)
# are better when higher, so the gate's band hangs below the best slice value instead.
HIGHER_IS_WORSE = {"false_negative_rate", "false_positive_rate"}
_METRIC_LABELS = {
    "auc": "AUC", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
    "false_positive_rate": "FPR", "false_negative_rate": "FNR", "calibration": "calibration",
    "example_count": "examples", "mean_label": "mean label", "mean_prediction": "mean prediction",
}
_GATE_RULES = {
    GATE_METRIC_FLOOR: "candidate AUC ≥ {t:g}",
    GATE_NO_REGRESSION: "AUC change vs champion ≥ −{t:g}",
    GATE_FAIRNESS: "largest {metric} gap between slice values ≤ {t:g}",
}


def _figure(metrics: dict[str, Any], key: str) -> float | int | None:
    value = _finite_or_none(metrics.get(key))
    return int(value) if key == "example_count" and value is not None else value


def _eligible(blessing: Blessing, column: str, fairness_metric: str) -> dict[str, float]:
    skipped = {(s["column"], s["value"]) for s in blessing.skipped_slices}
    values = {v: _finite_or_none(x.get(fairness_metric)) for v, x in blessing.slices.get(column, {}).items()
              if (column, v) not in skipped}
    return {v: x for v, x in sorted(values.items()) if x is not None}


def fairness_html(
    blessing: Blessing, slice_columns: list[str], fairness_metric: str, fairness_max_gap: float,
    min_slice_examples: int, decision_threshold: float,
    curves: dict[str, dict[str, Any]] | None = None,
    baseline_curve: dict[str, Any] | None = None,
) -> str:
    """A self-contained page: the verdict, each gate, overall metrics (vs the champion), the
    fairness metric per slice value as bars against the gate's band, counts and metrics per slice,
    and per-slice ROC curves and confusion matrices (the figures of the SlicedClassificationMetrics
    output, which the KFP UI does not render)."""
    from components.common import html_report as hr

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
        rows.append([gate.name, hr.badge(badge, gate.verdict),
                     _finite_or_none(gate.value), rule, gate.detail])
    sections.append(hr.section("Gates", hr.table(["gate", "status", "value", "rule", "detail"], rows,
                                                 raw_html_columns=[1])))

    shown = ["auc", "accuracy", "precision", "recall", "false_positive_rate", "false_negative_rate",
             "calibration", "example_count"]
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

    skipped = {(s["column"], s["value"]): s for s in blessing.skipped_slices}
    for column in slice_columns:
        values = blessing.slices.get(column, {})
        eligible = _eligible(blessing, column, fairness_metric)
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
                         *[_finite_or_none(x.get(k)) for k in ("auc", "false_positive_rate", "false_negative_rate",
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


# --------------------------------------------------------------------------------------------
# Entry point


def evaluate(
    examples_dir: str,
    model_dir: str,
    evaluation_dir: str,
    blessing_dir: str,
    *,
    label: str,
    slices: list[str],
    baseline_model_dir: str = "",
    baseline_version: str = "",
    auc_floor: float = 0.7,
    max_auc_regression: float = 0.01,
    fairness_metric: str = "false_negative_rate",
    fairness_max_gap: float = 0.25,
    decision_threshold: float = 0.5,
    min_slice_examples: int = 20,
    fairness_require_assessment: bool = True,
    beam_args: list[str] | None = None,
) -> Blessing:
    """Run TFMA on the eval split, apply the gates, write blessing.json and fairness_report.md."""
    if fairness_metric not in FAIRNESS_METRICS:
        raise PipelineInputError(
            f"fairness_metric {fairness_metric!r} is not one of {sorted(FAIRNESS_METRICS)}"
        )
    label, slices, eval_path = _check_inputs(examples_dir, label, list(slices or []))
    models = {CANDIDATE: resolve_saved_model(model_dir, "model")}
    if baseline_model_dir:
        models[BASELINE] = resolve_saved_model(baseline_model_dir, "baseline (champion) model")
    eval_config = build_eval_config(
        label,
        slices,
        has_baseline=BASELINE in models,
        auc_floor=auc_floor,
        max_auc_regression=max_auc_regression,
        decision_threshold=decision_threshold,
    )
    fio.makedirs(evaluation_dir)
    start = time.monotonic()
    run_tfma(eval_path, eval_config, models, evaluation_dir, beam_args)
    seconds = time.monotonic() - start
    log.info("TFMA over %s took %.1f s", eval_path, seconds)
    return bless(
        evaluation_dir,
        blessing_dir,
        slices=slices,
        has_baseline=BASELINE in models,
        baseline_version=baseline_version,
        auc_floor=auc_floor,
        max_auc_regression=max_auc_regression,
        fairness_metric=fairness_metric,
        fairness_max_gap=fairness_max_gap,
        decision_threshold=decision_threshold,
        min_slice_examples=min_slice_examples,
        fairness_require_assessment=fairness_require_assessment,
        evaluation_seconds=seconds,
    )


def bless(
    evaluation_dir: str,
    blessing_dir: str,
    *,
    slices: list[str],
    has_baseline: bool,
    baseline_version: str = "",
    auc_floor: float = 0.7,
    max_auc_regression: float = 0.01,
    fairness_metric: str = "false_negative_rate",
    fairness_max_gap: float = 0.25,
    decision_threshold: float = 0.5,
    min_slice_examples: int = 20,
    fairness_require_assessment: bool = True,
    evaluation_seconds: float = 0.0,
) -> Blessing:
    """Apply the gates to a TFMA output directory; write blessing.json and fairness_report.{md,html}.

    The AUC thresholds TFMA validated are fixed when TFMA runs; the fairness bound and slice
    minimum apply here, so a stricter fairness policy can be re-checked without re-running TFMA.
    """
    by_model = read_tfma_metrics(evaluation_dir)
    candidate = by_model.get(CANDIDATE, {})
    if () not in candidate:
        raise RuntimeError(f"TFMA wrote no overall metrics for the candidate under {evaluation_dir}")
    metrics = _full_metrics(candidate[()])
    baseline_metrics = _full_metrics(by_model.get(BASELINE, {}).get(())) if has_baseline else None
    per_slice: dict[str, dict[str, dict[str, float | None]]] = {column: {} for column in slices}
    for key, values in candidate.items():
        if len(key) == 1 and key[0][0] in per_slice:
            per_slice[key[0][0]][key[0][1]] = _full_metrics(values)

    validation_ok, tfma_failures = read_tfma_validation(evaluation_dir)
    version = (baseline_version or None) if has_baseline else None
    gates = [
        metric_floor_gate(metrics, auc_floor, tfma_failures),
        no_regression_gate(metrics, baseline_metrics, version, max_auc_regression, tfma_failures),
    ]
    fair, skipped = fairness_gate(per_slice, fairness_metric, fairness_max_gap, min_slice_examples,
                                  fairness_require_assessment)
    gates.append(fair)
    if validation_ok != (gates[0].passed and gates[1].passed):
        log.warning("TFMA validation_ok=%s disagrees with the AUC gates: %s", validation_ok, tfma_failures)
    blessing = Blessing(
        blessed=all(g.passed for g in gates),
        gates=gates,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        baseline_version=version,
        slices=per_slice,
        skipped_slices=skipped,
        evaluation_seconds=round(float(evaluation_seconds), 3),
    )
    fio.write_json_atomic(fio.join(blessing_dir, names.BLESSING_FILE), blessing.to_dict())
    fio.write_text_atomic(
        fio.join(blessing_dir, FAIRNESS_REPORT_FILE),
        fairness_report(blessing, slices, fairness_metric, fairness_max_gap, min_slice_examples, decision_threshold),
    )
    curves = classification_curves(evaluation_dir, decision_threshold)
    baseline_curve = classification_curve(evaluation_dir, decision_threshold, BASELINE) if has_baseline else None
    fio.write_text_atomic(
        fio.join(blessing_dir, FAIRNESS_HTML_FILE),
        fairness_html(blessing, slices, fairness_metric, fairness_max_gap, min_slice_examples,
                      decision_threshold, curves, baseline_curve),
    )
    for gate in gates:
        log.info("gate %s: %s (%s)", gate.name, gate.verdict, gate.detail)
    return blessing
