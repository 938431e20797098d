"""Distribution-shift statistics shared by the canary analysis and the drift monitor.

- PSI (population stability index) for numeric values, over bins cut at the baseline's quantiles,
  with a floor for empty bins so one empty bin does not make PSI infinite.
- Two-sample Kolmogorov–Smirnov statistic for numeric values.
- Jensen–Shannon distance (base 2, in [0, 1]) and L-infinity distance for categorical values.
- A model's predictions are one number per row (label_kinds.scalar_prediction); `prediction_edges`
  bins them per label kind: one bin per class for a predicted class, else quantiles.

Rules of thumb (Siddiqi; also the defaults here): PSI < 0.1 stable, 0.1–0.2 warn, > 0.2 act.

Every figure from samples is above 0 without any shift; `noise_level` gives its no-shift quantile
for the sample sizes at hand, so callers judge a figure against max(threshold, noise).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

import numpy as np

from components.common import label_kinds

DEFAULT_BINS = 10
EMPTY_BIN_FLOOR = 1e-4
WARN = 0.1
ACT = 0.2
PSI, KS, JS, JS_DIVERGENCE, LINF = "psi", "ks", "js", "js_divergence", "linf"


def _finite(values: Iterable[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def quantile_edges(baseline: Sequence[float] | np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Interior bin edges at the baseline's quantiles (duplicates merged for discrete data)."""
    base = _finite(baseline)
    if base.size == 0:
        raise ValueError("baseline has no finite values")
    return np.unique(np.quantile(base, np.linspace(0, 1, bins + 1)[1:-1]))


def quantile_edges_from_cdf(knots: np.ndarray, cdf: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Interior bin edges from a CDF known at sorted knots: for each of 1/bins ... (bins-1)/bins the
    first knot whose CDF reaches it, merged where values tie (a feature that is mostly 0 gets few
    bins); never the largest knot (the last bin is open to +inf)."""
    knots, cdf = np.asarray(knots), np.asarray(cdf, dtype=np.float64)
    if knots.size == 0:
        raise ValueError("the CDF has no knots")
    levels = np.arange(1, bins) / bins
    index = np.clip(np.searchsorted(cdf, levels - 1e-9, side="left"), 0, knots.size - 1)
    edges = np.unique(knots[index])
    return edges[edges < knots[-1]]


def binned_fractions(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fraction of values in each of the len(edges) + 1 bins (-inf, e0], (e0, e1], ... (ek, inf)."""
    data = _finite(values)
    counts = np.bincount(np.searchsorted(edges, data, side="left"), minlength=len(edges) + 1)
    return counts / max(data.size, 1)


def psi_from_fractions(expected: np.ndarray, actual: np.ndarray, floor: float = EMPTY_BIN_FLOOR) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def prediction_edges(kind: str, baseline: Sequence[float] | np.ndarray, n_classes: int = 0,
                     bins: int = DEFAULT_BINS) -> np.ndarray:
    """PSI bin edges for one label kind's scalar predictions (label_kinds.scalar_prediction): one
    bin per class for a predicted class index (multiclass), else the baseline's quantiles (the
    probability, the value)."""
    if label_kinds.check_kind(kind) == label_kinds.MULTICLASS:
        if n_classes < 2:
            raise ValueError(f"multiclass predictions need >= 2 classes for their bins, got {n_classes}")
        return label_kinds.class_bin_edges(n_classes)
    return quantile_edges(baseline, bins)


def psi(baseline: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray,
        bins: int = DEFAULT_BINS, floor: float = EMPTY_BIN_FLOOR, edges: np.ndarray | None = None) -> float:
    """PSI of `current` against `baseline`, bins at the baseline's quantiles (or at `edges`)."""
    if edges is None:
        edges = quantile_edges(baseline, bins)
    elif _finite(baseline).size == 0:
        raise ValueError("baseline has no finite values")
    return psi_from_fractions(binned_fractions(baseline, edges), binned_fractions(current, edges), floor)


def ks_statistic(baseline: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """Two-sample KS statistic: the largest gap between the two empirical CDFs."""
    a = np.sort(_finite(baseline))
    b = np.sort(_finite(current))
    if a.size == 0 or b.size == 0:
        raise ValueError("KS needs finite values on both sides")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def category_distributions(baseline: Iterable, current: Iterable) -> tuple[np.ndarray, np.ndarray, list]:
    """Aligned probability vectors over the union of categories (None counts as its own value)."""
    base_values, base_counts = np.unique(np.asarray([str(v) for v in baseline], dtype=object), return_counts=True)
    cur_values, cur_counts = np.unique(np.asarray([str(v) for v in current], dtype=object), return_counts=True)
    categories = sorted(set(base_values.tolist()) | set(cur_values.tolist()))
    index = {c: i for i, c in enumerate(categories)}
    p = np.zeros(len(categories))
    q = np.zeros(len(categories))
    p[[index[c] for c in base_values]] = base_counts
    q[[index[c] for c in cur_values]] = cur_counts
    if p.sum() == 0 or q.sum() == 0:
        raise ValueError("categorical distance needs values on both sides")
    return p / p.sum(), q / q.sum(), categories


def jensen_shannon_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]): the square of `jensen_shannon`."""
    return jensen_shannon(p, q) ** 2


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (square root of the divergence, base 2): 0 equal, 1 disjoint."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def linf(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(p) - np.asarray(q))))


def severity(value: float, warn: float = WARN, act: float = ACT) -> str:
    """"ok", "warn" or "act" for a distance against the two thresholds."""
    if not warn <= act:
        raise ValueError(f"warn threshold {warn} must not exceed act threshold {act}")
    if value > act:
        return "act"
    if value > warn:
        return "warn"
    return "ok"


# ------------------------------------------------------------------------------ sampling noise
# A figure from n rows against N baseline rows is not 0 even without a shift. Its level at a
# quantile q of the no-shift distribution (large-sample approximations below) is what a figure must
# clearly exceed before it means anything: a quiet hour's 200 requests, or a 491-row eval split,
# read PSI ~0.1 from sampling alone, while with 100k rows the level is far below any threshold.


def normal_quantile(q: float) -> float:
    return statistics.NormalDist().inv_cdf(q)


def chi2_quantile(dof: int, q: float) -> float:
    """Wilson–Hilferty approximation of the chi-square quantile (within ~1% for dof >= 1, q <= 0.999)."""
    dof = max(dof, 1)
    return dof * (1 - 2 / (9 * dof) + normal_quantile(q) * math.sqrt(2 / (9 * dof))) ** 3


def family_quantile(q: float, tests: int) -> float:
    """The per-test quantile that keeps the chance of any false alarm over `tests` tests near 1 - q
    (Bonferroni)."""
    return 1 - (1 - q) / max(tests, 1)


def noise_level(statistic: str, n: float, baseline_n: float, q: float, expected: np.ndarray,
                actual: np.ndarray | None = None) -> float | None:
    """The statistic's `q` quantile with no shift, for n current and baseline_n baseline rows.

    PSI ~ chi2(k-1) * (1/n + 1/N) (PSI is the symmetrised KL divergence, ~ the two-sample Pearson
    statistic over n N / (n + N)); the JS divergence ~ chi2(k-1) (1/n + 1/N) / 8 nats, the JS
    distance its square root; KS: c(q) sqrt(1/n + 1/N), c = sqrt(-ln((1-q)/2) / 2); L-infinity: a
    Bonferroni normal bound over the k categories. `expected`/`actual`: the two fraction vectors
    (bins or categories); k counts the cells occupied in either. None when q is 0 or a side is empty.
    """
    if not q or n <= 0 or baseline_n <= 0:
        return None
    scale = 1.0 / n + 1.0 / baseline_n
    occupied = np.asarray(expected) > 0
    if actual is not None:
        occupied |= np.asarray(actual) > 0
    k = max(int(occupied.sum()), 2)
    if statistic == PSI:
        return chi2_quantile(k - 1, q) * scale
    if statistic == KS:
        return math.sqrt(-math.log((1 - q) / 2) / 2) * math.sqrt(scale)
    if statistic in (JS, JS_DIVERGENCE):
        divergence_bits = chi2_quantile(k - 1, q) * scale / (8 * math.log(2))
        return divergence_bits if statistic == JS_DIVERGENCE else math.sqrt(divergence_bits)
    if statistic == LINF:
        mixed = (np.asarray(expected) + (np.asarray(actual) if actual is not None else 0)) / 2
        return normal_quantile(1 - (1 - q) / (2 * k)) * math.sqrt(float(np.max(mixed * (1 - mixed))) * scale)
    raise ValueError(f"unknown statistic {statistic!r}")
