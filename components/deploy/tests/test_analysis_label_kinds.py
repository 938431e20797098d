"""Canary analysis for multiclass and regression versions: PSI over class bins or value quantiles,
live accuracy or MAE on labelled traffic, the kind read from model_info.json, and answers reduced
to one number per prediction from their wire format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.common import label_kinds
from components.deploy import analysis
from components.deploy.local import _predictions
from components.deploy.rollout import RolloutPolicy, VersionStats
from components.deploy.traffic import scalar_predictions

POLICY = RolloutPolicy(min_requests=30, min_labelled=100)
MULTICLASS = analysis.PredictionKind(label_kinds.MULTICLASS, 3)
REGRESSION = analysis.PredictionKind(label_kinds.REGRESSION)
RNG = np.random.default_rng(11)


def stats(version: str, predictions, labels=()) -> VersionStats:
    requests = max(len(predictions) // 8, 1)
    return VersionStats(version=version, requests=requests, latencies_ms=[10.0] * requests,
                        predictions=[float(p) for p in predictions], labels=[float(y) for y in labels])


def classes(n: int, p=(0.6, 0.3, 0.1)) -> np.ndarray:
    return RNG.choice(3, size=n, p=p).astype(float)


def flipped(labels: np.ndarray, share: float) -> np.ndarray:
    """The labels with `share` of them replaced by another class: a model that accurate."""
    wrong = RNG.random(labels.size) < share
    return np.where(wrong, (labels + 1) % 3, labels)


def check(decision, name: str) -> dict:
    return next(c for c in decision.checks if c["check"] == name)


def test_a_healthy_multiclass_canary_passes_on_class_psi_and_live_accuracy():
    labels_s, labels_c = classes(2000), classes(400)
    decision = analysis.analyse(10, stats("v1", flipped(labels_s, 0.2), labels_s),
                                stats("v2", flipped(labels_c, 0.2), labels_c), POLICY, MULTICLASS)
    assert decision.passed, decision.reasons + decision.pending
    assert decision.figures["prediction_psi"] < 0.05
    assert decision.figures["accuracy_canary"] == pytest.approx(0.8, abs=0.06)
    assert check(decision, analysis.CHECK_ACCURACY)["passed"] is True
    assert decision.figures["auc_canary"] is None  # no AUC of class indices


def test_shuffled_class_probabilities_breach_the_class_psi_and_accuracy():
    labels_s, labels_c = classes(2000), classes(400)
    shuffled = (flipped(labels_c, 0.2) + 1) % 3  # each row answers the next class's probability
    decision = analysis.analyse(10, stats("v1", flipped(labels_s, 0.2), labels_s),
                                stats("v2", shuffled, labels_c), POLICY, MULTICLASS)
    assert not decision.passed
    assert check(decision, analysis.CHECK_SHIFT)["passed"] is False and decision.figures["prediction_psi"] > 0.5
    accuracy = check(decision, analysis.CHECK_ACCURACY)
    assert accuracy["passed"] is False and accuracy["value"] < 0.25
    assert any(r.startswith("live accuracy") and "max_auc_drop" in r for r in decision.reasons)


def test_class_psi_has_one_bin_per_class():
    """Three classes at 60/30/10 against 30/30/40: PSI from the three class shares exactly."""
    stable = [0.0] * 600 + [1.0] * 300 + [2.0] * 100
    canary = [0.0] * 120 + [1.0] * 120 + [2.0] * 160
    decision = analysis.analyse(10, stats("v1", stable), stats("v2", canary), POLICY, MULTICLASS)
    e, a = np.array([0.6, 0.3, 0.1]), np.array([0.3, 0.3, 0.4])
    assert decision.figures["prediction_psi"] == pytest.approx(float(np.sum((a - e) * np.log(a / e))))


def test_a_healthy_regression_canary_passes_and_shifted_values_breach_psi_and_mae():
    truth_s, truth_c = RNG.normal(50, 10, 2000), RNG.normal(50, 10, 400)
    stable = stats("v1", truth_s + RNG.normal(0, 3, 2000), truth_s)
    healthy = analysis.analyse(10, stable, stats("v2", truth_c + RNG.normal(0, 3, 400), truth_c), POLICY, REGRESSION)
    assert healthy.passed, healthy.reasons + healthy.pending
    assert healthy.figures["mae_canary"] == pytest.approx(3 * 0.798, rel=0.15)  # E|N(0, 3)|

    shifted = analysis.analyse(10, stable, stats("v2", truth_c + 8 + RNG.normal(0, 3, 400), truth_c), POLICY,
                               REGRESSION)
    assert not shifted.passed
    assert check(shifted, analysis.CHECK_SHIFT)["passed"] is False
    mae = check(shifted, analysis.CHECK_MAE)
    assert mae["passed"] is False and mae["value"] > 7 and mae["bound"] < 3.5
    assert any(r.startswith("live MAE") for r in shifted.reasons)


def test_a_stable_of_another_kind_cannot_be_compared():
    kind = analysis.PredictionKind(label_kinds.MULTICLASS, 3, stable_kind=label_kinds.BINARY)
    decision = analysis.analyse(10, stats("v1", RNG.random(800)), stats("v2", classes(400)), POLICY, kind)
    assert not decision.passed
    assert "the stable serves a binary model, the canary a multiclass one" in decision.reasons[0]


def _version(path, info: dict | None) -> str:
    path.mkdir()
    if info is not None:
        (path / "model_info.json").write_text(json.dumps(info))
    return str(path)


def test_the_kind_comes_from_model_info(tmp_path):
    multiclass = _version(tmp_path / "m", {"label_kind": "multiclass", "classes": ["a", "b", "c", "d"]})
    old_binary = _version(tmp_path / "b", {"raw_feature_types": {"x": "float"}})
    unreadable = _version(tmp_path / "u", None)
    assert analysis.prediction_kind(multiclass, multiclass) == analysis.PredictionKind("multiclass", 4)
    assert analysis.prediction_kind(old_binary) == analysis.PredictionKind()
    assert analysis.prediction_kind(multiclass, old_binary).stable_kind == "binary"
    assert analysis.prediction_kind(multiclass, unreadable).comparable  # no model_info: not a mismatch


@pytest.mark.parametrize("values, shape, expected", [
    ([0.2, 0.9], None, [0.2, 0.9]),                          # binary / regression V1
    ([[0.2], [0.9]], None, [0.2, 0.9]),                      # [n, 1] nested
    ([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], None, [1.0, 0.0]),  # multiclass V1: the predicted class
    ([0.1, 0.7, 0.2, 0.5, 0.2, 0.3], [2, 3], [1.0, 0.0]),    # multiclass V2, row-major
    ([41.5, -3.0], [2], [41.5, -3.0]),                       # regression V2
])
def test_answers_reduce_to_one_number_per_prediction(values, shape, expected):
    assert scalar_predictions(values, shape) == expected


def test_the_splitter_reads_v2_multiclass_answers():
    body = {"outputs": [{"name": "probabilities", "shape": [2, 3], "data": [0.1, 0.2, 0.7, 0.8, 0.1, 0.1]}]}
    assert _predictions(json.dumps(body).encode()) == [2.0, 0.0]
    assert _predictions(json.dumps({"predictions": [[0.1, 0.2, 0.7]]}).encode()) == [2.0]


def test_the_report_shows_the_kinds_live_quality():
    from components.deploy.rollout import ROLLED_BACK, RolloutResult

    truth = RNG.normal(50, 10, 1200)
    step = analysis.analyse(10, stats("v1", truth[:800] + 1, truth[:800]), stats("v2", truth[800:] + 9, truth[800:]),
                            POLICY, REGRESSION)
    result = RolloutResult(target="local", model_name="m", mode="canary", candidate_version="v2", stable_version="v1",
                           outcome=ROLLED_BACK, reason="; ".join(step.reasons), steps=[step])
    markdown = analysis.report_markdown(result)
    assert "live MAE canary" in markdown and "live AUC" not in markdown
    assert f"{step.figures['mae_canary']:.4g} (≤ {step.figures['mae_bound']:.4g})" in markdown
    assert "live MAE canary" in analysis.report_html(result)
