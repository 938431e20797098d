"""Distribution-shift statistics shared by the canary analysis and the drift monitor.

- PSI (population stability index) for numeric values, over bins cut at the baseline's quantiles,
  with a floor for empty bins so one empty bin does not make PSI infinite.
- Two-sample Kolmogorov–Smirnov statistic for numeric values.
- Jensen–Shannon distance (base 2, in [0, 1]) and L-infinity distance for categorical values.

Rules of thumb (Siddiqi; also the defaults here): PSI < 0.1 stable, 0.1–0.2 warn, > 0.2 act.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

DEFAULT_BINS = 10
EMPTY_BIN_FLOOR = 1e-4
WARN = 0.1
ACT = 0.2


def _finite(values: Iterable[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def quantile_edges(baseline: Sequence[float] | np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Interior bin edges at the baseline's quantiles (duplicates merged for discrete data)."""
    base = _finite(baseline)
    if base.size == 0:
        raise ValueError("baseline has no finite values")
    return np.unique(np.quantile(base, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_fractions(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fraction of values in each of the len(edges) + 1 bins (-inf, e0], (e0, e1], ... (ek, inf)."""
    data = _finite(values)
    counts = np.bincount(np.searchsorted(edges, data, side="left"), minlength=len(edges) + 1)
    return counts / max(data.size, 1)


def psi_from_fractions(expected: np.ndarray, actual: np.ndarray, floor: float = EMPTY_BIN_FLOOR) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(baseline: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray,
        bins: int = DEFAULT_BINS, floor: float = EMPTY_BIN_FLOOR) -> float:
    """PSI of `current` against `baseline`, bins at the baseline's quantiles."""
    edges = quantile_edges(baseline, bins)
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
