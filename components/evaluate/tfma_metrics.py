"""Brier score and log-loss (binary), regression errors with R², and the multi-class figures, as
TFMA metrics whose combiners merge correctly.

TFMA 0.47's own MeanSquaredError and BinaryCrossEntropy merge their first accumulator into itself
(`result = next(iter(accs)); for acc in accs: result.merge(acc)`), and the Keras metrics it wraps
drift under its jackknife: with confidence intervals on, both reported 0.024-0.079 for a Brier score
of 0.0794 (components/evaluate/tests/test_evaluate.py checks these against numpy). These keep a
vector of sums and never mutate an input accumulator. Used as MetricConfig(class_name=..., module=__name__).
"""

from __future__ import annotations

from typing import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

BRIER_SCORE = "brier_score"
LOG_LOSS = "log_loss"
_EPSILON = 1e-7  # as Keras clips probabilities for its cross-entropy


def _squared_error(label: np.ndarray, prediction: np.ndarray) -> float:
    return float(np.sum((label - prediction) ** 2))


def _cross_entropy(label: np.ndarray, prediction: np.ndarray) -> float:
    p = np.clip(prediction, _EPSILON, 1 - _EPSILON)
    return float(-np.sum(label * np.log(p) + (1 - label) * np.log(1 - p)))


class _SumsCombiner(beam.CombineFn):
    """A vector of weighted sums over the examples (`statistics(label, prediction)` per example);
    `output(sums)` turns it into the metrics. Merging adds vectors, never mutating an input."""

    def __init__(self, keys: list[metric_types.MetricKey], eval_config, statistics, output,
                 size: int, example_weighted: bool, flatten: bool = True):
        self._key = keys[0]
        self._eval_config = eval_config
        self._statistics = statistics
        self._output = output
        self._size = size
        self._example_weighted = example_weighted
        self._flatten = flatten

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(self._size)

    def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
        accumulator = accumulator.copy()
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, example_weighted=self._example_weighted,
                sub_key=self._key.sub_key, flatten=self._flatten):
            w = float(metric_util.safe_to_scalar(weight))
            accumulator += w * self._statistics(np.asarray(label, np.float64), np.asarray(prediction, np.float64))
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        total = np.zeros(self._size)
        for accumulator in accumulators:
            total = total + accumulator
        return total

    def extract_output(self, accumulator: np.ndarray) -> dict:
        return self._output(accumulator)


def _key(name: str, model_name: str, output_name: str, example_weighted: bool, sub_key=None):
    return metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                  sub_key=sub_key, example_weighted=example_weighted)


def _computations(loss):
    """(Σ weight * loss, Σ weight) → their ratio, under the metric's own name."""
    def computations(name: str, eval_config=None, model_name: str = "", output_name: str = "",
                     example_weighted: bool = False, sub_key=None, aggregation_type=None,
                     class_weights=None) -> metric_types.MetricComputations:
        key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                     sub_key=sub_key, example_weighted=example_weighted)

        def statistics(label, prediction):
            return np.array([loss(label, prediction), 1.0])

        def output(sums):
            return {key: sums[0] / sums[1] if sums[1] else float("nan")}

        return [metric_types.MetricComputation(
            keys=[key], preprocessors=None,
            combiner=_SumsCombiner([key], eval_config, statistics, output, 2, example_weighted))]

    return computations


class BrierScore(metric_types.Metric):
    """Mean squared difference between the predicted probability and the 0/1 label."""

    def __init__(self, name: str = BRIER_SCORE):
        super().__init__(metric_util.merge_per_key_computations(_computations(_squared_error)), name=name)


class LogLoss(metric_types.Metric):
    """Mean binary cross-entropy of the predicted probability (clipped to [1e-7, 1 - 1e-7])."""

    def __init__(self, name: str = LOG_LOSS):
        super().__init__(metric_util.merge_per_key_computations(_computations(_cross_entropy)), name=name)


# --------------------------------------------------------------------------------------------
# Regression: one pass of sums gives MSE, RMSE, MAE and R² (TFMA 0.47's MeanSquaredError and
# MeanAbsoluteError share the merge bug above; it has no R²).

MEAN_SQUARED_ERROR = "mean_squared_error"
ROOT_MEAN_SQUARED_ERROR = "root_mean_squared_error"
MEAN_ABSOLUTE_ERROR = "mean_absolute_error"
R2 = "r2"
REGRESSION_METRICS = (MEAN_SQUARED_ERROR, ROOT_MEAN_SQUARED_ERROR, MEAN_ABSOLUTE_ERROR, R2)


def _regression_statistics(label: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """[1, y, y², (y - p)², |y - p|] of one example."""
    y, error = float(label.reshape(-1)[0]), float(label.reshape(-1)[0] - prediction.reshape(-1)[0])
    return np.array([1.0, y, y * y, error * error, abs(error)])


def regression_figures(sums: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R² = 1 - SSE / Σ(y - ȳ)² from _regression_statistics' weighted sums."""
    n, sum_y, sum_y2, sse, sae = sums
    if not n:
        return {name: float("nan") for name in REGRESSION_METRICS}
    total = sum_y2 - sum_y * sum_y / n  # Σ w (y - ȳ)²
    mse = sse / n
    return {MEAN_SQUARED_ERROR: mse, ROOT_MEAN_SQUARED_ERROR: float(np.sqrt(mse)), MEAN_ABSOLUTE_ERROR: sae / n,
            R2: 1.0 - sse / total if total > 0 else float("nan")}


def _regression_computations(name: str = "", eval_config=None, model_name: str = "", output_name: str = "",
                             example_weighted: bool = False, sub_key=None, aggregation_type=None,
                             class_weights=None) -> metric_types.MetricComputations:
    keys = {metric: _key(metric, model_name, output_name, example_weighted, sub_key) for metric in REGRESSION_METRICS}

    def output(sums):
        return {keys[metric]: value for metric, value in regression_figures(sums).items()}

    return [metric_types.MetricComputation(
        keys=list(keys.values()), preprocessors=None,
        combiner=_SumsCombiner(list(keys.values()), eval_config, _regression_statistics, output, 5,
                               example_weighted))]


class RegressionErrors(metric_types.Metric):
    """Mean squared error, its root, mean absolute error and R² of the predicted value. Its name is
    R²'s key: a threshold on this MetricConfig is a threshold on R²."""

    def __init__(self, name: str = R2):
        super().__init__(metric_util.merge_per_key_computations(_regression_computations), name=name)


# --------------------------------------------------------------------------------------------
# Multi-class: sparse label (class index) against the [K] probabilities. One pass of sums: the
# K x K confusion matrix of the top class, log-loss, Brier score and the top-class confidence bins.

ACCURACY = "accuracy"
MACRO_F1 = "macro_f1"
EXPECTED_CALIBRATION_ERROR = "expected_calibration_error"
MEAN_CONFIDENCE = "mean_confidence"
PER_CLASS_METRICS = ("precision", "recall", "f1")
MULTICLASS_METRICS = (ACCURACY, MACRO_F1, LOG_LOSS, BRIER_SCORE, EXPECTED_CALIBRATION_ERROR, MEAN_CONFIDENCE)
CONFIDENCE_BINS = 10


def _multiclass_statistics(k: int):
    def statistics(label: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        """[confusion (K*K, actual-major), log-loss, Brier, per bin (n, Σ confidence, Σ correct)]."""
        actual, p = int(label.reshape(-1)[0]), prediction.reshape(-1)
        predicted = int(np.argmax(p))
        out = np.zeros(k * k + 2 + 3 * CONFIDENCE_BINS)
        out[actual * k + predicted] = 1.0
        out[k * k] = -np.log(np.clip(p[actual], _EPSILON, 1.0))
        out[k * k + 1] = float(np.sum((p - np.eye(k)[actual]) ** 2))
        confidence = float(p[predicted])
        b = k * k + 2 + 3 * min(int(confidence * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)
        out[b:b + 3] = 1.0, confidence, float(predicted == actual)
        return out

    return statistics


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def multiclass_figures(sums: np.ndarray, k: int) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """(overall metrics, class index → precision/recall/F1 of "predicted top class == it") from
    _multiclass_statistics' sums. Macro-F1 averages the F1 of the classes that occur or are
    predicted (scikit-learn's f1_score(average="macro") with its default labels): a slice without
    a class is not penalised for it."""
    confusion = sums[:k * k].reshape(k, k)
    n = confusion.sum()
    per_class = {}
    for c in range(k):
        tp, predicted, actual = confusion[c, c], confusion[:, c].sum(), confusion[c, :].sum()
        precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
        f1 = _ratio(2 * tp, predicted + actual)
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1}
    bins = sums[k * k + 2:].reshape(CONFIDENCE_BINS, 3)
    ece = _ratio(float(np.sum(np.abs(bins[:, 2] - bins[:, 1]))), n)
    overall = {
        ACCURACY: _ratio(float(np.trace(confusion)), n),
        MACRO_F1: float(np.mean([m["f1"] for m in per_class.values() if not np.isnan(m["f1"])] or [np.nan])),
        LOG_LOSS: _ratio(sums[k * k], n),
        BRIER_SCORE: _ratio(sums[k * k + 1], n),
        EXPECTED_CALIBRATION_ERROR: ece,
        MEAN_CONFIDENCE: _ratio(float(bins[:, 1].sum()), n),
    }
    return overall, per_class


def _multiclass_computations(name: str = "", num_classes: int = 0, eval_config=None, model_name: str = "",
                             output_name: str = "", example_weighted: bool = False, sub_key=None,
                             aggregation_type=None, class_weights=None) -> metric_types.MetricComputations:
    k = int(num_classes)
    if k < 2:
        raise ValueError(f"MultiClassFigures needs num_classes >= 2, got {num_classes}")

    def key(metric: str, class_id: int | None = None):
        return _key(metric, model_name, output_name, example_weighted,
                    None if class_id is None else metric_types.SubKey(class_id=class_id))

    overall_keys = {metric: key(metric) for metric in MULTICLASS_METRICS}
    class_keys = {(c, metric): key(metric, c) for c in range(k) for metric in PER_CLASS_METRICS}

    def output(sums):
        overall, per_class = multiclass_figures(sums, k)
        out = {overall_keys[m]: v for m, v in overall.items()}
        out.update({class_keys[(c, m)]: v for c, values in per_class.items() for m, v in values.items()})
        return out

    keys = [*overall_keys.values(), *class_keys.values()]
    return [metric_types.MetricComputation(
        keys=keys, preprocessors=None,
        combiner=_SumsCombiner(keys, eval_config, _multiclass_statistics(k), output,
                               k * k + 2 + 3 * CONFIDENCE_BINS, example_weighted, flatten=False))]


class MultiClassFigures(metric_types.Metric):
    """Accuracy, macro-F1, log-loss, Brier score, the top-class confidence's ECE and mean, and each
    class's precision, recall and F1 (sub_key class_id) of a [K]-probability prediction."""

    def __init__(self, num_classes: int = 0, name: str = "multiclass_figures"):
        super().__init__(metric_util.merge_per_key_computations(_multiclass_computations),
                         num_classes=num_classes, name=name)


for _metric in (BrierScore, LogLoss, RegressionErrors, MultiClassFigures):
    metric_types.register_metric(_metric)
