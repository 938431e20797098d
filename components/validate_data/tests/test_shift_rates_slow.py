"""The skew/drift alarm rates over 50 random splits of each bundled dataset, in full (slow: ~15 min).

Per split: train vs eval (skew, no shift), one half of train vs the other (drift, no shift), and
train vs eval with each injected shift of test_shift.DATASETS. A false alarm in any of the 50
splits, or a shift missed in any, fails. The figures are printed (pytest -s) for the record."""

from __future__ import annotations

import json

import pytest

from components.validate_data.tests import shift_trials as st
from components.validate_data.tests.test_shift import BOUNDS, DATASETS, DROP, shifts

SPLITS = 50


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_fifty_random_splits(dataset):
    package, name, *_ = DATASETS[dataset]
    data = st.encode(st.load(package, name, drop=DROP))
    injected = shifts(dataset)
    results = st.run_trials(data, SPLITS, shifts=injected, drift=True, seed=7, **BOUNDS)
    summary = {
        "dataset": f"{package}/{name}", "rows": len(data.frame), "splits": SPLITS,
        "false_skew_alarm_splits": results[st.NO_SHIFT].trials_with_alarms,
        "false_drift_alarm_splits": results[st.DRIFT].trials_with_alarms,
        "caught": {feature: results[feature].caught(feature) for feature in injected},
        "other_features_flagged_with_a_shift": sum(len(set(f) - {feature}) for feature in injected
                                                   for f in results[feature].flagged),
        "largest_no_shift_value_over_limit": max(r.value / r.limit for rows in results[st.NO_SHIFT].rows
                                                 for r in rows),
        "shifted_value_range": {feature: [min(results[feature].values(feature)),
                                          max(results[feature].values(feature))] for feature in injected},
    }
    print(json.dumps(summary, indent=2))
    assert summary["false_skew_alarm_splits"] == 0 and summary["false_drift_alarm_splits"] == 0
    assert summary["caught"] == {feature: SPLITS for feature in injected}
    assert summary["other_features_flagged_with_a_shift"] == 0
