"""Skew and drift on data nobody tuned for: random splits of bundled datasets raise nothing, injected
shifts are caught and named (shift_trials.py; TFDV statistics in memory, as validate computes them).

The fast tests run a few splits; tests/test_data_validation_rates.py (slow) runs 50 per dataset."""

from __future__ import annotations

import numpy as np
import pytest

from components.common import drift
from components.common.config import PipelineConfig
from components.validate_data import shift
from components.validate_data.tests import shift_trials as st

D = PipelineConfig()
BOUNDS = dict(numeric_bound=D.skew_jensen_shannon_threshold, categorical_bound=D.skew_linf_threshold,
              noise_quantile=D.data_noise_quantile)

# (package, dataset, heavy-tailed column rescaled 20%, categorical column and the value whose share
# doubles, column that disappears)
DATASETS = {
    "loans": ("openintro", "loans_full_schema", "annual_income", ("loan_purpose", "credit_card"), "debt_to_income"),
    "flights": ("nycflights13", "flights", "dep_delay", ("carrier", "UA"), "air_time"),
}
DROP = ("rownames", "time_hour")  # a row id; a timestamp text column with one value per hour


def shifts(dataset: str) -> dict[str, st.Shift]:
    _, _, heavy, (column, value), gone = DATASETS[dataset]
    return {heavy: st.scale(heavy, 1.2), column: st.double_share(column, value), gone: st.drop(gone)}


@pytest.fixture(scope="module")
def loans() -> st.Encoded:
    return st.encode(st.load("openintro", "loans_full_schema", drop=DROP))


@pytest.fixture(scope="module")
def flights_sample() -> st.Encoded:
    return st.encode(st.load("nycflights13", "flights", drop=DROP, rows=60_000))


@pytest.mark.parametrize("dataset", ["loans", "flights_sample"])
def test_random_splits_raise_nothing_and_every_injected_shift_is_named(dataset, request):
    data = request.getfixturevalue(dataset)
    injected = shifts(dataset.split("_")[0])
    results = st.run_trials(data, 3, shifts=injected, drift=True, seed=1, **BOUNDS)
    assert results[st.NO_SHIFT].flagged == [[]] * 3, "false skew alarm"
    assert results[st.DRIFT].flagged == [[]] * 3, "false drift alarm"
    for feature in injected:
        assert results[feature].flagged == [[feature]] * 3, feature


def test_cells_from_statistics_match_the_raw_rows(loans):
    """Decile cells read back from TFDV's QUANTILES histogram against the raw values: on a tied
    column (loan amounts pile up on round numbers) and a continuous one."""
    from components.common import tfdv_stats

    rng = np.random.default_rng(0)
    is_eval = st.split(len(loans.frame), rng)
    train, evaluation = (st.statistics(st.decode(loans.records[m])) for m in (~is_eval, is_eval))
    for column in ("loan_amount", "annual_income", "months_since_last_delinq"):
        base = shift._numeric(tfdv_stats.features_by_name(train)[column], int((~is_eval).sum()))
        edges = shift.decile_edges(base)
        for stats, rows in ((train, ~is_eval), (evaluation, is_eval)):
            values = loans.frame[column].to_numpy(float)[rows]
            missing = np.isnan(values).mean()
            exact = np.append(drift.binned_fractions(values[~np.isnan(values)], edges) * (1 - missing), missing)
            cells = shift._numeric(tfdv_stats.features_by_name(stats)[column], int(rows.sum())).cells(edges)
            # 100 quantile buckets: each cell within ~one bucket's share of the rows
            assert np.max(np.abs(cells - exact)) < 0.01, (column, cells, exact)


def test_unlisted_categories_are_compared_as_one_other_value(flights_sample):
    """tailnum has ~4,000 values, beyond TFDV's 1,000-value rank histogram on each side: compared
    value by value only where both sides list it (it read L∞ 0.39 before, on no shift at all)."""
    rng = np.random.default_rng(2)
    is_eval = st.split(len(flights_sample.frame), rng)
    train, evaluation = (st.statistics(st.decode(flights_sample.records[m])) for m in (~is_eval, is_eval))
    row = next(r for r in shift.compare(train, evaluation, check=shift.SKEW, **BOUNDS) if r.feature == "tailnum")
    assert row.value < 0.02 and not row.anomalous


def test_small_samples_are_judged_by_their_noise_not_the_bound():
    """With 200 eval rows the noise level is above the numeric bound; with 50,000 it is far below."""
    deciles = np.append(np.full(10, 0.1), 0.0)
    small = drift.noise_level(drift.JS_DIVERGENCE, 200, 800, drift.family_quantile(0.999, 20), deciles)
    large = drift.noise_level(drift.JS_DIVERGENCE, 50_000, 200_000, drift.family_quantile(0.999, 20), deciles)
    assert small > D.skew_jensen_shannon_threshold > 20 * large


def test_js_divergence_noise_matches_simulated_no_shift_quantiles():
    rng = np.random.default_rng(0)
    n, big_n, q = 500, 2000, 0.99
    values = []
    for _ in range(400):
        base, current = rng.lognormal(size=big_n), rng.lognormal(size=n)
        edges = drift.quantile_edges(base, 10)
        values.append(drift.jensen_shannon_divergence(drift.binned_fractions(base, edges),
                                                      drift.binned_fractions(current, edges)))
    level = drift.noise_level(drift.JS_DIVERGENCE, n, big_n, q, np.full(10, 0.1))
    simulated = float(np.quantile(values, q))
    assert simulated * 0.8 < level < simulated * 1.3, (level, simulated)
