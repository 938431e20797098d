"""The training baseline a version is monitored against.

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

The prediction is the label kind's (model_info.json "label_kind"; binary without it): the
probability, the predicted class index (binned one bin per class: the class distribution) or the
value (quantile bins, as the probability); a prediction baseline file holds the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np

from components.common import drift
from components.common import io as fio
from components.common import label_kinds, names, tfdv_stats
from components.common.errors import PipelineInputError
from components.common.tfdv_stats import MISSING
from components.monitor.config import PREDICTION_FEATURE, PREDICTION_FIELDS, MonitorConfig

MAX_PREDICTION_KNOTS = 2000


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
    label_kind: str = label_kinds.BINARY
    classes: tuple[str, ...] = ()

    @property
    def prediction_field(self) -> str:
        return PREDICTION_FIELDS[self.label_kind]

    def prediction_edges(self, values: np.ndarray, bins: int) -> np.ndarray | None:
        """PSI edges of the prediction: one bin per class (multiclass), else None (quantiles)."""
        if self.label_kind != label_kinds.MULTICLASS:
            return None
        return drift.prediction_edges(self.label_kind, values, len(self.classes), bins)


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
                                 bins: int = drift.DEFAULT_BINS, edges: np.ndarray | None = None) -> NumericBaseline:
    """NumericBaseline from raw values (the prediction reference): quantile bins as drift.psi cuts
    them (or bins at `edges`), the CDF at every distinct value (or MAX_PREDICTION_KNOTS quantiles)."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise PipelineInputError(f"{feature}: the baseline has no finite values")
    edges = drift.quantile_edges(finite, bins) if edges is None else np.asarray(edges, dtype=np.float64)
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
    label_kind = info.get("label_kind") or label_kinds.BINARY
    if label_kind not in label_kinds.KINDS:
        raise PipelineInputError(f"{info_uri}: unknown label_kind {label_kind!r} (one of {list(label_kinds.KINDS)})")
    for feature in features:
        if feature in (PREDICTION_FEATURE, PREDICTION_FIELDS[label_kind]):
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
                    rows=int(dataset.num_examples), numeric=numeric, categorical=categorical, notes=notes,
                    label_kind=label_kind, classes=tuple(str(c) for c in info.get("classes") or ()))


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
