"""Skew and drift of each feature between two TFDV statistics, judged against sampling noise.

TFDV's own numeric comparator measures the Jensen-Shannon divergence over the equal-width STANDARD
histogram: one outlier stretches its buckets, so two samples of one distribution land in different
buckets (on a hash split of openintro/loans_full_schema it flagged 11 count columns such as
delinq_2y and tax_liens, on nycflights13/flights dep_delay).
Here every distance is measured on cells that outliers cannot stretch and is compared with what
two samples of the sizes at hand show with no shift at all:

- numeric: the Jensen-Shannon divergence (base 2) over the baseline's decile bins (from its QUANTILES
  histogram), plus a cell for examples without the feature, so a column that empties out shows;
- categorical: the L-infinity distance between value frequencies, MISSING being a value.

A row is an anomaly when its distance is above the configured bound AND above the no-shift noise
level at the family-wise quantile `noise_quantile` (Bonferroni over the rows of one check): the
bound says how big a change matters, the noise level says how big a change these row counts can
tell from chance (with a few hundred rows it is above any useful bound; with 100k it is far below).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import numpy as np

from components.common import drift, tfdv_stats

SKEW, DRIFT = "skew", "drift"
NUMERIC, CATEGORICAL = "numeric", "categorical"
DECILE_BINS = 10
STATISTIC_NAMES = {
    drift.JS_DIVERGENCE: "Jensen-Shannon divergence over the baseline's decile bins",
    drift.LINF: "L-infinity distance between value frequencies",
}
PAIRS = {SKEW: "train vs eval", DRIFT: "train vs the champion's train data"}


@dataclasses.dataclass
class ShiftRow:
    feature: str
    check: str        # skew | drift
    kind: str         # numeric | categorical
    statistic: str    # drift.JS_DIVERGENCE | drift.LINF
    value: float
    bound: float      # the configured threshold
    noise: float | None  # the no-shift level at the family-wise quantile (None: not judged by noise)
    rows: int         # current (eval / new train) rows
    baseline_rows: int
    missing_fraction: float
    baseline_missing_fraction: float

    @property
    def limit(self) -> float:
        """What the value must exceed to be an anomaly: the larger of the bound and the noise level."""
        return max(self.bound, self.noise or 0.0)

    @property
    def anomalous(self) -> bool:
        return self.value > self.limit

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "limit": self.limit, "anomalous": self.anomalous}


# ------------------------------------------------------------------------------ distributions


@dataclasses.dataclass
class _Numeric:
    knots: np.ndarray      # sorted values with the CDF of the present values at each
    cdf: np.ndarray
    tied: np.ndarray       # knots holding a point mass (see tfdv_stats.numeric_cdf)
    missing_fraction: float
    rows: int

    def cdf_at(self, x: np.ndarray) -> np.ndarray:
        """Linear between knots (1% of the rows apart), except below a tied knot: its rows sit at
        the knot, so the CDF stays at the previous knot's value up to it."""
        x = np.asarray(x, dtype=np.float64)
        if self.knots.size == 0:
            return np.zeros_like(x)
        linear = np.interp(x, self.knots, self.cdf, left=0.0, right=1.0)
        above = np.searchsorted(self.knots, x, side="left")  # the first knot >= x
        inside = above < self.knots.size
        at_knot = inside & (self.knots[np.minimum(above, self.knots.size - 1)] == x)
        below_tie = inside & ~at_knot & self.tied[np.minimum(above, self.knots.size - 1)]
        previous = np.where(above > 0, self.cdf[np.maximum(above - 1, 0)], 0.0)
        return np.where(below_tie, previous, linear)

    def cells(self, edges: np.ndarray) -> np.ndarray:
        """Fractions of all rows in (-inf, e0], (e0, e1], ..., (ek, inf), then the missing fraction."""
        inside = np.diff(np.concatenate([[0.0], self.cdf_at(edges), [1.0]]))
        return np.append(np.clip(inside, 0.0, None) * (1.0 - self.missing_fraction), self.missing_fraction)


def _rows(feature, num_examples: int) -> tuple[int, float]:
    """(rows, missing fraction) of a feature, from its common statistics and the dataset's size."""
    kind = feature.WhichOneof("stats") if feature is not None else None
    if kind is None or kind not in ("num_stats", "string_stats"):
        return num_examples, 1.0
    common = getattr(feature, kind).common_stats
    present = int(common.num_non_missing)
    rows = max(int(num_examples), present + int(common.num_missing), 1)
    return rows, 1.0 - present / rows


def _numeric(feature, num_examples: int) -> _Numeric:
    rows, missing = _rows(feature, num_examples)
    if feature is None or feature.WhichOneof("stats") != "num_stats":
        return _Numeric(np.array([]), np.array([]), np.array([], dtype=bool), 1.0, rows)
    knots, cdf, tied = tfdv_stats.numeric_cdf(feature.num_stats)
    if knots.size == 0:  # present but never a finite value: all missing for this comparison
        missing = 1.0
    return _Numeric(knots, cdf, tied, missing, rows)


def decile_edges(baseline: _Numeric, bins: int = DECILE_BINS) -> np.ndarray:
    return drift.quantile_edges_from_cdf(baseline.knots, baseline.cdf, bins)


def _categories(feature, num_examples: int) -> tuple[dict[str, float], bool, int]:
    rows, _ = _rows(feature, num_examples)
    if feature is None or feature.WhichOneof("stats") != "string_stats":
        return {tfdv_stats.MISSING: float(rows)}, False, rows
    counts, has_other = tfdv_stats.category_counts(feature.string_stats)
    return counts, has_other, rows


# ------------------------------------------------------------------------------ comparison


def _numeric_row(name, check, base_feature, base_n, cur_feature, cur_n, bound, q) -> ShiftRow | None:
    base = _numeric(base_feature, base_n)
    if base.knots.size == 0:
        return None  # nothing to compare against
    current = _numeric(cur_feature, cur_n)
    edges = decile_edges(base)
    expected, actual = base.cells(edges), current.cells(edges)
    return ShiftRow(name, check, NUMERIC, drift.JS_DIVERGENCE, drift.jensen_shannon_divergence(expected, actual),
                    bound, drift.noise_level(drift.JS_DIVERGENCE, current.rows, base.rows, q, expected, actual),
                    current.rows, base.rows, current.missing_fraction, base.missing_fraction)


def _categorical_row(name, check, base_feature, base_n, cur_feature, cur_n, bound, q) -> ShiftRow | None:
    base_counts, base_other, base_rows = _categories(base_feature, base_n)
    counts, other, rows = _categories(cur_feature, cur_n)
    if base_other or other:
        base_counts, counts = _lump_rare(base_counts, counts, base_other, other)
    values = sorted(set(base_counts) | set(counts))
    p = np.array([base_counts.get(v, 0.0) for v in values])
    c = np.array([counts.get(v, 0.0) for v in values])
    if p.sum() <= 0:
        return None
    p, c = p / p.sum(), c / max(c.sum(), 1e-12)
    missing = tfdv_stats.MISSING
    return ShiftRow(name, check, CATEGORICAL, drift.LINF, drift.linf(p, c), bound,
                    drift.noise_level(drift.LINF, rows, base_rows, q, p, c), rows, base_rows,
                    counts.get(missing, 0.0) / max(rows, 1), base_counts.get(missing, 0.0) / max(base_rows, 1))


def _lump_rare(base: dict[str, float], current: dict[str, float], base_other: bool, current_other: bool
               ) -> tuple[dict[str, float], dict[str, float]]:
    """Both sides over the same cells when a side knows only a total (OTHER) beyond its rank histogram.

    A value keeps its own cell if its baseline share is at least twice the smallest share either
    side lists (so both sides list it unless it really fell), chosen from the baseline alone: a
    choice that depended on the current sample's list would bias the comparison. Every other value
    is OTHER on both sides; MISSING keeps its cell."""
    special = {tfdv_stats.OTHER, tfdv_stats.MISSING}

    def smallest_listed_share(counts: dict[str, float], lumped: bool) -> float:
        listed = [n for v, n in counts.items() if v not in special]
        return min(listed) / max(sum(counts.values()), 1e-12) if lumped and listed else 0.0

    floor = 2 * max(smallest_listed_share(base, base_other), smallest_listed_share(current, current_other))
    base_total = max(sum(base.values()), 1e-12)
    kept = {v for v, n in base.items() if v not in special and n / base_total >= floor} | {tfdv_stats.MISSING}

    def lump(counts: dict[str, float]) -> dict[str, float]:
        out = {tfdv_stats.OTHER: 0.0}
        for value, n in counts.items():
            key = value if value in kept else tfdv_stats.OTHER
            out[key] = out.get(key, 0.0) + n
        return out

    return lump(base), lump(current)


_ROW_BUILDERS = {"num_stats": _numeric_row, "string_stats": _categorical_row}


def compare(
    baseline_stats,
    current_stats,
    *,
    check: str,
    numeric_bound: float,
    categorical_bound: float,
    noise_quantile: float,
    skip: Collection[str] = (),
) -> list[ShiftRow]:
    """One ShiftRow per numeric or categorical feature of the baseline but those in `skip`.

    `noise_quantile` 0 judges by the bounds alone. A feature the current data lacks entirely counts
    as all missing there; features of other types (struct, bytes) are skipped.
    """
    base_features = tfdv_stats.features_by_name(baseline_stats)
    cur_features = tfdv_stats.features_by_name(current_stats)
    base_n = int(baseline_stats.datasets[0].num_examples) if baseline_stats.datasets else 0
    cur_n = int(current_stats.datasets[0].num_examples) if current_stats.datasets else 0
    judged = [name for name, f in sorted(base_features.items())
              if name not in skip and f.WhichOneof("stats") in _ROW_BUILDERS]
    q = drift.family_quantile(noise_quantile, len(judged)) if noise_quantile else 0.0
    bounds = {"num_stats": numeric_bound, "string_stats": categorical_bound}
    rows = []
    for name in judged:
        kind = base_features[name].WhichOneof("stats")
        row = _ROW_BUILDERS[kind](name, check, base_features[name], base_n, cur_features.get(name), cur_n,
                                  bounds[kind], q)
        if row is not None:
            rows.append(row)
    return rows
