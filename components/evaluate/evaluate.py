"""Evaluate: TFMA over the eval split → per-slice metrics, quality gates and a blessing.

One Beam pass (DirectRunner locally; Dataflow/Flink/Spark with beam_args) runs TFMA on the
candidate and, when a champion exists, the baseline model: TFMA computes both models' metrics, their
diff and its own validation result (AUC value threshold + change threshold) in the same pass.

TFMA computes a 95% jackknife interval for every metric and slice (unless the policy's
confidence_intervals is off: then most of TFMA's time is saved and no gate records an interval).
The five gates of gates.py decide the blessing, each recorded with its value, interval, n,
threshold, rule and a readable detail:

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

The label's kind (ingest's metadata `label_kind`; none: binary) chooses the figures and the
gates' metric (gates.PRIMARY_METRIC), with the same five gates and records:

* multiclass ("probabilities" [N, K]): macro one-vs-rest AUC (TFMA's macro_average over the
  binarized classes, on a slice over the classes it has), accuracy, macro-F1, log-loss, Brier,
  each class's AUC/precision/recall/F1 and the K x K confusion matrix. Floor and no regression on
  the macro AUC (auc_floor, max_auc_regression); fairness on per-slice accuracy unless
  fairness_metric names a multiclass metric; calibration: the top-class confidence's ECE <=
  max_expected_calibration_error; baseline: the better of a majority-class predictor and a
  multinomial logistic regression (baseline_auc_margin).
* regression ("value" [N, 1]): MSE, RMSE, MAE, R² (tfma_metrics.py), mean label / prediction.
  Floor and no regression on R² (r2_floor, max_r2_regression); fairness on each slice's MAE
  divided by the overall MAE unless fairness_metric names a regression metric; calibration: mean
  prediction / mean label in [calibration_min, calibration_max]; baseline: the better of a mean
  predictor and a ridge regression (baseline_r2_margin). TFMA's thresholds sit on the overall slice.

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
from components.common import label_kinds as kinds
from components.common import names
from components.common.errors import PipelineInputError
from components.evaluate import baseline as simple
from components.evaluate.bias import bias_metrics
from components.evaluate.blessing import Blessing
from components.common.gate_policy import (
    MULTICLASS_FAIRNESS_METRICS,
    REGRESSION_FAIRNESS_METRICS,
    RULE_INTERVAL,
    GatePolicy,
)
from components.evaluate.gates import (
    GATE_METRIC_FLOOR,
    GATE_NO_REGRESSION,
    PRIMARY_LABEL,
    PRIMARY_METRIC,
    Gate,
    Interval,
    baseline_gate,
    calibration_gate,
    fairness_gate,
    finite_or_none,
    fmt,
    metric_floor_gate,
    multiclass_calibration_gate,
    no_regression_gate,
    regression_calibration_gate,
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

# The other kinds' metrics (tfma_metrics.py computes all but example_count, the macro AUC and the
# regression's mean label / prediction / calibration): our name → TFMA's.
MACRO_AUC = "macro_auc"  # TFMA's "auc" averaged over the classes' one-vs-rest AUCs
MULTICLASS_METRIC_NAMES = {name: name for name in (
    "example_count", "accuracy", "macro_f1", "log_loss", "brier_score", ECE, "mean_confidence")}
REGRESSION_METRIC_NAMES = {name: name for name in (
    "example_count", "mean_squared_error", "root_mean_squared_error", "mean_absolute_error", "r2",
    "mean_label", "mean_prediction", "calibration")}
# Regression's default fairness figure: each slice's MAE over the overall MAE (a unitless gap).
RELATIVE_MAE = "relative_mean_absolute_error"
KIND_METRICS = {kinds.BINARY: (*METRIC_NAMES, ECE), kinds.MULTICLASS: (MACRO_AUC, *MULTICLASS_METRIC_NAMES),
                kinds.REGRESSION: (*REGRESSION_METRIC_NAMES, RELATIVE_MAE)}
KIND_TFMA_TO_METRIC = {kinds.BINARY: TFMA_TO_METRIC,
                       kinds.MULTICLASS: {v: k for k, v in MULTICLASS_METRIC_NAMES.items()},
                       kinds.REGRESSION: {v: k for k, v in REGRESSION_METRIC_NAMES.items()}}
PER_CLASS_METRICS = ("auc", "precision", "recall", "f1")  # one-vs-rest, per class
FAIRNESS_DEFAULTS = {kinds.MULTICLASS: "accuracy", kinds.REGRESSION: RELATIVE_MAE}
FAIRNESS_CHOICES = {kinds.MULTICLASS: MULTICLASS_FAIRNESS_METRICS, kinds.REGRESSION: REGRESSION_FAIRNESS_METRICS}

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


def _check_inputs(examples_dir: str, label: str, slices: list[str]) -> tuple[str, list[str], str, dict]:
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
    return label, clean_slices, eval_path, metadata


def label_kind_of(metadata: dict) -> tuple[str, list[str]]:
    """(kind, class names) of ingest's metadata; no label_kind: an older, binary artifact."""
    kind = kinds.check_kind(metadata.get("label_kind", kinds.BINARY))
    classes = [str(c) for c in metadata.get("classes") or []]
    if kind == kinds.MULTICLASS and len(classes) < 2:
        raise PipelineInputError(f"multiclass examples need >= 2 class names in their metadata, got {classes}")
    return kind, classes


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
    confidence_intervals: bool,
    label_kind: str = kinds.BINARY,
    num_classes: int = 0,
):
    """EvalConfig: candidate (+ baseline), overall + per-column slices, the kind's metrics, and
    TFMA's own thresholds on the kind's primary metric (PRIMARY_METRIC): `auc_floor` and
    `max_auc_regression` bound the AUC, the macro AUC or the R² (primary_bounds);
    `confidence_intervals` is GatePolicy's."""
    import tensorflow_model_analysis as tfma

    prediction_key = kinds.output_name(label_kind)
    model_specs = [
        tfma.ModelSpec(
            name=CANDIDATE, label_key=label, signature_name=SIGNATURE, prediction_key=prediction_key
        )
    ]
    if has_baseline:
        model_specs.append(
            tfma.ModelSpec(
                name=BASELINE,
                label_key=label,
                signature_name=SIGNATURE,
                prediction_key=prediction_key,
                is_baseline=True,
            )
        )
    threshold = _primary_threshold(auc_floor, max_auc_regression, has_baseline)
    if label_kind == kinds.MULTICLASS:
        metrics_specs = _multiclass_specs(_overall_only(threshold), num_classes)
    elif label_kind == kinds.REGRESSION:
        metrics_specs = _regression_specs(_overall_only(threshold))
    else:
        metrics_specs = [tfma.MetricsSpec(metrics=_binary_metrics(threshold, decision_threshold))]
    slicing_specs = [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[c]) for c in slices]
    # Jackknife intervals (TFMA's default method, 20 buckets) on every metric and slice: the gates
    # record them, and gate_rule=interval_bound judges by them. They are most of TFMA's time.
    options = tfma.Options()
    options.compute_confidence_intervals.value = confidence_intervals
    options.confidence_intervals.method = tfma.ConfidenceIntervalOptions.JACKKNIFE
    return tfma.EvalConfig(
        model_specs=model_specs,
        slicing_specs=slicing_specs,
        metrics_specs=metrics_specs,
        options=options,
    )


def primary_bounds(policy: GatePolicy, label_kind: str) -> tuple[float, float, float]:
    """(floor, allowed drop against the champion, baseline margin) of the kind's primary metric."""
    if label_kind == kinds.REGRESSION:
        return policy.r2_floor, policy.max_r2_regression, policy.baseline_r2_margin
    return policy.auc_floor, policy.max_auc_regression, policy.baseline_auc_margin


def _primary_threshold(floor: float, max_drop: float, has_baseline: bool):
    import tensorflow_model_analysis as tfma

    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": floor})
    )
    if has_baseline:
        threshold.change_threshold.CopyFrom(
            tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                absolute={"value": -max_drop},
            )
        )
    return threshold


def _overall_only(threshold) -> dict[str, Any]:
    """MetricConfig arguments putting `threshold` on the overall slice alone: the gates judge the
    overall figure, and a slice lacking a class (macro AUC) or with little spread (R²) must not
    fail TFMA's validation."""
    import tensorflow_model_analysis as tfma

    return {"per_slice_thresholds": [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                                                  threshold=threshold)]}


def _binary_metrics(auc_threshold, decision_threshold: float) -> list:
    import json

    import tensorflow_model_analysis as tfma

    from components.evaluate import tfma_metrics

    at = json.dumps({"thresholds": [decision_threshold]})

    def at_threshold(class_name: str, name: str) -> Any:
        return tfma.MetricConfig(
            class_name=class_name, config=json.dumps({"thresholds": [decision_threshold], "name": name})
        )

    return [
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


def _multiclass_specs(macro_auc_threshold: dict[str, Any], num_classes: int) -> list:
    """Three specs over the [K] probabilities: our figures (tfma_metrics.MultiClassFigures) and the
    confusion matrix of the top class; the macro-averaged one-vs-rest AUC, which carries TFMA's
    thresholds; and each class's one-vs-rest AUC (binarized, no threshold: the gate is on the mean)."""
    import json

    import tensorflow_model_analysis as tfma

    from components.evaluate import tfma_metrics

    if num_classes < 2:
        raise PipelineInputError(f"a multiclass evaluation needs >= 2 classes, got {num_classes}")
    class_ids = list(range(num_classes))
    figures = tfma.MetricsSpec(metrics=[
        tfma.MetricConfig(class_name="ExampleCount"),
        tfma.MetricConfig(class_name="MultiClassFigures", module=tfma_metrics.__name__,
                          config=json.dumps({"num_classes": num_classes})),
        tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
    ])
    macro = tfma.MetricsSpec(
        metrics=[tfma.MetricConfig(class_name="AUC", **macro_auc_threshold)],
        aggregate=tfma.AggregationOptions(macro_average=True, class_weights={c: 1.0 for c in class_ids}),
    )
    per_class = tfma.MetricsSpec(
        metrics=[tfma.MetricConfig(class_name="AUC")],
        binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
    )
    return [figures, macro, per_class]


def _regression_specs(r2_threshold: dict[str, Any]) -> list:
    import tensorflow_model_analysis as tfma

    from components.evaluate import tfma_metrics

    return [tfma.MetricsSpec(metrics=[
        tfma.MetricConfig(class_name="ExampleCount"),
        # MSE, RMSE, MAE and R² in one combiner; TFMA's thresholds on R² (the primary metric).
        tfma.MetricConfig(class_name="RegressionErrors", module=tfma_metrics.__name__, **r2_threshold),
        tfma.MetricConfig(class_name="MeanLabel"),
        tfma.MetricConfig(class_name="MeanPrediction"),
        tfma.MetricConfig(class_name="Calibration"),  # Σ prediction / Σ label
    ])]


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
    per_class: dict[str, dict[tuple, dict[int, dict[str, float]]]] = dataclasses.field(default_factory=dict)
    """Multiclass: model → slice → class index → one-vs-rest auc, precision, recall, f1."""


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


def _our_name(key, label_kind: str) -> tuple[str | None, int | None]:
    """(our metric name, class index or None) of a TFMA metric key; (None, None): not one we read."""
    if key.HasField("sub_key"):
        if label_kind == kinds.MULTICLASS and key.sub_key.HasField("class_id"):
            return key.name, key.sub_key.class_id.value
        return None, None
    if key.HasField("aggregation_type"):
        macro = label_kind == kinds.MULTICLASS and key.aggregation_type.macro_average and key.name == "auc"
        return (MACRO_AUC if macro else None), None
    return KIND_TFMA_TO_METRIC[label_kind].get(key.name), None


def read_tfma_metrics(output_path: str, label_kind: str = kinds.BINARY) -> TfmaFigures:
    """Our metrics (and their intervals) per model and slice, the ECE from the calibration plot
    (binary; multiclass: from tfma_metrics' confidence bins), multiclass per-class figures."""
    import tensorflow_model_analysis as tfma

    figures = TfmaFigures({}, {}, read_calibration_curves(output_path))
    primary = PRIMARY_METRIC[label_kind]
    for record in tfma.load_metrics(output_path):
        slice_key = _slice_key(record)
        for kv in record.metric_keys_and_values:
            name, class_id = _our_name(kv.key, label_kind)
            if name is None or not kv.value.HasField("double_value"):
                continue
            model = kv.key.model_name or CANDIDATE
            if kv.key.is_diff:
                change_interval = _interval(kv)  # None with confidence_intervals off
                if name == primary and class_id is None and change_interval is not None:
                    figures.intervals.setdefault(model, {}).setdefault(slice_key, {})[f"change_{primary}"] = \
                        change_interval
                continue
            if class_id is not None:
                per_class = figures.per_class.setdefault(model, {}).setdefault(slice_key, {})
                per_class.setdefault(class_id, {})[name] = kv.value.double_value.value
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
    if label_kind == kinds.MULTICLASS:
        _macro_auc_over_present_classes(figures)
    return figures


def _macro_auc_over_present_classes(figures: TfmaFigures) -> None:
    """TFMA's macro average counts a class absent from a slice with an AUC of 0: on such a slice
    the macro AUC is the mean over the classes it has (none with fewer than two), without TFMA's
    interval, which was of the other figure."""
    for model, slices in figures.per_class.items():
        for slice_key, per_class in slices.items():
            present = [finite_or_none(v.get("auc")) for v in per_class.values()
                       if finite_or_none(v.get("recall")) is not None]  # recall is defined iff the class occurs
            if len(present) == len(per_class) and None not in present:
                continue
            defined = [auc for auc in present if auc is not None]
            figures.metrics.setdefault(model, {}).setdefault(slice_key, {})[MACRO_AUC] = (
                sum(defined) / len(defined) if len(defined) >= 2 else None)
            figures.intervals.get(model, {}).get(slice_key, {}).pop(MACRO_AUC, None)


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
    return _overall_first(curves)


def _overall_first(per_slice: dict[str, Any]) -> dict[str, Any]:
    ordered = {OVERALL: per_slice.pop(OVERALL)} if OVERALL in per_slice else {}
    ordered.update(sorted(per_slice.items()))
    return ordered


def multiclass_confusion_matrices(
    output_path: str, num_classes: int, model_name: str = CANDIDATE
) -> dict[str, list[list[int]]]:
    """Per slice (overall first): the K x K counts [actual][predicted top class] of TFMA's
    MultiClassConfusionMatrixPlot."""
    import tensorflow_model_analysis as tfma

    matrices: dict[str, list[list[int]]] = {}
    for record in tfma.load_plots(output_path):
        for kv in record.plot_keys_and_values:
            if (not kv.value.HasField("multi_class_confusion_matrix_at_thresholds")
                    or (kv.key.model_name or CANDIDATE) != model_name):
                continue
            matrix = [[0] * num_classes for _ in range(num_classes)]
            for entry in kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries:
                if 0 <= entry.actual_class_id < num_classes and 0 <= entry.predicted_class_id < num_classes:
                    matrix[entry.actual_class_id][entry.predicted_class_id] += int(round(entry.num_weighted_examples))
            matrices[slice_name(_slice_key(record))] = matrix
    return _overall_first(matrices)


def classification_curve(
    output_path: str, decision_threshold: float = 0.5, model_name: str = CANDIDATE
) -> dict[str, Any]:
    """The model's overall ROC points and confusion matrix (see classification_curves)."""
    curves = classification_curves(output_path, decision_threshold, model_name)
    return curves.get(OVERALL, {"roc": [], "confusion_matrix": [[0, 0], [0, 0]]})


CONFUSION_CATEGORIES = ["0", "1"]


def log_classification_metrics(artifact, curve: dict[str, Any], categories: list[str] | None = None) -> None:
    """Fill a kfp ClassificationMetrics artifact: ROC points (binary) and the confusion matrix
    (`categories`: its class names, "0"/"1" for binary)."""
    if curve.get("roc"):
        fpr, tpr, thresholds = zip(*curve["roc"])
        artifact.log_roc_curve(list(fpr), list(tpr), list(thresholds))
    artifact.log_confusion_matrix(list(categories or CONFUSION_CATEGORIES), curve["confusion_matrix"])


def multiclass_curves(output_path: str, classes: list[str]) -> dict[str, dict[str, Any]]:
    """classification_curves' shape for a multiclass model: no ROC, the K x K confusion matrix."""
    return {name: {"roc": [], "confusion_matrix": matrix}
            for name, matrix in multiclass_confusion_matrices(output_path, len(classes)).items()}


def log_sliced_classification_metrics(artifact, curves: dict[str, dict[str, Any]],
                                      categories: list[str] | None = None) -> None:
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
        log_classification_metrics(per_slice, curve, categories)
        entries.append({"slice": name, "sliceClassificationMetrics": dict(per_slice.metadata)})
    artifact.metadata["evaluationSlices"] = entries


# --------------------------------------------------------------------------------------------
# Gates


def _full_metrics(values: dict[str, float] | None, label_kind: str = kinds.BINARY) -> dict[str, float | None]:
    values = values or {}
    return {name: values.get(name) for name in KIND_METRICS[label_kind]}


def effective_fairness_metric(policy: GatePolicy, label_kind: str) -> str:
    """The policy's fairness metric where it is one of the kind's, else the kind's default
    (multiclass: accuracy; regression: the slice's MAE over the overall MAE)."""
    if label_kind == kinds.BINARY or policy.fairness_metric in FAIRNESS_CHOICES[label_kind]:
        return policy.fairness_metric
    return FAIRNESS_DEFAULTS[label_kind]


def _add_relative_mae(metrics: dict[tuple, dict[str, float]], intervals: dict[tuple, dict[str, Any]]) -> None:
    """Regression: each slice's MAE / the overall MAE, and its interval scaled alike (the overall MAE
    taken as fixed), so a fairness gap is a fraction of the typical error."""
    overall = finite_or_none(metrics.get((), {}).get("mean_absolute_error"))
    if not overall:
        return
    for key, values in metrics.items():
        mae = finite_or_none(values.get("mean_absolute_error"))
        values[RELATIVE_MAE] = None if mae is None else mae / overall
        interval = intervals.get(key, {}).get("mean_absolute_error")
        if interval:
            intervals[key][RELATIVE_MAE] = {k: None if v is None else v / overall for k, v in interval.items()}


def _named_per_class(per_class: dict[int, dict[str, float]], classes: list[str]) -> dict[str, dict[str, float | None]]:
    return {classes[c]: {m: finite_or_none(values.get(m)) for m in PER_CLASS_METRICS}
            for c, values in sorted(per_class.items()) if c < len(classes)}


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
    fields), write blessing.json and fairness_report.{md,html}. The label's kind (binary,
    multiclass, regression) comes from the examples' metadata."""
    gate_policy = GatePolicy(**policy)  # a PipelineInputError names a bad bound
    label, slices, eval_path, metadata = _check_inputs(examples_dir, label, list(slices or []))
    label_kind, classes = label_kind_of(metadata)
    models = {CANDIDATE: resolve_saved_model(model_dir, "model")}
    if baseline_model_dir:
        models[BASELINE] = resolve_saved_model(baseline_model_dir, "baseline (champion) model")
    model_info = _model_info(model_dir)
    _check_model_kind(model_info, label_kind, classes, model_dir)
    if label_kind == kinds.BINARY:  # only a probability has a decision threshold
        gate_policy = gate_policy.with_model_threshold(model_info.get("decision_threshold"))
    floor, max_drop, _ = primary_bounds(gate_policy, label_kind)
    eval_config = build_eval_config(
        label,
        slices,
        has_baseline=BASELINE in models,
        auc_floor=floor,
        max_auc_regression=max_drop,
        decision_threshold=gate_policy.decision_threshold,
        confidence_intervals=gate_policy.confidence_intervals,
        label_kind=label_kind,
        num_classes=len(classes),
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
                 evaluation_seconds=seconds, label_kind=label_kind, classes=classes)


def _model_info(model_dir: str) -> dict[str, Any]:
    """train's model_info.json (the decision threshold it chose on validation, the label kind and
    classes it learned); {} for a model without one (the tests' stand-ins)."""
    info = fio.join(model_dir, names.MODEL_INFO_FILE)
    return fio.read_json(info) if fio.exists(info) else {}


def _check_model_kind(model_info: dict[str, Any], label_kind: str, classes: list[str], model_dir: str) -> None:
    """A model trained for another label kind or other classes would fail inside TFMA, or be scored
    against the wrong class names: say so first."""
    model_kind = model_info.get("label_kind", label_kind)
    if model_kind != label_kind:
        raise PipelineInputError(f"model {model_dir} was trained for a {model_kind} label, the examples' label is "
                                 f"{label_kind}")
    model_classes = model_info.get("classes")
    if label_kind == kinds.MULTICLASS and model_classes and list(model_classes) != classes:
        raise PipelineInputError(f"model {model_dir} learned classes {model_classes}, the examples have {classes}")


def _gates(
    evaluation_dir: str,
    overall: dict[str, Any],
    metrics: dict[str, float | None],
    baseline_metrics: dict[str, float | None] | None,
    version: str | None,
    per_slice: dict[str, dict[str, dict[str, float | None]]],
    slice_intervals: dict[str, dict[str, Interval]],
    policy: GatePolicy,
    label_kind: str,
    simple_baselines: dict[str, dict[str, Any]],
) -> tuple[list[Gate], list[dict[str, Any]]]:
    """The five gates on the kind's figures (`overall`: the candidate's overall intervals), and the
    slice values the fairness gate skipped."""
    primary, label = PRIMARY_METRIC[label_kind], PRIMARY_LABEL[label_kind]
    floor, max_drop, margin = primary_bounds(policy, label_kind)
    validation_ok, tfma_failures = read_tfma_validation(evaluation_dir)
    rule = policy.gate_rule
    primary_interval = Interval.of(overall.get(primary))
    named = {"metric": primary, "label": label}
    gates = [
        metric_floor_gate(metrics, primary_interval, floor, tfma_failures, rule, CANDIDATE, **named),
        no_regression_gate(metrics, baseline_metrics, version, max_drop, tfma_failures,
                           Interval.of(overall.get(f"change_{primary}")), rule, **named),
    ]
    fair, skipped = fairness_gate(per_slice, policy.fairness_metric, policy.fairness_max_gap,
                                  policy.min_slice_examples, policy.fairness_require_assessment,
                                  slice_intervals, rule)
    if policy.fairness_metric == RELATIVE_MAE:
        fair.detail = (f"gap of the per-slice MAE divided by the overall MAE {fmt(metrics.get('mean_absolute_error'))}: "
                       + fair.detail)
    n = int(metrics["example_count"]) if metrics.get("example_count") else None
    gates += [
        fair,
        _calibration_gate(metrics, overall, policy, label_kind),
        baseline_gate(finite_or_none(metrics.get(primary)), simple.best_baseline(simple_baselines, label_kind),
                      margin, n=n, candidate_interval=primary_interval, rule=rule, **named),
    ]
    primary_gates = [g for g in gates if g.name in (GATE_METRIC_FLOOR, GATE_NO_REGRESSION)]
    # With intervals on, TFMA validates the primary metric's thresholds on the interval's bound.
    if rule == RULE_INTERVAL and validation_ok != all(g.passed for g in primary_gates):
        log.warning("TFMA validation_ok=%s disagrees with the %s gates: %s", validation_ok, label, tfma_failures)
    return gates, skipped


def _calibration_gate(metrics: dict[str, float | None], overall: dict[str, Any], policy: GatePolicy,
                      label_kind: str) -> Gate:
    """Binary: the band and the ECE; multiclass: the top-class confidence's ECE; regression: mean
    prediction / mean label in the band."""
    band = (policy.calibration_min, policy.calibration_max)
    rule = policy.gate_rule
    if label_kind == kinds.MULTICLASS:
        return multiclass_calibration_gate(metrics, Interval.of(overall.get(ECE)),
                                           policy.max_expected_calibration_error, rule)
    if label_kind == kinds.REGRESSION:
        return regression_calibration_gate(metrics, Interval.of(overall.get("calibration")), band, rule)
    return calibration_gate(metrics, Interval.of(overall.get("calibration")), band,
                            policy.max_expected_calibration_error, rule)


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
    label_kind: str = kinds.BINARY,
    classes: list[str] | None = None,
) -> Blessing:
    """Apply the gates to a TFMA output directory; write blessing.json and fairness_report.{md,html}.

    The primary metric's thresholds TFMA validated are fixed when TFMA runs; the other bounds apply
    here, so a stricter policy can be re-checked without re-running TFMA.
    """
    policy = policy or GatePolicy()
    classes = list(classes or [])
    binary = label_kind == kinds.BINARY
    if binary and not 0.0 < policy.decision_threshold < 1.0:
        raise PipelineInputError(f"bless needs a decision threshold in (0, 1), got {policy.decision_threshold}")
    policy = dataclasses.replace(policy, fairness_metric=effective_fairness_metric(policy, label_kind))
    figures = read_tfma_metrics(evaluation_dir, label_kind)
    candidate = figures.metrics.get(CANDIDATE, {})
    if () not in candidate:
        raise RuntimeError(f"TFMA wrote no overall metrics for the candidate under {evaluation_dir}")
    intervals = figures.intervals.get(CANDIDATE, {})
    if label_kind == kinds.REGRESSION:
        _add_relative_mae(candidate, intervals)
    metrics = _full_metrics(candidate[()], label_kind)
    baseline_metrics = (_full_metrics(figures.metrics.get(BASELINE, {}).get(()), label_kind)
                        if has_baseline else None)
    per_slice: dict[str, dict[str, dict[str, float | None]]] = {column: {} for column in slices}
    slice_intervals: dict[str, dict[str, Interval]] = {column: {} for column in slices}
    for key, values in candidate.items():
        if len(key) == 1 and key[0][0] in per_slice:
            column, value = key[0]
            per_slice[column][value] = _full_metrics(values, label_kind)
            slice_intervals[column][value] = Interval.of(intervals.get(key, {}).get(policy.fairness_metric))
    version = (baseline_version or None) if has_baseline else None
    gates, skipped = _gates(evaluation_dir, figures.intervals.get(CANDIDATE, {}).get((), {}), metrics,
                            baseline_metrics, version, per_slice, slice_intervals, policy, label_kind,
                            simple_baselines or {})
    curves = figures.calibration_curves.get(CANDIDATE, {})
    roc = ({} if label_kind == kinds.REGRESSION else multiclass_curves(evaluation_dir, classes)
           if label_kind == kinds.MULTICLASS else classification_curves(evaluation_dir, policy.decision_threshold))
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
        bias_metrics=bias_metrics(roc, slices) if binary else {},
        intervals={slice_name(k): v for k, v in intervals.items()},
        simple_baselines=dict(simple_baselines or {}),
        calibration_curves={slice_name(k): v for k, v in curves.items()},
        label_kind=label_kind,
        classes=classes,
        per_class=_named_per_class(figures.per_class.get(CANDIDATE, {}).get((), {}), classes),
        fairness_metric=policy.fairness_metric,
    )
    fio.write_json_atomic(fio.join(blessing_dir, names.BLESSING_FILE), blessing.to_dict())
    fio.write_text_atomic(fio.join(blessing_dir, FAIRNESS_REPORT_FILE), fairness_report(blessing, slices, policy))
    baseline_curve = (classification_curve(evaluation_dir, policy.decision_threshold, BASELINE)
                      if has_baseline and binary else None)
    fio.write_text_atomic(fio.join(blessing_dir, FAIRNESS_HTML_FILE),
                          fairness_html(blessing, slices, policy, roc, baseline_curve))
    for gate in gates:
        log.info("gate %s: %s (%s)", gate.name, gate.verdict, gate.detail)
    return blessing
