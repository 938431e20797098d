"""Drift monitor: the serving prediction log against the pushed model's training baseline.

Per feature, and for the prediction itself:

- numeric: PSI over the baseline's quantile bins (plus a bin for missing values; empty bins get
  drift.EMPTY_BIN_FLOOR) and the two-sample KS statistic;
- categorical: Jensen–Shannon distance and L-infinity distance between the category distributions
  (missing is a category).

Every figure gets a severity from warn/act thresholds (0.1 / 0.2 by default, per statistic
configurable); the decision is the worst severity, naming the features that reached it. A decision
is an output, never a failure; only unusable input (no log, no baseline, too few rows) raises.

Feature baseline: the version's `stats.tfrecord` (TFDV statistics of the train split), not a
sample of training rows: the registry keeps no rows, and the statistics are exact where PSI and KS
need them. validate_data's QUANTILES histogram has 100 buckets of ~1% of the rows (older versions:
10 of ~10%); summed by upper bound (ties split a value's rows over several buckets sharing that
bound) they give the training CDF at each distinct bound exactly: on `make run`'s train split
(1889 rows, 10 buckets) the largest error against the raw rows was 0.0000 for every numeric
feature, and 0.0014 for the STANDARD histogram's bounds. So

  PSI: bins cut at the training deciles read from that CDF (merged where values tie) with the
       baseline's fractions from the bucket counts: the same PSI as from the raw training rows;
  KS:  max |F_train - F_log| over the bounds of both histograms: a lower bound of the exact KS,
       short by at most the training mass between two neighbouring bounds.

Float features are compared in float32, as the model and TFDV saw them (a logged 0.7 is trained on
as 0.69999999, which sits on a quantile bound when many rows hold it).

Prediction baseline: the first `prediction_reference_rows` predictions the version logged (a
reference window), compared with the window's later predictions. Not the eval split's scores: the
registry keeps neither eval rows nor their scores, and the reference window comes from the same
server, backend and clients, so its shift is change over time; the feature rows already measure
serving against training. The cost: a shift present from the first request does not show in the
prediction row (it does in the feature rows). `prediction_baseline_uri` (a file of probabilities,
e.g. eval-split scores) replaces the reference window when given.

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
import datetime as dt
import json
from collections.abc import Mapping, Sequence

import numpy as np

from components.common import drift
from components.common import io as fio
from components.common import names, tfdv_stats
from components.common.tfdv_stats import MISSING, OTHER
from components.common.config import RETRAIN_ON
from components.common.errors import PipelineInputError
from components.monitor.prediction_logs import LogCounts, LogFilter, parse_time, read_log

PSI, KS, JS, LINF = drift.PSI, drift.KS, drift.JS, drift.LINF
STATISTICS = (PSI, KS, JS, LINF)
NUMERIC, CATEGORICAL, PREDICTION = "numeric", "categorical", "prediction"
OK, WARN, ACT = names.DRIFT_DECISIONS
SEVERITY_ORDER = {OK: 0, WARN: 1, ACT: 2}
PREDICTION_FEATURE = "probability"  # the logged field; the prediction's row in the results
MAX_PREDICTION_KNOTS = 2000

# ------------------------------------------------------------------------------ config


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    log_uri: str
    registry_uri: str
    model_name: str = "model"
    model_version: str = ""         # "" = the registry's champion; the log is filtered to it
    all_versions: bool = False      # judge every logged version against the baseline
    since: str = ""                 # ISO-8601, inclusive; on the record's timestamp
    until: str = ""                 # ISO-8601, exclusive
    features: tuple[str, ...] = ()  # default: the model's raw features (model_info.json)
    warn: float = drift.WARN
    act: float = drift.ACT
    thresholds: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)  # per statistic
    min_rows: int = 100
    prediction_reference_rows: int = 1000
    prediction_baseline_uri: str = ""
    prediction_bins: int = drift.DEFAULT_BINS
    noise_quantile: float = 0.99    # 0: judge by the thresholds alone
    chunk_rows: int = 50_000

    def __post_init__(self):
        problems = []
        if not self.log_uri:
            problems.append("log_uri is required")
        if not self.registry_uri:
            problems.append("registry_uri is required")
        for statistic, (warn, act) in {**{s: (self.warn, self.act) for s in STATISTICS},
                                       **dict(self.thresholds)}.items():
            if statistic not in STATISTICS:
                problems.append(f"unknown statistic {statistic!r} in thresholds (one of {STATISTICS})")
            elif not 0 < warn <= act:
                problems.append(f"{statistic} thresholds must satisfy 0 < warn <= act, got {warn} / {act}")
        if self.min_rows < 1 or self.chunk_rows < 1 or self.prediction_bins < 2:
            problems.append("min_rows and chunk_rows must be >= 1, prediction_bins >= 2")
        if not 0 <= self.noise_quantile < 1:
            problems.append(f"noise_quantile must be in [0, 1), got {self.noise_quantile}")
        if self.prediction_reference_rows < 10 and not self.prediction_baseline_uri:
            problems.append("prediction_reference_rows must be >= 10")
        for name in ("since", "until"):
            if getattr(self, name):
                try:
                    parse_time(getattr(self, name), name)
                except PipelineInputError as exc:
                    problems.append(str(exc))
        if self.since and self.until and not problems and parse_time(self.since) >= parse_time(self.until):
            problems.append(f"since {self.since} is not before until {self.until}")
        if problems:
            raise PipelineInputError("invalid monitor config: " + "; ".join(problems))

    def bounds(self, statistic: str) -> tuple[float, float]:
        return tuple(self.thresholds.get(statistic, (self.warn, self.act)))


# ------------------------------------------------------------------------------ baseline


@dataclasses.dataclass
class NumericBaseline:
    """A CDF known at `grid` points, and PSI bins cut at some of them.

    grid: sorted knots ending with +inf (searchsorted(grid, x, "left") puts x in cell j =
    (grid[j-1], grid[j]]; NaN lands past the end, in the missing cell); cdf: the baseline's
    F(grid[j]); edge_cells: grid indices of the PSI bin edges; expected: PSI fractions per bin,
    the missing fraction last."""

    feature: str
    grid: np.ndarray
    cdf: np.ndarray
    edge_cells: np.ndarray
    expected: np.ndarray
    missing_fraction: float
    rows: int

    @property
    def dtype(self):
        return self.grid.dtype


@dataclasses.dataclass
class CategoricalBaseline:
    feature: str
    counts: dict[str, float]  # category → rows; MISSING and OTHER included when present
    has_other: bool
    rows: int

    @property
    def missing_fraction(self) -> float:
        return self.counts.get(MISSING, 0.0) / max(sum(self.counts.values()), 1e-12)


@dataclasses.dataclass
class Baseline:
    model_name: str
    version: str
    version_uri: str
    rows: int
    numeric: dict[str, NumericBaseline]
    categorical: dict[str, CategoricalBaseline]
    notes: list[str]


def _floor32(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each value: training values are float32, so F(k) = F(floor32(k))."""
    out = values.astype(np.float32)
    above = out.astype(np.float64) > values
    out[above] = np.nextafter(out[above], np.float32(-np.inf))
    return out


def numeric_baseline_from_stats(feature: str, num_stats, num_examples: int, float32: bool) -> NumericBaseline | None:
    """NumericBaseline from a TFDV NumericStatistics (see the module docstring); None without a
    QUANTILES histogram (e.g. a feature that was always missing)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    quantiles = standard = None
    for histogram in num_stats.histograms:
        if histogram.type == statistics_pb2.Histogram.QUANTILES:
            quantiles = histogram
        elif histogram.type == statistics_pb2.Histogram.STANDARD:
            standard = histogram
    if quantiles is None:
        return None
    q_bounds, q_cdf = tfdv_stats.cdf_at_bounds(quantiles)
    if q_bounds.size == 0:
        return None
    s_bounds, s_cdf = tfdv_stats.cdf_at_bounds(standard) if standard is not None else (np.array([]), np.array([]))
    cast = _floor32 if float32 else (lambda a: a.astype(np.float64))
    q_knots, s_knots = cast(q_bounds), cast(s_bounds)
    # CDF per knot, the quantile histogram's value winning where both have one (it is exact)
    cdf_by_knot = dict(zip(s_knots.tolist(), s_cdf.tolist()))
    cdf_by_knot.update(zip(q_knots.tolist(), q_cdf.tolist()))
    dtype = np.float32 if float32 else np.float64
    knots = np.array(sorted(cdf_by_knot), dtype=dtype)
    grid = np.append(knots, dtype(np.inf))
    cdf = np.append(np.array([cdf_by_knot[k] for k in knots.tolist()]), 1.0)
    # PSI edges at the deciles of the quantile histogram (validate_data writes 100 buckets)
    edges = drift.quantile_edges_from_cdf(q_knots, q_cdf, drift.DEFAULT_BINS)
    edge_cells = np.searchsorted(grid, edges.astype(dtype), side="left")
    edge_cdf = np.concatenate([[0.0], cdf[edge_cells], [1.0]])
    fractions = np.diff(edge_cdf)
    common = num_stats.common_stats
    total = max(int(num_examples), int(common.num_non_missing + common.num_missing), 1)
    missing = (int(common.num_missing) + int(quantiles.num_nan)) / total
    expected = np.append(fractions * (1.0 - missing), missing)
    return NumericBaseline(feature=feature, grid=grid, cdf=cdf, edge_cells=edge_cells, expected=expected,
                           missing_fraction=missing, rows=total)


def numeric_baseline_from_values(feature: str, values: Sequence[float] | np.ndarray,
                                 bins: int = drift.DEFAULT_BINS) -> NumericBaseline:
    """NumericBaseline from raw values (the prediction reference): quantile bins as drift.psi cuts
    them, the CDF at every distinct value (or MAX_PREDICTION_KNOTS quantiles of them)."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise PipelineInputError(f"{feature}: the baseline has no finite values")
    edges = drift.quantile_edges(finite, bins)
    distinct = np.unique(finite)
    if distinct.size > MAX_PREDICTION_KNOTS:
        distinct = np.unique(np.quantile(finite, np.linspace(0, 1, MAX_PREDICTION_KNOTS)))
    knots = np.unique(np.concatenate([distinct, edges]))
    grid = np.append(knots, np.inf)
    cdf = np.append(np.searchsorted(finite, knots, side="right") / finite.size, 1.0)
    missing = 1.0 - finite.size / data.size
    expected = np.append(drift.binned_fractions(finite, edges) * (1.0 - missing), missing)
    return NumericBaseline(feature=feature, grid=grid, cdf=cdf,
                           edge_cells=np.searchsorted(grid, edges, side="left"), expected=expected,
                           missing_fraction=missing, rows=int(data.size))


def categorical_baseline_from_stats(feature: str, string_stats, num_examples: int) -> CategoricalBaseline:
    counts, has_other = tfdv_stats.category_counts(string_stats)
    return CategoricalBaseline(feature=feature, counts=counts, has_other=has_other,
                               rows=int(num_examples or sum(counts.values())))


def resolve_version(registry_uri: str, model_name: str, version: str = "") -> tuple[str, str]:
    """(version, version directory): the named version, else the champion."""
    from components.push.registry import model_root, read_champion

    if version:
        uri = fio.join(model_root(registry_uri, model_name), names.REGISTRY_VERSIONS_DIR, version)
        if not fio.exists(uri):
            raise PipelineInputError(f"model {model_name!r} has no version {version!r} in {registry_uri} ({uri})")
        return version, uri
    champion = read_champion(registry_uri, model_name)
    if champion is None:
        raise PipelineInputError(
            f"no champion for model {model_name!r} in registry {registry_uri} "
            f"(no {names.CHAMPION_FILE}; push a model first or name a version)")
    return champion.version, champion.uri


def load_baseline(config: MonitorConfig) -> Baseline:
    version, version_uri = resolve_version(config.registry_uri, config.model_name, config.model_version)
    stats_uri = fio.join(version_uri, names.STATS_FILE)
    if not fio.exists(stats_uri):
        raise PipelineInputError(f"version {version} has no training statistics ({stats_uri}): nothing to "
                                 "compare the log with")
    stats = tfdv_stats.read_statistics(stats_uri)
    if not stats.datasets:
        raise PipelineInputError(f"{stats_uri} holds no dataset statistics")
    dataset = next((d for d in stats.datasets if d.name == names.TRAIN), stats.datasets[0])
    by_name = {tfdv_stats.feature_name(f): f for f in dataset.features}
    info_uri = fio.join(version_uri, names.MODEL_INFO_FILE)
    info = fio.read_json(info_uri) if fio.exists(info_uri) else {}
    raw_types: dict[str, str] = info.get("raw_feature_types") or {}
    features = list(config.features) or sorted(raw_types)
    if not features:
        raise PipelineInputError(f"{info_uri} names no raw_feature_types; pass the features to monitor")
    notes, numeric, categorical = [], {}, {}
    for feature in features:
        if feature == PREDICTION_FEATURE:
            continue
        stat = by_name.get(feature)
        if stat is None:
            notes.append(f"{feature}: not in the training statistics; not monitored")
            continue
        kind = stat.WhichOneof("stats")
        if kind == "num_stats":
            base = numeric_baseline_from_stats(feature, stat.num_stats, dataset.num_examples,
                                               float32=raw_types.get(feature, "float") == "float")
            if base is None:
                notes.append(f"{feature}: the training statistics have no quantiles; not monitored")
            else:
                numeric[feature] = base
        elif kind == "string_stats":
            categorical[feature] = categorical_baseline_from_stats(feature, stat.string_stats, dataset.num_examples)
        else:
            notes.append(f"{feature}: {kind} statistics are not monitored")
    if not numeric and not categorical:
        raise PipelineInputError(f"none of the features {features} can be compared with {stats_uri}")
    return Baseline(model_name=config.model_name, version=version, version_uri=version_uri,
                    rows=int(dataset.num_examples), numeric=numeric, categorical=categorical, notes=notes)


def read_probabilities(uri: str) -> np.ndarray:
    """A prediction baseline file: a JSON list, or one number per line (JSONL/text)."""
    if not fio.exists(uri):
        raise PipelineInputError(f"prediction baseline {uri} does not exist")
    text = fio.read_text(uri).strip()
    try:
        values = json.loads(text) if text.startswith("[") else [float(v) for v in text.split()]
        array = np.asarray(values, dtype=np.float64).ravel()
    except (ValueError, TypeError) as exc:
        raise PipelineInputError(f"prediction baseline {uri}: expected numbers, {exc}") from None
    if array.size < 10:
        raise PipelineInputError(f"prediction baseline {uri} has {array.size} values; need at least 10")
    return array


# ------------------------------------------------------------------------------ columns and counts


@dataclasses.dataclass
class Columns:
    """One chunk as arrays: the parse stage's output, the statistics stage's input."""

    numeric: dict[str, np.ndarray]   # NaN = missing (or not a number, counted in bad_values)
    categorical: dict[str, list]     # raw values, None = missing
    probability: np.ndarray          # every record of the chunk (the reference ignores the window)
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
    probability = np.array([r["probability"] for r in records], dtype=np.float64)
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


# ------------------------------------------------------------------------------ result


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


@dataclasses.dataclass
class MonitorResult:
    model_name: str
    model_version: str
    log_uri: str
    decision: str                   # ok | warn | act
    triggered: list[str]            # features at the decision's severity (worst first)
    by_severity: dict[str, list[str]]
    rows: list[DriftRow]
    counts: LogCounts
    window: dict[str, str]
    baseline: dict
    notes: list[str]
    created_at: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def judge(feature: str, kind: str, statistic: str, value: float, rows: int, config: MonitorConfig,
          noise: float | None, **extra) -> DriftRow:
    warn, act = config.bounds(statistic)
    row = DriftRow(feature, kind, statistic, float(value), OK, warn, act, rows, noise, **extra)
    row.severity = drift.severity(row.value, *row.bounds)
    return row


def should_retrain(decision: str, retrain_on: str = ACT) -> bool:
    """Whether a monitor decision triggers retraining: at or above `retrain_on` ("warn" or "act"),
    or always ("always": a scheduled run retrains whatever the drift is)."""
    if retrain_on not in RETRAIN_ON:
        raise PipelineInputError(f"retrain_on must be one of {RETRAIN_ON}, got {retrain_on!r}")
    if decision not in SEVERITY_ORDER:
        raise PipelineInputError(f"unknown drift decision {decision!r}")
    return retrain_on == names.RETRAIN_ALWAYS or SEVERITY_ORDER[decision] >= SEVERITY_ORDER[retrain_on]


def decide(rows: Sequence[DriftRow]) -> tuple[str, list[str], dict[str, list[str]]]:
    """Worst severity over the rows, the features at it (by their largest value) and all flagged."""
    worst: dict[str, tuple[int, float]] = {}
    for row in rows:
        rank = (SEVERITY_ORDER[row.severity], row.value / row.bounds[1])
        if row.feature not in worst or rank > worst[row.feature]:
            worst[row.feature] = rank
    by_severity = {level: sorted((f for f, (s, _) in worst.items() if s == SEVERITY_ORDER[level]),
                                 key=lambda f: -worst[f][1]) for level in (ACT, WARN)}
    decision = ACT if by_severity[ACT] else WARN if by_severity[WARN] else OK
    return decision, by_severity.get(decision, []), by_severity


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
            self.prediction = BinCounts(numeric_baseline_from_values(PREDICTION_FEATURE, prediction_baseline,
                                                                     config.prediction_bins))
        else:
            self.prediction_source = "reference_window"

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
            self.prediction = BinCounts(numeric_baseline_from_values(
                PREDICTION_FEATURE, np.concatenate(self.reference), self.config.prediction_bins))
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
            out += self._numeric_rows(PREDICTION_FEATURE, PREDICTION, prediction, notes)
        raised = [r for r in out if r.noise and r.noise > r.warn]
        if raised:
            notes.append(f"{len(raised)} figures judged against their sampling-noise level (above the warn "
                         f"threshold for these sample sizes): more rows give sharper figures")
        return out, notes


def log_filter(config: MonitorConfig, version: str) -> LogFilter:
    return LogFilter(version=None if config.all_versions else version,
                     since=parse_time(config.since, "since") if config.since else None,
                     until=parse_time(config.until, "until") if config.until else None)


def _no_data_message(config: MonitorConfig, version: str, counts: LogCounts) -> str:
    if counts.lines == 0 or counts.lines == counts.blank:
        return f"the prediction log {config.log_uri} is empty: no predictions to monitor"
    parts = [f"{counts.lines} lines read", f"{counts.malformed} not JSON", f"{counts.invalid} not prediction records"]
    if counts.other_versions:
        parts.append("other versions: " + ", ".join(f"{v} ({n})" for v, n in sorted(counts.other_versions.items())))
    if counts.outside_window:
        parts.append(f"{counts.outside_window} outside the window")
    who = "any version" if config.all_versions else f"version {version}"
    return f"no usable predictions of {who} in {config.log_uri}: " + "; ".join(parts)


def run_monitor(config: MonitorConfig, baseline: Baseline | None = None) -> MonitorResult:
    """Read the log, compare with the baseline, decide. Raises PipelineInputError for unusable input."""
    baseline = baseline or load_baseline(config)
    prediction_baseline = read_probabilities(config.prediction_baseline_uri) if config.prediction_baseline_uri else None
    accumulator = DriftAccumulator(baseline, config, prediction_baseline)
    counts = LogCounts()
    for records, in_window in read_log(config.log_uri, log_filter(config, baseline.version), counts, config.chunk_rows):
        accumulator.add(extract_columns(records, in_window, baseline))
    if counts.used == 0:
        raise PipelineInputError(_no_data_message(config, baseline.version, counts))
    if counts.used < config.min_rows:
        raise PipelineInputError(f"only {counts.used} predictions in the window of {config.log_uri}; "
                                 f"drift needs at least min_rows={config.min_rows}")
    rows, notes = accumulator.rows()
    decision, triggered, by_severity = decide(rows)
    if counts.malformed or counts.invalid:
        notes.append(f"{counts.malformed} malformed and {counts.invalid} invalid log lines skipped")
    lost = {k: counts.sink.get(k, 0) for k in ("records_dropped", "unanswered", "orphan_responses", "bad_events")}
    if any(lost.values()):
        notes.append("traffic the log sink could not record: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in lost.items()))
    return MonitorResult(
        model_name=config.model_name, model_version=baseline.version, log_uri=config.log_uri,
        decision=decision, triggered=triggered, by_severity=by_severity, rows=rows, counts=counts,
        window={"since": config.since, "until": config.until},
        baseline={"statistics": fio.join(baseline.version_uri, names.STATS_FILE), "training_rows": baseline.rows,
                  "prediction": accumulator.prediction_source,
                  "prediction_rows": (accumulator.prediction.baseline.rows if accumulator.prediction else
                                      accumulator.reference_rows),
                  "versions": "all" if config.all_versions else baseline.version},
        notes=baseline.notes + notes,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
