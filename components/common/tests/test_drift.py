import numpy as np
import pytest
from scipy import spatial, stats

from components.common import drift


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift(rng):
    baseline = rng.normal(size=20_000)
    assert drift.psi(baseline, rng.normal(size=20_000)) < 0.01
    shifted = drift.psi(baseline, rng.normal(loc=0.5, size=20_000))
    assert 0.2 < shifted < 0.4  # a half-sigma mean shift is a textbook "act" PSI (~0.25)


def test_psi_matches_the_formula_on_hand_made_bins():
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    actual = np.array([0.1, 0.2, 0.3, 0.4])
    by_hand = sum((a - e) * np.log(a / e) for a, e in zip(actual, expected))
    assert drift.psi_from_fractions(expected, actual) == pytest.approx(by_hand)


def test_psi_empty_bin_is_floored_not_infinite(rng):
    baseline = rng.uniform(0, 1, size=5_000)
    current = np.full(1_000, 0.99)  # everything in the top bin, the other nine empty
    value = drift.psi(baseline, current)
    assert np.isfinite(value) and value > 1.0


def test_psi_ignores_nan_and_handles_discrete_baselines():
    baseline = np.array([0, 0, 0, 1, 1, np.nan] * 100)
    assert drift.psi(baseline, baseline) == pytest.approx(0.0)
    assert drift.psi(baseline, np.ones(100)) > 0.2


def test_ks_equals_scipy(rng):
    a, b = rng.normal(size=3_000), rng.normal(loc=0.2, size=2_000)
    assert drift.ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_jensen_shannon_and_linf_equal_scipy_on_categories():
    p, q, categories = drift.category_distributions(["a"] * 70 + ["b"] * 30, ["a"] * 40 + ["b"] * 40 + ["c"] * 20)
    assert categories == ["a", "b", "c"]
    assert drift.jensen_shannon(p, q) == pytest.approx(spatial.distance.jensenshannon(p, q, base=2))
    assert drift.linf(p, q) == pytest.approx(0.3)
    assert drift.jensen_shannon(p, p) == 0.0


@pytest.mark.parametrize(("value", "expected"), [(0.05, "ok"), (0.1, "ok"), (0.15, "warn"), (0.21, "act")])
def test_severity(value, expected):
    assert drift.severity(value) == expected


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="baseline"):
        drift.psi([np.nan], [1.0])
    with pytest.raises(ValueError, match="warn threshold"):
        drift.severity(0.1, warn=0.3, act=0.2)
