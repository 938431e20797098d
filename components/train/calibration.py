"""Calibrated probabilities: undo the class-weight prior shift, then fit a calibrator on validation.

Training with class weights w_c = n / (2 n_c) trains the model as if both classes were equally
frequent, so its odds are the true odds times n_0 / n_1: adding log(n_1 / n_0) to its logit undoes
that (the prior-shift correction). A calibrator fitted on the validation split, never on eval, then
maps the corrected logit to a probability:

* platt: sigmoid(a * z + b), a logistic regression on z (two parameters; any validation size);
* isotonic: a monotone piecewise-linear map of z (scikit-learn's IsotonicRegression, interpolated
  between its knots), only with enough validation rows: it overfits small splits (ISOTONIC_MIN_ROWS);
* auto (the default): isotonic from ISOTONIC_MIN_ROWS validation rows, else platt.

The calibrator is built from plain Dense/ReLU layers on top of the model's logit, so the exported
SavedModel and the ONNX model return calibrated scores with no extra serving step.

Multi-class labels get temperature scaling (Guo et al. 2017): softmax((z + s) / T), one parameter
T fitted on validation by log-loss (T < 1, sharpening, only from ISOTONIC_MIN_ROWS rows), after the
prior-shift correction s_c = log(w_0 / w_c) of class weights; auto and platt mean it there,
isotonic is binary only. Regression values get a linear recalibration, slope * value + intercept,
least squares on validation (auto: from ISOTONIC_MIN_ROWS rows).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from components.common.config import CALIBRATION_METHODS as METHODS
from components.common.errors import PipelineInputError

METHOD_AUTO, METHOD_PLATT, METHOD_ISOTONIC, METHOD_NONE = METHODS
# scikit-learn's user guide: isotonic calibration overfits with fewer than about 1,000 rows.
ISOTONIC_MIN_ROWS = 1000
# Isotonic outputs are kept off 0 and 1 so log-loss stays finite.
PROBABILITY_EPSILON = 1e-6
ECE_BINS = 10


@dataclasses.dataclass
class Calibrator:
    method: str
    prior_shift: float
    """Added to the model's logit: log(n_1 / n_0) of the train split (0 without class weights)."""
    platt: tuple[float, float] | None = None
    """(a, b) of sigmoid(a * z + b)."""
    knots: list[float] | None = None
    values: list[float] | None = None
    """Isotonic: the probability at each knot of z, linear in between, constant outside."""

    def apply(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64) + self.prior_shift
        if self.method == METHOD_PLATT:
            a, b = self.platt
            return 1.0 / (1.0 + np.exp(-(a * z + b)))
        if self.method == METHOD_ISOTONIC:
            return np.interp(z, self.knots, self.values)
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def prior_shift(class_weights: dict[int, float] | None) -> float:
    """The logit correction for training with `class_weights`: the weighted odds are the true odds
    times w_1 / w_0 (0 when no weights were used)."""
    if not class_weights:
        return 0.0
    return math.log(class_weights[0] / class_weights[1])


def choose_method(method: str, validation_rows: int) -> str:
    if method not in METHODS:
        raise PipelineInputError(f"calibration method must be one of {list(METHODS)}, got {method!r}")
    if method == METHOD_AUTO:
        return METHOD_ISOTONIC if validation_rows >= ISOTONIC_MIN_ROWS else METHOD_PLATT
    return method


def fit(logits: np.ndarray, labels: np.ndarray, method: str, shift: float) -> Calibrator:
    """A calibrator of `method` (platt/isotonic/none; auto resolved first) fitted on validation."""
    z = np.asarray(logits, dtype=np.float64).ravel() + shift
    y = np.asarray(labels).ravel().astype(int)
    method = choose_method(method, len(y))
    if method == METHOD_NONE:
        return Calibrator(METHOD_NONE, shift)
    if len(np.unique(y)) < 2:
        raise PipelineInputError(
            f"calibration needs both classes in the validation split, got {len(y)} rows of class "
            f"{int(y[0]) if len(y) else None}; use more rows or a larger validation_fraction"
        )
    if method == METHOD_PLATT:
        from sklearn.linear_model import LogisticRegression

        # Unregularised (C large): two parameters need no shrinkage; lbfgs on one feature.
        fitted = LogisticRegression(C=1e6, max_iter=1000).fit(z.reshape(-1, 1), y)
        return Calibrator(METHOD_PLATT, shift, platt=(float(fitted.coef_[0, 0]), float(fitted.intercept_[0])))
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=PROBABILITY_EPSILON,
                                y_max=1.0 - PROBABILITY_EPSILON).fit(z, y)
    knots, values = _distinct_knots(fitted.X_thresholds_, fitted.y_thresholds_)
    return Calibrator(METHOD_ISOTONIC, shift, knots=[float(v) for v in knots], values=[float(v) for v in values])


METHOD_TEMPERATURE = "temperature"


@dataclasses.dataclass
class SoftmaxCalibrator:
    method: str
    temperature: float
    prior_shifts: list[float]
    """Added to each class's logit before dividing by the temperature (0s without class weights)."""

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return softmax((np.asarray(logits, dtype=np.float64) + np.asarray(self.prior_shifts)) / self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def prior_shifts(class_weights: dict[int, float] | None, n_classes: int) -> list[float]:
    """Per-class logit corrections for training with `class_weights` (softmax ignores a common
    constant, so log(w_0 / w_c) undoes the weights' prior shift)."""
    if not class_weights:
        return [0.0] * n_classes
    return [math.log(class_weights[0] / class_weights[c]) for c in range(n_classes)]


def fit_softmax(logits: np.ndarray, labels: np.ndarray, method: str, shifts: list[float]) -> SoftmaxCalibrator:
    """Temperature scaling fitted on validation (auto/platt/temperature), or T = 1 (none)."""
    from scipy.optimize import minimize_scalar

    if method not in (*METHODS, METHOD_TEMPERATURE):
        raise PipelineInputError(f"calibration method must be one of {list(METHODS)}, got {method!r}")
    if method == METHOD_ISOTONIC:
        raise PipelineInputError("isotonic calibration needs a binary label; multi-class labels get "
                                 "temperature scaling (calibration_method auto)")
    if method == METHOD_NONE:
        return SoftmaxCalibrator(METHOD_NONE, 1.0, list(shifts))
    z = np.asarray(logits, dtype=np.float64) + np.asarray(shifts)
    y = np.asarray(labels).ravel().astype(int)

    def log_loss_at(log_t: float) -> float:
        return multiclass_log_loss(softmax(z / math.exp(log_t)), y)

    # T in [0.05, 20]; sharpening (T < 1) only from ISOTONIC_MIN_ROWS rows: a small validation
    # split the model classifies perfectly drives T to its floor (penguins: T 0.085 on 37 rows,
    # every probability then 0 or 1), which no held-out row supports.
    lowest = -3.0 if len(y) >= ISOTONIC_MIN_ROWS else 0.0
    best = minimize_scalar(log_loss_at, bounds=(lowest, 3.0), method="bounded")
    log_t = best.x if log_loss_at(best.x) < log_loss_at(0.0) else 0.0  # the search stops near, not at, a bound
    return SoftmaxCalibrator(METHOD_TEMPERATURE, float(math.exp(log_t)), list(shifts))


def multiclass_log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.mean(np.log(p)))


def multiclass_summary(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, the top-class confidence's ECE, the multi-class Brier score and log-loss."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).ravel().astype(int)
    top = p.argmax(axis=1)
    onehot = np.eye(p.shape[1])[y]
    return {
        "accuracy": float(np.mean(top == y)),
        "expected_calibration_error": expected_calibration_error(p.max(axis=1), (top == y).astype(np.float64)),
        "brier_score": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
        "log_loss": multiclass_log_loss(p, y),
    }


def softmax_layers(calibrator: SoftmaxCalibrator, logit, name: str):
    """softmax((z + s) / T) as a fixed Dense layer and a Softmax named `name`."""
    import tf_keras as keras

    k = len(calibrator.prior_shifts)
    t = float(calibrator.temperature)
    scaled = keras.layers.Dense(k, trainable=False, name=f"{name}_temperature",
                                kernel_initializer=keras.initializers.Constant(np.eye(k) / t),
                                bias_initializer=keras.initializers.Constant(np.asarray(calibrator.prior_shifts) / t))(logit)
    return keras.layers.Softmax(name=name)(scaled)


@dataclasses.dataclass
class LinearCalibrator:
    """A regression model's value recalibrated on validation: slope * value + intercept."""

    method: str
    slope: float
    intercept: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(values, dtype=np.float64) + self.intercept

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


METHOD_LINEAR = "linear"


def fit_linear(values: np.ndarray, labels: np.ndarray, method: str) -> LinearCalibrator:
    """Least squares of the label on the value (platt/linear; auto from ISOTONIC_MIN_ROWS rows), else
    the identity: it removes the mean's bias and the over- or under-spread an early-stopped network
    leaves."""
    if method not in (*METHODS, METHOD_LINEAR):
        raise PipelineInputError(f"calibration method must be one of {list(METHODS)}, got {method!r}")
    if method == METHOD_ISOTONIC:
        raise PipelineInputError("isotonic calibration needs a binary label; regression labels get a linear "
                                 "recalibration (calibration_method auto)")
    # auto: from ISOTONIC_MIN_ROWS rows; on a small split the slope is noise (CPS1985's 80 validation
    # rows moved the eval mean prediction 1.3 dollars off)
    if method == METHOD_NONE or (method == METHOD_AUTO and len(labels) < ISOTONIC_MIN_ROWS):
        return LinearCalibrator(METHOD_NONE, 1.0, 0.0)
    x = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if len(y) < 3 or not np.std(x) > 0:
        raise PipelineInputError(f"linear recalibration needs 3 or more validation rows and predictions that "
                                 f"vary, got {len(y)} rows; use calibration_method none or more rows")
    slope, intercept = np.polyfit(x, y, 1)
    return LinearCalibrator(METHOD_LINEAR, float(slope), float(intercept))


def regression_summary(values: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean prediction over mean label, RMSE and R² of values against labels."""
    v = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    mse = float(np.mean((v - y) ** 2))
    return {"calibration": float(v.mean() / y.mean()) if y.mean() else float("nan"),
            "root_mean_squared_error": math.sqrt(mse), "r2": 1.0 - mse / float(np.var(y)) if np.var(y) else float("nan")}


def linear_layer(calibrator: LinearCalibrator, logit, scale: float, offset: float, name: str):
    """slope * (scale * z + offset) + intercept as one fixed Dense layer over the standardised output."""
    import tf_keras as keras

    const = keras.initializers.Constant
    return keras.layers.Dense(1, trainable=False, name=name, kernel_initializer=const(calibrator.slope * scale),
                              bias_initializer=const(calibrator.slope * offset + calibrator.intercept))(logit)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ_bins (n_bin / n) |mean label - mean prediction| over equal-width probability bins."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += abs(y[mask].sum() - p[mask].sum())
    return total / len(p) if len(p) else float("nan")


def summary(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Calibration (mean prediction / mean label), ECE, Brier score and log-loss."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), 1e-12, 1 - 1e-12)
    y = np.asarray(labels, dtype=np.float64).ravel()
    return {
        "calibration": float(p.mean() / y.mean()) if y.mean() > 0 else float("nan"),
        "expected_calibration_error": expected_calibration_error(p, y),
        "brier_score": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
    }


def calibration_layers(calibrator: Calibrator, logit, name: str):
    """Keras 2 layers from the model's logit tensor to the calibrated probability named `name`.

    Fixed (non-trainable) Dense and ReLU layers only, which tf2onnx converts to MatMul/Add/Relu/Clip.
    Isotonic: y = y_0 + Σ_i (y_{i+1} - y_i) clip((z - x_i) / (x_{i+1} - x_i), 0, 1): the linear
    interpolation between knots, constant outside them."""
    import tf_keras as keras

    const = keras.initializers.Constant
    shift = float(calibrator.prior_shift)
    if calibrator.method in (METHOD_PLATT, METHOD_NONE):
        a, b = calibrator.platt if calibrator.method == METHOD_PLATT else (1.0, 0.0)
        return keras.layers.Dense(1, activation="sigmoid", trainable=False, name=name,
                                  kernel_initializer=const(a), bias_initializer=const(a * shift + b))(logit)
    knots, values = np.asarray(calibrator.knots), np.asarray(calibrator.values)
    if len(knots) == 1:  # a constant map
        return keras.layers.Dense(1, trainable=False, name=name, kernel_initializer="zeros",
                                  bias_initializer=const(values[0]))(logit)
    widths = np.diff(knots)
    # segment i's share of its rise, clip((z - x_i) / w_i, 0, 1) with z = logit + shift: each term
    # is bounded, so float32 sums of steep segments do not cancel
    ramps = keras.layers.Dense(len(widths), trainable=False, name=f"{name}_segments",
                               kernel_initializer=const((1.0 / widths).reshape(1, -1)),
                               bias_initializer=const((shift - knots[:-1]) / widths))(logit)
    ramps = keras.layers.ReLU(max_value=1.0, name=f"{name}_ramps")(ramps)
    return keras.layers.Dense(1, trainable=False, name=name, kernel_initializer=const(np.diff(values).reshape(-1, 1)),
                              bias_initializer=const(values[0]))(ramps)


def _distinct_knots(knots: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Knots with distinct x (IsotonicRegression can repeat an x at a vertical step: the last y
    is kept, so the map and its layers agree)."""
    x = np.asarray(knots, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    keep = np.concatenate([np.diff(x) > 1e-9, [True]])
    return x[keep], y[keep]


def youden_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The decision threshold maximising Youden's J (TPR - FPR) on these rows: with calibrated
    probabilities of a rare class 0.5 flags almost nothing, so train picks it on validation.
    Midway between the two scores that bound the best cut, so it does not sit on a row's score."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(int)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        raise PipelineInputError("choosing a decision threshold needs both classes in the validation split")
    order = np.argsort(-p, kind="stable")
    scores, hits = p[order], y[order]
    tpr = np.cumsum(hits) / positives
    fpr = np.cumsum(1 - hits) / negatives
    distinct = np.r_[scores[1:] < scores[:-1], True]  # cut only between different scores
    j = np.where(distinct, tpr - fpr, -np.inf)
    best = int(np.argmax(j))
    below = scores[best + 1] if best + 1 < len(scores) else 0.0
    return float((scores[best] + below) / 2)
