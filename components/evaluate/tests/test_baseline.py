import numpy as np
import pandas as pd
import pytest

from components.evaluate import baseline as bl
from components.evaluate.gates import baseline_gate


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n) * 10 + 50
    colour = rng.choice(["red", "blue"], size=n)
    logit = 3 * x1 + 0.3 * (x2 - 50) + np.where(colour == "red", 1.5, -1.5)
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "y": (logit > 0).astype(int)})


@pytest.fixture(scope="module")
def scores():
    train, ev = _frame(800, 1), _frame(400, 2)
    lr = bl.logistic_baseline(train, ev, "y", ["x1", "x2"], ["colour"])
    maj = bl.majority_baseline(train["y"], ev["y"])
    return lr, maj


def test_logistic_separates_and_majority_is_the_floor(scores):
    lr, maj = scores
    assert lr.auc > 0.9
    assert maj.auc == 0.5
    assert lr.brier < maj.brier


def test_gate_fails_clearly_worse_and_passes_not_worse(scores):
    lr, _ = scores
    bad = baseline_gate(lr.auc - 0.1, lr.to_dict(), 0.01)
    ok = baseline_gate(lr.auc - 0.005, lr.to_dict(), 0.01)
    assert (bad.passed, bad.verdict, ok.passed, ok.verdict) == (False, "FAIL", True, "PASS")
    assert baseline_gate(0.8, None, 0.01).verdict == "N/A"


def test_split_columns():
    assert bl.split_columns({"a": "int", "b": "string", "y": "int", "s": "string"}, "y", ["s"]) == (["a"], ["b"])


def test_auc_standard_error_agrees_with_a_bootstrap():
    """DeLong's se against the spread of the AUC over bootstrap resamples of one sample."""
    from components.common.ranking import auc_score, auc_standard_error

    rng = np.random.default_rng(7)
    y = (rng.random(600) < 0.12).astype(int)
    scores = rng.normal(size=600) + 1.1 * y
    draws = [auc_score(y[i], scores[i]) for i in (rng.integers(0, 600, 600) for _ in range(400))]
    assert auc_standard_error(y, scores) == pytest.approx(np.std(draws), rel=0.2)
    assert auc_standard_error(y[:1], scores[:1]) is None
