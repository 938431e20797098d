"""Drift figures accumulated over the log's chunks, each judged against its thresholds and its
sampling noise.

Small samples: a figure from n logged rows against N baseline rows is above 0 without any drift
(PSI by about chi2(k-1) (1/n + 1/N)). Each row carries that no-drift level at `noise_quantile`
(0.99), and the warn/act bounds in force are max(threshold, noise level): 200 undrifted requests
against a 1000-row reference read PSI ~0.11 and KS ~0.12 (measured), which would otherwise warn.
From a few thousand rows on, the level is well below 0.1 and the thresholds alone decide.

The log (JSONL, a file, a .gz file or a directory of them, local or gfile URIs) is read in chunks
of `chunk_rows` lines and reduced to bin counts as it goes, so memory does not grow with the log.
Lines that are not JSON, or JSON but not a prediction record, are counted and skipped.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping

import numpy as np

from components.common import drift
from components.common.tfdv_stats import MISSING, OTHER
from components.monitor.baseline import Baseline, CategoricalBaseline, NumericBaseline, numeric_baseline_from_values
from components.common import label_kinds
from components.monitor.config import CATEGORICAL, JS, KS, LINF, NUMERIC, OK, PREDICTION, PSI, MonitorConfig


@dataclasses.dataclass
class Columns:
    """One chunk as arrays: the parse stage's output, the statistics stage's input."""

    numeric: dict[str, np.ndarray]   # NaN = missing (or not a number, counted in bad_values)
    categorical: dict[str, list]     # raw values, None = missing
    probability: np.ndarray          # the kind's prediction, every record (the reference ignores the window)
    in_window: np.ndarray | None     # None: all in the window
    bad_values: dict[str, int]


def _numeric_column(features: list[dict], name: str, dtype, bad: dict[str, int]) -> np.ndarray:
    values = [f.get(name) for f in features]
    try:
        return np.array(values, dtype=dtype)  # None → NaN
    except (TypeError, ValueError):  # a string or object somewhere: that value is missing, counted
        out = np.empty(len(values), dtype=dtype)
        for i, v in enumerate(values):
            ok = v is None or (type(v) in (int, float))
            out[i] = v if ok and v is not None else np.nan
            if not ok:
                bad[name] = bad.get(name, 0) + 1
        return out


def extract_columns(records: list[dict], in_window: list[bool] | None, baseline: Baseline) -> Columns:
    inside = records if in_window is None else [r for r, w in zip(records, in_window) if w]
    features = [r["features"] for r in inside]
    bad: dict[str, int] = {}
    numeric = {name: _numeric_column(features, name, base.dtype, bad) for name, base in baseline.numeric.items()}
    categorical = {name: [f.get(name) for f in features] for name in baseline.categorical}
    probability = np.array([r[baseline.prediction_field] for r in records], dtype=np.float64)
    return Columns(numeric=numeric, categorical=categorical, probability=probability,
                   in_window=None if in_window is None else np.array(in_window, dtype=bool), bad_values=bad)


class BinCounts:
    """Counts of values per cell of a NumericBaseline's grid: one searchsorted + bincount per batch
    serves both PSI and KS (no sort of the data)."""

    def __init__(self, baseline: NumericBaseline):
        self.baseline = baseline
        self.counts = np.zeros(len(baseline.grid) + 1, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        if values.size:
            cells = np.searchsorted(self.baseline.grid, values, side="left")
            self.counts += np.bincount(cells, minlength=self.counts.size)

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @property
    def valid(self) -> int:
        return int(self.counts[:-1].sum())

    def missing_fraction(self) -> float:
        return float(self.counts[-1]) / max(self.rows, 1)

    def fractions(self) -> np.ndarray:
        """Fractions per PSI bin, the missing fraction last (aligned with baseline.expected)."""
        cumulative = np.cumsum(self.counts[:-1])
        per_bin = np.diff(np.concatenate([[0], cumulative[self.baseline.edge_cells], [cumulative[-1]]]))
        return np.append(per_bin, self.counts[-1]) / max(self.rows, 1)

    def psi(self) -> float:
        return drift.psi_from_fractions(self.baseline.expected, self.fractions())

    def ks(self) -> float | None:
        if self.valid == 0:
            return None
        cdf = np.cumsum(self.counts[:-1]) / self.valid
        return float(np.max(np.abs(cdf - self.baseline.cdf)))


def category_fractions(baseline: CategoricalBaseline, current: Mapping) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Aligned (baseline, current) fractions over the union of categories; None → MISSING, and
    values the baseline lumped into OTHER → OTHER."""
    merged: dict[str, float] = collections.defaultdict(float)
    for value, n in current.items():
        key = MISSING if value is None else str(value)
        if key not in baseline.counts and baseline.has_other:
            key = OTHER
        merged[key] += n
    categories = sorted(set(baseline.counts) | set(merged))
    p = np.array([baseline.counts.get(c, 0.0) for c in categories])
    q = np.array([merged.get(c, 0.0) for c in categories])
    return p / p.sum(), q / max(q.sum(), 1e-12), categories


@dataclasses.dataclass
class DriftRow:
    feature: str
    kind: str          # numeric | categorical | prediction
    statistic: str     # psi | ks | js | linf
    value: float
    severity: str      # ok | warn | act, against max(threshold, noise)
    warn: float
    act: float
    rows: int
    noise: float | None = None  # the no-drift level for these sample sizes (see drift.noise_level)
    missing_fraction: float | None = None
    baseline_missing_fraction: float | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """The warn/act bounds in force: the thresholds, raised to the noise level for small samples."""
        noise = self.noise or 0.0
        return max(self.warn, noise), max(self.act, noise)


def judge(feature: str, kind: str, statistic: str, value: float, rows: int, config: MonitorConfig,
          noise: float | None, **extra) -> DriftRow:
    warn, act = config.bounds(statistic)
    row = DriftRow(feature, kind, statistic, float(value), OK, warn, act, rows, noise, **extra)
    row.severity = drift.severity(row.value, *row.bounds)
    return row


class DriftAccumulator:
    """Counts per feature over the log's chunks; `rows()` turns them into statistics."""

    def __init__(self, baseline: Baseline, config: MonitorConfig, prediction_baseline: np.ndarray | None = None):
        self.baseline, self.config = baseline, config
        self.numeric = {name: BinCounts(base) for name, base in baseline.numeric.items()}
        self.categorical = {name: collections.Counter() for name in baseline.categorical}
        self.bad_values: dict[str, int] = {}
        self.reference: list[np.ndarray] = []
        self.reference_rows = 0
        self.prediction: BinCounts | None = None
        self.prediction_source = "file"
        if prediction_baseline is not None:
            self.prediction = self._prediction_counts(prediction_baseline)
        else:
            self.prediction_source = "reference_window"

    def _prediction_counts(self, reference: np.ndarray) -> BinCounts:
        """Counts of the kind's prediction on bins cut from the reference (or one per class)."""
        bins = self.config.prediction_bins
        return BinCounts(numeric_baseline_from_values(self.baseline.prediction_field, reference, bins,
                                                      self.baseline.prediction_edges(reference, bins)))

    def add(self, columns: Columns) -> None:
        for name, values in columns.numeric.items():
            self.numeric[name].add(values)
        for name, values in columns.categorical.items():
            try:
                self.categorical[name].update(values)
            except TypeError:  # an unhashable value (a list): count it by its text
                self.categorical[name].update(v if v is None or isinstance(v, (str, int, float)) else str(v)
                                              for v in values)
        for name, n in columns.bad_values.items():
            self.bad_values[name] = self.bad_values.get(name, 0) + n
        self._add_predictions(columns.probability, columns.in_window)

    def _add_predictions(self, probability: np.ndarray, in_window: np.ndarray | None) -> None:
        start = 0
        if self.prediction is None:  # the reference window is still filling
            start = min(self.config.prediction_reference_rows - self.reference_rows, probability.size)
            self.reference.append(probability[:start])
            self.reference_rows += start
            if self.reference_rows < self.config.prediction_reference_rows:
                return
            self.prediction = self._prediction_counts(np.concatenate(self.reference))
        current = probability[start:]
        if in_window is not None:
            current = current[in_window[start:]]
        self.prediction.add(current)

    def _numeric_rows(self, name: str, kind: str, counts: BinCounts, notes: list[str]) -> list[DriftRow]:
        base, q = counts.baseline, self.config.noise_quantile
        actual = counts.fractions()
        missing = counts.missing_fraction()
        extra = {} if kind == PREDICTION else {"missing_fraction": missing,
                                               "baseline_missing_fraction": base.missing_fraction}
        out = [judge(name, kind, PSI, counts.psi(), counts.rows, self.config,
                     drift.noise_level(PSI, counts.rows, base.rows, q, base.expected, actual), **extra)]
        if kind == PREDICTION and self.baseline.label_kind == label_kinds.MULTICLASS:
            return out  # class indices have no order for KS to read: the class distribution's PSI says it
        ks = counts.ks()
        if ks is None:
            notes.append(f"{name}: every logged value is missing; no KS")
        else:
            out.append(judge(name, kind, KS, ks, counts.valid, self.config,
                             drift.noise_level(KS, counts.valid, base.rows * (1 - base.missing_fraction), q,
                                         base.expected), **extra))
        return out

    def rows(self) -> tuple[list[DriftRow], list[str]]:
        out, notes = [], []
        q = self.config.noise_quantile
        for name, counts in self.numeric.items():
            out += self._numeric_rows(name, NUMERIC, counts, notes)
        for name, counter in self.categorical.items():
            base = self.baseline.categorical[name]
            rows = sum(counter.values())
            p, cur, categories = category_fractions(base, counter)
            missing = float(cur[categories.index(MISSING)]) if MISSING in categories else 0.0
            extra = {"missing_fraction": missing, "baseline_missing_fraction": base.missing_fraction}
            for statistic, value in ((JS, drift.jensen_shannon(p, cur)), (LINF, drift.linf(p, cur))):
                out.append(judge(name, CATEGORICAL, statistic, value, rows, self.config,
                                 drift.noise_level(statistic, rows, base.rows, q, p, cur), **extra))
        for name, n in sorted(self.bad_values.items()):
            notes.append(f"{name}: {n} logged values were not numbers; counted as missing")
        prediction = self.prediction
        if prediction is None:
            notes.append(f"prediction: only {self.reference_rows} predictions of this version logged, fewer "
                         f"than the {self.config.prediction_reference_rows}-row reference window; no prediction drift")
        elif prediction.valid < self.config.min_rows:
            notes.append(f"prediction: {prediction.valid} predictions in the window after the reference "
                         f"window, fewer than min_rows {self.config.min_rows}; no prediction drift")
        else:
            out += self._numeric_rows(self.baseline.prediction_field, PREDICTION, prediction, notes)
        raised = [r for r in out if r.noise and r.noise > r.warn]
        if raised:
            notes.append(f"{len(raised)} figures judged against their sampling-noise level (above the warn "
                         f"threshold for these sample sizes): more rows give sharper figures")
        return out, notes
