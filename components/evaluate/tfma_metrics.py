"""Brier score and log-loss as TFMA metrics whose combiners merge correctly.

TFMA 0.47's own MeanSquaredError and BinaryCrossEntropy merge their first accumulator into itself
(`result = next(iter(accs)); for acc in accs: result.merge(acc)`), and the Keras metrics it wraps
drift under its jackknife: with confidence intervals on, both reported 0.024-0.079 for a Brier score
of 0.0794 (components/evaluate/tests/test_evaluate.py checks these against numpy). These keep a pair of sums and never
mutate an input accumulator. Used as MetricConfig(class_name=..., module=__name__).
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


class _MeanLossCombiner(beam.CombineFn):
    """(Σ weight * loss, Σ weight) over the examples; the output is their ratio."""

    def __init__(self, key: metric_types.MetricKey, eval_config, loss, example_weighted: bool):
        self._key = key
        self._eval_config = eval_config
        self._loss = loss
        self._example_weighted = example_weighted

    def create_accumulator(self) -> tuple[float, float]:
        return 0.0, 0.0

    def add_input(self, accumulator: tuple[float, float], element) -> tuple[float, float]:
        total, weights = accumulator
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, example_weighted=self._example_weighted,
                sub_key=self._key.sub_key):
            w = float(metric_util.safe_to_scalar(weight))
            total += w * self._loss(np.asarray(label, np.float64), np.asarray(prediction, np.float64))
            weights += w
        return total, weights

    def merge_accumulators(self, accumulators: Iterable[tuple[float, float]]) -> tuple[float, float]:
        total = weights = 0.0
        for t, w in accumulators:
            total, weights = total + t, weights + w
        return total, weights

    def extract_output(self, accumulator: tuple[float, float]) -> dict:
        total, weights = accumulator
        return {self._key: total / weights if weights else float("nan")}


def _computations(loss):
    def computations(name: str, eval_config=None, model_name: str = "", output_name: str = "",
                     example_weighted: bool = False, sub_key=None, aggregation_type=None,
                     class_weights=None) -> metric_types.MetricComputations:
        key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                     sub_key=sub_key, example_weighted=example_weighted)
        return [metric_types.MetricComputation(
            keys=[key], preprocessors=None,
            combiner=_MeanLossCombiner(key, eval_config, loss, example_weighted))]

    return computations


class BrierScore(metric_types.Metric):
    """Mean squared difference between the predicted probability and the 0/1 label."""

    def __init__(self, name: str = BRIER_SCORE):
        super().__init__(metric_util.merge_per_key_computations(_computations(_squared_error)), name=name)


class LogLoss(metric_types.Metric):
    """Mean binary cross-entropy of the predicted probability (clipped to [1e-7, 1 - 1e-7])."""

    def __init__(self, name: str = LOG_LOSS):
        super().__init__(metric_util.merge_per_key_computations(_computations(_cross_entropy)), name=name)


metric_types.register_metric(BrierScore)
metric_types.register_metric(LogLoss)
