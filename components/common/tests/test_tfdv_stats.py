"""Distributions read back from TFDV statistics protos (built by hand here, no TFDV run)."""

from __future__ import annotations

import numpy as np
import pytest

from components.common import drift, tfdv_stats


def _num_stats(buckets):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.NumericStatistics()
    histogram = stats.histograms.add(type=statistics_pb2.Histogram.QUANTILES)
    for low, high, count in buckets:
        histogram.buckets.add(low_value=low, high_value=high, sample_count=count)
    return stats


def test_numeric_cdf_sums_tied_buckets_and_marks_point_masses():
    # 10 rows: 1, 2, then 5 rows of 3 (split over three buckets with high 3), then 4, 5, 6
    stats = _num_stats([(1, 2, 2), (2, 3, 1), (3, 3, 2), (3, 3, 2), (3, 6, 3)])
    knots, cdf, tied = tfdv_stats.numeric_cdf(stats)
    assert knots.tolist() == [1, 2, 3, 6]
    assert cdf == pytest.approx([0.0, 0.2, 0.7, 1.0])
    assert tied.tolist() == [False, False, True, False]


def test_numeric_cdf_without_a_quantiles_histogram_is_empty():
    from tensorflow_metadata.proto.v0 import statistics_pb2

    knots, cdf, tied = tfdv_stats.numeric_cdf(statistics_pb2.NumericStatistics())
    assert knots.size == cdf.size == tied.size == 0


def test_quantile_edges_from_cdf_merge_ties_and_leave_the_last_bin_open():
    knots = np.array([0.0, 1.0, 2.0, 3.0])
    cdf = np.array([0.6, 0.8, 0.95, 1.0])  # 60% of the rows are 0
    assert drift.quantile_edges_from_cdf(knots, cdf, 10).tolist() == [0.0, 1.0, 2.0]
    assert drift.quantile_edges_from_cdf(np.arange(1, 11.0), np.arange(1, 11) / 10, 10).tolist() == list(range(1, 10))


def test_category_counts_keep_other_and_missing():
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.StringStatistics()
    stats.common_stats.num_non_missing = 10
    stats.common_stats.num_missing = 2
    for label, count in (("a", 6), ("b", 3)):
        stats.rank_histogram.buckets.add(label=label, sample_count=count)
    counts, has_other = tfdv_stats.category_counts(stats)
    assert has_other and counts == {"a": 6, "b": 3, tfdv_stats.OTHER: 1, tfdv_stats.MISSING: 2}


def test_family_quantile_is_bonferroni():
    assert drift.family_quantile(0.99, 10) == pytest.approx(0.999)
    assert drift.family_quantile(0.99, 0) == pytest.approx(0.99)
