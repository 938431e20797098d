"""Canaries of multiclass and regression versions on the local target: real model servers (the
serving env) behind the splitter, stand-in versions (serving/tests/stand_in.py), labelled HMDA rows
as traffic. A healthy canary is promoted; one answering another class's probabilities, or values
moved up, is rolled back on its prediction PSI and its live accuracy / MAE."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from components.deploy import analysis
from components.deploy.local import LocalConfig, LocalTarget
from components.deploy.replay import ReplayObserver, load_rows
from components.deploy.rollout import PROMOTED, ROLLED_BACK, LiveState, ModelRef, rollout
from components.deploy.tests.test_local import MODEL, POLICY, REPLAY, pytestmark  # noqa: F401 (the same marks)

BROKEN = {"multiclass": {"permutation": (1, 2, 0)}, "regression": {"shift": 8.0}}
QUALITY = {"multiclass": analysis.CHECK_ACCURACY, "regression": analysis.CHECK_MAE}


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def versions(kind, tmp_path_factory) -> dict[str, ModelRef]:
    from serving.tests import stand_in

    registry = str(tmp_path_factory.mktemp(f"registry-{kind}"))
    built = {}
    for key, version, changes in (("v1", "v20250101T000000Z-one", {}),
                                  ("v2", "v20250102T000000Z-two", {"bias": stand_in.BIAS + 0.05}),
                                  ("broken", "v20250103T000000Z-broken", BROKEN[kind])):
        built[key] = ModelRef(MODEL, version, stand_in.build_registry(registry, MODEL, version=version, kind=kind,
                                                                       **changes))
    return built


@pytest.fixture(scope="module")
def rows(hmda_csv):
    from serving.tests import stand_in

    return load_rows(str(hmda_csv), stand_in.FEATURE_TYPES)


@pytest.fixture(scope="module")
def labels(kind, rows) -> list[float]:
    """What v1 predicts, made imperfect: 20% of the classes changed, or values with N(0, 2) noise."""
    from serving.tests import stand_in

    rng = np.random.default_rng(5)
    answers = stand_in.head(np.array([stand_in.score(r) for r in rows]), kind)
    if kind == "regression":
        return (answers + rng.normal(0, 2, len(rows))).tolist()
    predicted = np.argmax(answers, axis=1)
    changed = rng.random(len(rows)) < 0.2
    return np.where(changed, (predicted + 1) % 3, predicted).astype(float).tolist()


@pytest.fixture(scope="module")
def target(kind, tmp_path_factory):
    config = LocalConfig(state_dir=str(tmp_path_factory.mktemp(f"state-{kind}")), backend="onnx", seed=0,
                         ready_timeout_s=120)
    with LocalTarget(config) as t:
        yield t


def canary(target, candidate: ModelRef, rows, labels):
    stable = target.live().stable
    judge = functools.partial(analysis.analyse, prediction=analysis.prediction_kind(candidate.uri, stable.uri))
    observe = ReplayObserver(target, MODEL, rows, REPLAY, POLICY.requests_per_step, labels=labels)
    return rollout(target, candidate, POLICY, observe, judge, print)


def test_a_healthy_canary_is_promoted_and_a_broken_one_rolled_back(kind, target, versions, rows, labels):
    target.deploy(versions["v1"])
    healthy = canary(target, versions["v2"], rows, labels)
    assert healthy.outcome == PROMOTED, healthy.reason
    first = healthy.steps[0]
    assert first.figures["label_kind"] == kind and first.figures["prediction_psi"] < POLICY.max_prediction_psi
    quality = next(c for c in first.checks if c["check"] == QUALITY[kind])
    assert quality["passed"] is True and first.figures["labelled_canary"] >= POLICY.min_labelled

    broken = canary(target, versions["broken"], rows, labels)
    assert broken.outcome == ROLLED_BACK and len(broken.steps) == 1, broken.reason
    step = broken.steps[0]
    assert step.figures["prediction_psi"] > POLICY.max_prediction_psi
    quality = next(c for c in step.checks if c["check"] == QUALITY[kind])
    assert quality["passed"] is False, quality["detail"]
    assert target.live() == LiveState(stable=versions["v2"])
