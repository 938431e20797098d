"""Calibration: the prior-shift correction, Platt and isotonic fits, their Keras layers (what the
SavedModel and ONNX serve) against the numpy map, and the figures train and evaluate report."""

from __future__ import annotations

import os

import numpy as np
import pytest

from components.common.errors import PipelineInputError
from components.train import calibration as cal

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _weighted_logits(n: int, seed: int, rate: float = 0.1):
    """Labels with a known positive rate and the logits a model trained with balanced class weights
    would give: the true log-odds plus log(n_0 / n_1)."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(np.log(rate / (1 - rate)), 1.5, size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    weights = {0: n / (2 * (labels == 0).sum()), 1: n / (2 * labels.sum())}
    return true_logit + np.log(weights[1] / weights[0]), labels, weights


def test_prior_shift_undoes_balanced_class_weights():
    logits, labels, weights = _weighted_logits(20_000, 1)
    shift = cal.prior_shift(weights)
    assert shift == pytest.approx(np.log(weights[0] / weights[1]))
    raw = cal.summary(1 / (1 + np.exp(-logits)), labels)
    corrected = cal.summary(1 / (1 + np.exp(-(logits + shift))), labels)
    assert raw["calibration"] > 2  # inflated, as the weighted model's scores were on HMDA (3.07)
    assert corrected["calibration"] == pytest.approx(1.0, abs=0.05)
    assert corrected["expected_calibration_error"] < 0.02 < raw["expected_calibration_error"]
    assert cal.prior_shift(None) == 0.0


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_fitted_calibrators_are_calibrated_on_held_out_rows(method):
    logits, labels, weights = _weighted_logits(5_000, 2)
    fitted = cal.fit(logits, labels, method, cal.prior_shift(weights))
    assert fitted.method == method
    held_logits, held_labels, _ = _weighted_logits(5_000, 3)
    figures = cal.summary(fitted.apply(held_logits), held_labels)
    assert figures["calibration"] == pytest.approx(1.0, abs=0.1)
    assert figures["expected_calibration_error"] < 0.03


def test_auto_picks_isotonic_only_with_enough_rows_and_none_keeps_the_shift():
    assert cal.choose_method("auto", cal.ISOTONIC_MIN_ROWS - 1) == "platt"
    assert cal.choose_method("auto", cal.ISOTONIC_MIN_ROWS) == "isotonic"
    with pytest.raises(PipelineInputError, match="calibration method"):
        cal.choose_method("beta", 10)
    logits, labels, weights = _weighted_logits(500, 4)
    plain = cal.fit(logits, labels, "none", cal.prior_shift(weights))
    assert np.allclose(plain.apply(logits), 1 / (1 + np.exp(-(logits + plain.prior_shift))))


def test_one_class_validation_is_a_clear_error():
    with pytest.raises(PipelineInputError, match="both classes in the validation split"):
        cal.fit(np.zeros(10), np.zeros(10), "platt", 0.0)


@pytest.mark.parametrize("method", ["platt", "isotonic", "none"])
def test_keras_layers_compute_the_same_map(method):
    """The exported model's calibration head equals Calibrator.apply, inside and outside the knots."""
    import tf_keras as keras

    logits, labels, weights = _weighted_logits(3_000, 5)
    fitted = cal.fit(logits, labels, method, cal.prior_shift(weights))
    z = keras.Input(shape=(1,))
    head = keras.Model(z, cal.calibration_layers(fitted, z, "probability"))
    probe = np.concatenate([np.linspace(logits.min() - 3, logits.max() + 3, 400), logits[:200]])
    got = head.predict(probe.reshape(-1, 1), verbose=0).ravel()
    assert np.max(np.abs(got - fitted.apply(probe))) < 1e-5


def test_expected_calibration_error_by_hand():
    p = np.array([0.05, 0.05, 0.95, 0.95])
    y = np.array([0, 1, 1, 1])
    # bin 0: mean label 0.5 vs 0.05 → 0.45 * 2/4; bin 9: 1.0 vs 0.95 → 0.05 * 2/4
    assert cal.expected_calibration_error(p, y) == pytest.approx(0.25)


def test_youden_threshold_separates_and_sits_between_scores():
    p = np.array([0.02, 0.05, 0.08, 0.11, 0.30, 0.40, 0.09])
    y = np.array([0, 0, 0, 1, 1, 1, 0])
    t = cal.youden_threshold(p, y)
    assert 0.09 < t < 0.11  # every positive above, every negative below
    with pytest.raises(PipelineInputError, match="both classes"):
        cal.youden_threshold(p, np.ones(7))
