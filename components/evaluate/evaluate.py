"""Evaluate: TFMA over the eval split → per-slice metrics, quality gates and a blessing.

One Beam pass (DirectRunner locally; Dataflow/Flink/Spark with beam_args) runs TFMA on the
candidate and, when a champion exists, the baseline model: TFMA computes both models' metrics, their
diff and its own validation result (AUC value threshold + change threshold) in the same pass.

TFMA computes a 95% jackknife interval for every metric and slice. The five gates of gates.py
decide the blessing, each recorded with its value, interval, n, threshold, rule and a readable
detail:

* `metric_floor`: candidate overall AUC >= auc_floor.
* `no_regression`: candidate AUC >= the champion's - max_auc_regression (not applicable without one).
* `fairness`: for every slice column, the largest gap of `fairness_metric` between its values with
  >= min_slice_examples examples is <= fairness_max_gap; skipped values are listed in
  `skipped_slices`. Fewer than two eligible values: the gate fails closed (unless
  fairness_require_assessment is off); no slice column: not applicable.
* `calibration`: calibration within [calibration_min, calibration_max] and ECE <= its bound.
* `baseline`: candidate AUC >= a logistic regression's on the same splits (baseline.py) - margin.

Rates are taken at the decision threshold train chose on validation unless the policy sets one.
The module keeps TFMA's configuration and output reading; blessing.py holds the record, report.py
the pages, bias.py the DetectModelBias figures, tfma_metrics.py the Brier score and log-loss.

Outputs: TFMA's output in `evaluation_dir` (tfma.load_eval_result works on it), and
`<blessing_dir>/blessing.json` + `<blessing_dir>/fairness_report.{md,html}` (the HTML page also
carries the per-slice ROC points and confusion matrices).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from components.common import io as fio
from components.common import names
from components.common.errors import PipelineInputError
from components.evaluate import baseline as simple
from components.evaluate.bias import bias_metrics
from components.evaluate.blessing import Blessing
from components.common.gate_policy import RULE_INTERVAL, GatePolicy
from components.evaluate.gates import (
    GATE_METRIC_FLOOR,
    GATE_NO_REGRESSION,
    Interval,
    baseline_gate,
    calibration_gate,
    fairness_gate,
    finite_or_none,
    metric_floor_gate,
    no_regression_gate,
)
from components.evaluate.report import fairness_html, fairness_report

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
BASELINE = "baseline"
SIGNATURE = "serving_default"
PREDICTION_KEY = "probability"
FAIRNESS_REPORT_FILE = "fairness_report.md"
FAIRNESS_HTML_FILE = "fairness_report.html"

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
    "log_loss": "log_loss",
    "brier_score": "brier_score",  # both from tfma_metrics.py
}
# Our figure computed from TFMA's CalibrationPlot buckets (not a TFMA metric).
ECE = "expected_calibration_error"
CALIBRATION_BINS = 10
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
    confidence_intervals: bool = True,
):
    """EvalConfig: candidate (+ baseline), overall + per-column slices, metrics and thresholds."""
    import json

    import tensorflow_model_analysis as tfma

    from components.evaluate import tfma_metrics

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
        # Ours (tfma_metrics.py): TFMA's and Keras' versions go wrong under the jackknife.
        tfma.MetricConfig(class_name="LogLoss", module=tfma_metrics.__name__),
        tfma.MetricConfig(class_name="BrierScore", module=tfma_metrics.__name__),
        # Equal-width probability bins: the ECE and the calibration plot of the report.
        tfma.MetricConfig(class_name="CalibrationPlot", config=json.dumps({"num_buckets": CALIBRATION_BINS})),
        # ROC points and the confusion matrix at the decision threshold (KFP ClassificationMetrics).
        tfma.MetricConfig(
            class_name="ConfusionMatrixAtThresholds",
            config=json.dumps({"thresholds": curve_thresholds(decision_threshold)}),
        ),
    ]
    slicing_specs = [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[c]) for c in slices]
    # Jackknife intervals (TFMA's default method, 20 buckets) on every metric and slice: the gates
    # record them, and gate_rule=interval_bound judges by them.
    options = tfma.Options()
    options.compute_confidence_intervals.value = confidence_intervals
    options.confidence_intervals.method = tfma.ConfidenceIntervalOptions.JACKKNIFE
    return tfma.EvalConfig(
        model_specs=model_specs,
        slicing_specs=slicing_specs,
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
        options=options,
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


@dataclasses.dataclass
class TfmaFigures:
    """What bless() reads from TFMA's output, per model and slice key (() is overall)."""
    metrics: dict[str, dict[tuple, dict[str, float]]]
    intervals: dict[str, dict[tuple, dict[str, dict[str, float | None]]]]
    """model → slice → metric → {lower, upper, standard_error}; "change_auc": the candidate's AUC
    minus the champion's (TFMA's diff metric, keyed by the candidate)."""
    calibration_curves: dict[str, dict[tuple, list[list[float]]]]
    """model → slice → read_calibration_curves' rows (the ECE is computed from them)."""


def _interval(kv) -> dict[str, float | None] | None:
    if not kv.HasField("confidence_interval"):
        return None
    ci = kv.confidence_interval
    return {"lower": ci.lower_bound.double_value.value, "upper": ci.upper_bound.double_value.value,
            "standard_error": ci.standard_error.double_value.value}


def _slice_key(record) -> tuple:
    from tensorflow_model_analysis.slicer import slicer_lib

    key = slicer_lib.deserialize_slice_key(record.slice_key)
    return tuple((column, _slice_value(value)) for column, value in key)


def read_tfma_metrics(output_path: str) -> TfmaFigures:
    """Our metrics (and their intervals) per model and slice, the ECE from the calibration plot."""
    import tensorflow_model_analysis as tfma

    figures = TfmaFigures({}, {}, read_calibration_curves(output_path))
    for record in tfma.load_metrics(output_path):
        slice_key = _slice_key(record)
        for kv in record.metric_keys_and_values:
            name = TFMA_TO_METRIC.get(kv.key.name)
            if name is None or kv.key.HasField("sub_key") or not kv.value.HasField("double_value"):
                continue
            model = kv.key.model_name or CANDIDATE
            if kv.key.is_diff:
                if name == "auc":
                    figures.intervals.setdefault(model, {}).setdefault(slice_key, {})["change_auc"] = _interval(kv)
                continue
            figures.metrics.setdefault(model, {}).setdefault(slice_key, {})[name] = kv.value.double_value.value
            interval = _interval(kv)
            if interval is not None:
                figures.intervals.setdefault(model, {}).setdefault(slice_key, {})[name] = interval
    for model, slices in figures.calibration_curves.items():
        for slice_key, curve in slices.items():
            n = sum(row[2] for row in curve)
            ece = sum(abs(pred - observed) * count for pred, observed, count in curve) / n if n else None
            figures.metrics.setdefault(model, {}).setdefault(slice_key, {})[ECE] = ece
    return figures


def read_calibration_curves(output_path: str) -> dict[str, dict[tuple, list[list[float]]]]:
    """model → slice → [mean prediction, observed positive rate, examples] for each non-empty bin
    of TFMA's CalibrationPlot."""
    import tensorflow_model_analysis as tfma

    curves: dict[str, dict[tuple, list[list[float]]]] = {}
    for record in tfma.load_plots(output_path):
        slice_key = _slice_key(record)
        for kv in record.plot_keys_and_values:
            if not kv.value.HasField("calibration_histogram_buckets"):  # the key carries no name
                continue
            rows = []
            for bucket in kv.value.calibration_histogram_buckets.buckets:
                n = bucket.num_weighted_examples.value
                if n > 0:
                    rows.append([bucket.total_weighted_refined_prediction.value / n,
                                 bucket.total_weighted_label.value / n, n])
            curves.setdefault(kv.key.model_name or CANDIDATE, {})[slice_key] = rows
    return curves


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
    return {name: values.get(name) for name in (*METRIC_NAMES, ECE)}


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
    beam_args: list[str] | None = None,
    **policy: Any,
) -> Blessing:
    """Run TFMA on the eval split, fit the simple baselines, apply the gates (`policy`: GatePolicy's
    fields), write blessing.json and fairness_report.{md,html}."""
    gate_policy = GatePolicy(**policy)  # a PipelineInputError names a bad bound
    label, slices, eval_path = _check_inputs(examples_dir, label, list(slices or []))
    models = {CANDIDATE: resolve_saved_model(model_dir, "model")}
    if baseline_model_dir:
        models[BASELINE] = resolve_saved_model(baseline_model_dir, "baseline (champion) model")
    gate_policy = gate_policy.with_model_threshold(_model_threshold(model_dir))
    eval_config = build_eval_config(
        label,
        slices,
        has_baseline=BASELINE in models,
        auc_floor=gate_policy.auc_floor,
        max_auc_regression=gate_policy.max_auc_regression,
        decision_threshold=gate_policy.decision_threshold,
    )
    fio.makedirs(evaluation_dir)
    start = time.monotonic()
    run_tfma(eval_path, eval_config, models, evaluation_dir, beam_args)
    seconds = time.monotonic() - start
    log.info("TFMA over %s took %.1f s", eval_path, seconds)
    baselines = {name: b.to_dict() for name, b in simple.fit_baselines(examples_dir).items()}
    log.info("simple baselines on the same splits: %s", baselines)
    return bless(evaluation_dir, blessing_dir, slices=slices, has_baseline=BASELINE in models,
                 baseline_version=baseline_version, policy=gate_policy, simple_baselines=baselines,
                 evaluation_seconds=seconds)


def _model_threshold(model_dir: str) -> float | None:
    """The decision threshold train chose on validation (model_info.json), if it recorded one."""
    info = fio.join(model_dir, names.MODEL_INFO_FILE)
    return fio.read_json(info).get("decision_threshold") if fio.exists(info) else None


def bless(
    evaluation_dir: str,
    blessing_dir: str,
    *,
    slices: list[str],
    has_baseline: bool,
    baseline_version: str = "",
    policy: GatePolicy | None = None,
    simple_baselines: dict[str, dict[str, Any]] | None = None,
    evaluation_seconds: float = 0.0,
) -> Blessing:
    """Apply the gates to a TFMA output directory; write blessing.json and fairness_report.{md,html}.

    The AUC thresholds TFMA validated are fixed when TFMA runs; the other bounds apply here, so a
    stricter policy can be re-checked without re-running TFMA.
    """
    policy = policy or GatePolicy()
    if not 0.0 < policy.decision_threshold < 1.0:
        raise PipelineInputError(f"bless needs a decision threshold in (0, 1), got {policy.decision_threshold}")
    figures = read_tfma_metrics(evaluation_dir)
    candidate = figures.metrics.get(CANDIDATE, {})
    if () not in candidate:
        raise RuntimeError(f"TFMA wrote no overall metrics for the candidate under {evaluation_dir}")
    intervals = figures.intervals.get(CANDIDATE, {})
    metrics = _full_metrics(candidate[()])
    baseline_metrics = _full_metrics(figures.metrics.get(BASELINE, {}).get(())) if has_baseline else None
    per_slice: dict[str, dict[str, dict[str, float | None]]] = {column: {} for column in slices}
    slice_intervals: dict[str, dict[str, Interval]] = {column: {} for column in slices}
    for key, values in candidate.items():
        if len(key) == 1 and key[0][0] in per_slice:
            column, value = key[0]
            per_slice[column][value] = _full_metrics(values)
            slice_intervals[column][value] = Interval.of(intervals.get(key, {}).get(policy.fairness_metric))
    overall = intervals.get((), {})

    validation_ok, tfma_failures = read_tfma_validation(evaluation_dir)
    version = (baseline_version or None) if has_baseline else None
    change = overall.get("change_auc")  # TFMA keys the diff by the candidate
    logistic = (simple_baselines or {}).get(simple.LOGISTIC)
    rule = policy.gate_rule
    gates = [
        metric_floor_gate(metrics, Interval.of(overall.get("auc")), policy.auc_floor, tfma_failures, rule, CANDIDATE),
        no_regression_gate(metrics, baseline_metrics, version, policy.max_auc_regression, tfma_failures,
                           Interval.of(change), rule),
    ]
    fair, skipped = fairness_gate(per_slice, policy.fairness_metric, policy.fairness_max_gap,
                                  policy.min_slice_examples, policy.fairness_require_assessment,
                                  slice_intervals, rule)
    gates += [
        fair,
        calibration_gate(metrics, Interval.of(overall.get("calibration")),
                         (policy.calibration_min, policy.calibration_max), policy.max_expected_calibration_error, rule),
        baseline_gate(finite_or_none(metrics.get("auc")), logistic, policy.baseline_auc_margin,
                      n=int(metrics["example_count"]) if metrics.get("example_count") else None,
                      candidate_interval=Interval.of(overall.get("auc")), rule=rule),
    ]
    auc_gates = [g for g in gates if g.name in (GATE_METRIC_FLOOR, GATE_NO_REGRESSION)]
    # With intervals on, TFMA validates the AUC thresholds on the interval's bound.
    if rule == RULE_INTERVAL and validation_ok != all(g.passed for g in auc_gates):
        log.warning("TFMA validation_ok=%s disagrees with the AUC gates: %s", validation_ok, tfma_failures)
    curves = figures.calibration_curves.get(CANDIDATE, {})
    roc = classification_curves(evaluation_dir, policy.decision_threshold)
    blessing = Blessing(
        blessed=all(g.passed for g in gates),
        gates=gates,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        baseline_version=version,
        slices=per_slice,
        skipped_slices=skipped,
        evaluation_seconds=round(float(evaluation_seconds), 3),
        decision_threshold=policy.decision_threshold,
        bias_metrics=bias_metrics(roc, slices),
        intervals={slice_name(k): v for k, v in intervals.items()},
        simple_baselines=dict(simple_baselines or {}),
        calibration_curves={slice_name(k): v for k, v in curves.items()},
    )
    fio.write_json_atomic(fio.join(blessing_dir, names.BLESSING_FILE), blessing.to_dict())
    fio.write_text_atomic(fio.join(blessing_dir, FAIRNESS_REPORT_FILE), fairness_report(blessing, slices, policy))
    baseline_curve = classification_curve(evaluation_dir, policy.decision_threshold, BASELINE) if has_baseline else None
    fio.write_text_atomic(fio.join(blessing_dir, FAIRNESS_HTML_FILE),
                          fairness_html(blessing, slices, policy, roc, baseline_curve))
    for gate in gates:
        log.info("gate %s: %s (%s)", gate.name, gate.verdict, gate.detail)
    return blessing
