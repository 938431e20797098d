"""Distributions read back from TFDV statistics (a DatasetFeatureStatisticsList), for the checks that
compare two datasets by their statistics alone: data validation (train vs eval, train vs the
champion's train data) and the drift monitor (the prediction log vs the model's train data).

- Numeric: the CDF at the distinct upper bounds of a histogram's buckets. TFDV's QUANTILES
  histogram has equal-count buckets, so outliers cannot stretch it the way they stretch the
  equal-width STANDARD one; summed by upper bound (TFDV splits a tied value's rows over several
  buckets sharing that bound) the counts give the CDF at each bound.
- Categorical: rows per value from the rank histogram, with OTHER for values beyond it and MISSING
  for examples without the feature.
"""

from __future__ import annotations

import collections

import numpy as np

from components.common import io as fio
from components.common.errors import PipelineInputError

MISSING = "__missing__"  # also the serving contract's missing string
OTHER = "__other__"      # categories beyond TFDV's rank histogram


def read_statistics(uri: str):
    """A DatasetFeatureStatisticsList from a binary file (what validate_data writes as stats.tfrecord)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    if fio.is_local(uri):
        with open(uri, "rb") as f:
            data = f.read()
    else:
        with fio._gfile().GFile(uri, "rb") as f:
            data = f.read()
    try:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise PipelineInputError(f"{uri} is not a binary TFDV DatasetFeatureStatisticsList: {exc}") from None


def feature_name(feature) -> str:
    return ".".join(feature.path.step) or feature.name


def features_by_name(stats) -> dict:
    """name → FeatureNameStatistics of the first dataset (empty without one)."""
    if not stats.datasets:
        return {}
    return {feature_name(f): f for f in stats.datasets[0].features}


def cdf_at_bounds(histogram) -> tuple[np.ndarray, np.ndarray]:
    """(distinct upper bounds, fraction of the histogram's rows <= each) of a TFDV histogram."""
    highs = np.array([b.high_value for b in histogram.buckets], dtype=np.float64)
    counts = np.array([b.sample_count for b in histogram.buckets], dtype=np.float64)
    keep = np.isfinite(highs) & (counts >= 0)
    highs, counts = highs[keep], counts[keep]
    if highs.size == 0 or counts.sum() <= 0:
        return np.array([]), np.array([])
    order = np.argsort(highs, kind="stable")
    highs, counts = highs[order], counts[order]
    bounds = np.unique(highs)
    cumulative = np.cumsum(counts) / counts.sum()
    # the CDF at a bound counts every bucket with that upper bound (TFDV splits tied rows over them)
    return bounds, cumulative[np.searchsorted(highs, bounds, side="right") - 1]


def quantiles_histogram(num_stats):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    return next((h for h in num_stats.histograms if h.type == statistics_pb2.Histogram.QUANTILES), None)


def numeric_cdf(num_stats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(knots, CDF of the present values at each knot, tied) from the QUANTILES histogram.

    The smallest value is a knot with CDF 0 unless rows tie on it. `tied` marks knots that hold a
    point mass (the upper bound of several buckets, or of a zero-width one): rows pile up AT such a
    knot, so the CDF must not be interpolated across the gap below it. Empty arrays without a
    QUANTILES histogram."""
    histogram = quantiles_histogram(num_stats)
    empty = np.array([])
    if histogram is None:
        return empty, empty, empty.astype(bool)
    bounds, cdf = cdf_at_bounds(histogram)
    if bounds.size == 0:
        return empty, empty, empty.astype(bool)
    highs = np.array([b.high_value for b in histogram.buckets])
    lows = np.array([b.low_value for b in histogram.buckets])
    per_bound = np.array([np.sum(highs == v) for v in bounds])
    zero_width = np.isin(bounds, highs[lows == highs])
    tied = (per_bound > 1) | zero_width
    low = float(np.min(lows))
    if np.isfinite(low) and low < bounds[0]:
        bounds, cdf, tied = np.concatenate([[low], bounds]), np.concatenate([[0.0], cdf]), np.concatenate([[False], tied])
    return bounds, cdf, tied


def category_counts(string_stats) -> tuple[dict[str, float], bool]:
    """(value → rows, whether OTHER holds values beyond the rank histogram); MISSING counts the
    examples without the feature."""
    counts: dict[str, float] = collections.defaultdict(float)
    for bucket in string_stats.rank_histogram.buckets:
        counts[bucket.label] += bucket.sample_count
    common = string_stats.common_stats
    total_values = common.tot_num_values or common.num_non_missing
    other = total_values - sum(counts.values())
    has_other = other > 0.5  # TFDV keeps the top values only (1000 by default)
    if has_other:
        counts[OTHER] += other
    if common.num_missing:
        counts[MISSING] += common.num_missing
    return dict(counts), has_other
