"""Label feedback: logged predictions joined with late-arriving labels by prediction_id.

Labels file: CSV with a header, or JSONL (by extension; .csv else JSON lines), with columns
`prediction_id`, `label` (1/0, yes/no, true/false) and optionally `timestamp` (when the label
became known) and any other columns, which may serve as slice columns.

Figures, overall and per value of each slice column: rows, positives, accuracy, AUC (when both
classes are present; rank-based, ties averaged), FNR and FPR at the decision threshold (positive
means probability > threshold, as TFMA and the evaluate component count it), precision, mean
predicted probability and the observed positive rate; per slice column, the largest gap between
its values (over values with at least `min_slice_rows` labelled rows). A slice column is looked up
in the labels file first, then in the logged features: the model server logs only the model's
raw features, so attributes the model does not take (e.g. HMDA's afam) must come with the labels.

Per label kind (the monitored version's, model_info.json): binary as above; multiclass labels are
class indices 0..K-1 or class names, the figures rows and accuracy (the logged predicted class
against the label); regression labels are numbers, the figures rows, MAE, RMSE, mean prediction
and mean label. The slice gaps are over the kind's figures.

Bookkeeping: coverage = labelled predictions / predictions in the window; labels whose id matches
no monitored prediction (unknown id, another version, outside the window) are counted, as are
duplicates (the one with the latest timestamp, else the last in the file, wins), unreadable labels
and, with `as_of`, labels stamped after it (late: not known yet at that time).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from collections.abc import Sequence

import numpy as np

from components.common import io as fio
from components.common import label_kinds
from components.common.ranking import auc_score
from components.common.errors import PipelineInputError
from components.common.tfdv_stats import MISSING
from components.monitor.prediction_logs import LogCounts, LogFilter, parse_time, read_log

POSITIVE = ("1", "1.0", "yes", "true", "y", "t")
NEGATIVE = ("0", "0.0", "no", "false", "n", "f")


@dataclasses.dataclass(frozen=True)
class FeedbackConfig:
    labels_uri: str
    threshold: float = 0.5
    slice_columns: tuple[str, ...] = ()
    as_of: str = ""            # ISO-8601: labels stamped later are not known yet (late)
    min_slice_rows: int = 10   # slices smaller than this are reported but left out of the gaps
    label_kind: str = label_kinds.BINARY
    classes: tuple[str, ...] = ()  # multiclass: class i's name (labels may name classes)

    def __post_init__(self):
        problems = []
        if not self.labels_uri:
            problems.append("labels_uri is required")
        if not 0.0 <= self.threshold <= 1.0:
            problems.append(f"threshold must be in [0, 1], got {self.threshold}")
        if self.as_of:
            try:
                parse_time(self.as_of, "as_of")
            except PipelineInputError as exc:
                problems.append(str(exc))
        if self.min_slice_rows < 1:
            problems.append("min_slice_rows must be >= 1")
        if self.label_kind not in label_kinds.KINDS:
            problems.append(f"label_kind must be one of {list(label_kinds.KINDS)}, got {self.label_kind!r}")
        if problems:
            raise PipelineInputError("invalid feedback config: " + "; ".join(problems))


@dataclasses.dataclass
class FeedbackResult:
    threshold: float
    predictions: int            # monitored predictions (version, window)
    labelled: int               # ... with a label
    coverage: float | None
    labels_read: int
    unmatched_labels: int       # label ids with no monitored prediction
    duplicate_labels: int
    invalid_labels: int
    late_labels: int
    overall: dict
    slices: dict[str, dict[str, dict]]
    gaps: dict[str, dict[str, float | None]]
    notes: list[str]
    label_kind: str = label_kinds.BINARY

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------ metrics


def classification_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    y = np.asarray(labels).astype(bool)
    p = np.asarray(scores, dtype=np.float64)
    predicted = p > threshold
    tp, fp = int((predicted & y).sum()), int((predicted & ~y).sum())
    fn, tn = int((~predicted & y).sum()), int((~predicted & ~y).sum())
    n, positives = int(y.size), tp + fn

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    return {"rows": n, "positives": positives, "accuracy": ratio(tp + tn, n), "auc": auc_score(y, p),
            "fnr": ratio(fn, positives), "fpr": ratio(fp, fp + tn), "precision": ratio(tp, tp + fp),
            "mean_probability": float(p.mean()) if n else None, "positive_rate": ratio(positives, n),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def multiclass_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict:
    """Rows and accuracy of predicted class indices against the labels'."""
    n = int(np.asarray(labels).size)
    hits = int((np.asarray(predicted) == np.asarray(labels)).sum())
    return {"rows": n, "accuracy": hits / n if n else None}


def regression_metrics(labels: np.ndarray, values: np.ndarray) -> dict:
    """Rows, MAE, RMSE, mean prediction and mean label of predicted values."""
    y, v = np.asarray(labels, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if not y.size:
        return {"rows": 0, "mae": None, "rmse": None, "mean_prediction": None, "mean_label": None}
    errors = v - y
    return {"rows": int(y.size), "mae": float(np.abs(errors).mean()), "rmse": float(np.sqrt((errors ** 2).mean())),
            "mean_prediction": float(v.mean()), "mean_label": float(y.mean())}


def kind_metrics(config: FeedbackConfig, labels: np.ndarray, predictions: np.ndarray) -> dict:
    if config.label_kind == label_kinds.MULTICLASS:
        return multiclass_metrics(labels, predictions)
    if config.label_kind == label_kinds.REGRESSION:
        return regression_metrics(labels, predictions)
    return classification_metrics(labels, predictions, config.threshold)


# The figures per kind in the slice table, the gaps and the KFP metrics (binary: as before).
TABLE_METRICS = {label_kinds.BINARY: ("accuracy", "auc", "fnr", "fpr"), label_kinds.MULTICLASS: ("accuracy",),
                 label_kinds.REGRESSION: ("mae", "rmse")}
GAP_METRICS = {label_kinds.BINARY: ("fnr", "fpr", "accuracy", "auc"), label_kinds.MULTICLASS: ("accuracy",),
               label_kinds.REGRESSION: ("mae", "rmse")}
METRIC_TITLES = {"accuracy": "accuracy", "auc": "AUC", "fnr": "FNR", "fpr": "FPR", "mae": "MAE", "rmse": "RMSE"}


# ------------------------------------------------------------------------------ labels


@dataclasses.dataclass
class Label:
    label: float  # 0/1, a class index or a value
    timestamp: dt.datetime | None
    extra: dict


def parse_label(value) -> int | None:
    text = str(value).strip().lower()
    return 1 if text in POSITIVE else 0 if text in NEGATIVE else None


def parse_class(value, classes: Sequence[str]) -> int | None:
    """A class index 0..K-1, given as the index or as the class name."""
    text = str(value).strip()
    if text in classes:
        return list(classes).index(text)
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() and 0 <= number < len(classes) else None


def parse_value(value) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def label_parser(config: FeedbackConfig):
    """The label's reading for the kind: 0/1, a class index, a value; None for an unreadable one."""
    if config.label_kind == label_kinds.MULTICLASS:
        return lambda value: parse_class(value, config.classes)
    if config.label_kind == label_kinds.REGRESSION:
        return parse_value
    return parse_label


def _label_rows(uri: str) -> list[dict]:
    if not fio.exists(uri):
        raise PipelineInputError(f"labels file {uri} does not exist")
    text = fio.read_text(uri)
    if uri.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        missing = {"prediction_id", "label"} - set(reader.fieldnames or ())
        if missing:
            raise PipelineInputError(f"labels file {uri} lacks column(s) {sorted(missing)} "
                                     f"(header: {reader.fieldnames})")
        return list(reader)
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        rows.append(record if isinstance(record, dict) else {"__line__": number})
    return rows


def read_labels(config: FeedbackConfig) -> tuple[dict[str, Label], dict[str, int]]:
    """prediction_id → Label, and counts (read, duplicate, invalid, late)."""
    as_of = parse_time(config.as_of, "as_of") if config.as_of else None
    labels: dict[str, Label] = {}
    counts = {"read": 0, "duplicate": 0, "invalid": 0, "late": 0}
    parse = label_parser(config)
    for row in _label_rows(config.labels_uri):
        counts["read"] += 1
        pid, label = row.get("prediction_id"), parse(row.get("label"))
        stamp = None
        if row.get("timestamp") not in (None, ""):
            try:
                stamp = parse_time(str(row["timestamp"]))
            except PipelineInputError:
                label = None
        if not pid or label is None:
            counts["invalid"] += 1
            continue
        if as_of is not None and stamp is not None and stamp > as_of:
            counts["late"] += 1
            continue
        extra = {k: v for k, v in row.items() if k not in ("prediction_id", "label", "timestamp")}
        pid = str(pid)
        if pid in labels:
            counts["duplicate"] += 1
            earlier = labels[pid]
            if earlier.timestamp is not None and stamp is not None and stamp < earlier.timestamp:
                continue
        labels[pid] = Label(label, stamp, extra)
    if counts["read"] == 0:
        raise PipelineInputError(f"labels file {config.labels_uri} holds no labels")
    return labels, counts


# ------------------------------------------------------------------------------ join


def _slice_value(value) -> str:
    return MISSING if value is None or value == "" else str(value)


def run_feedback(config: FeedbackConfig, log_uri: str, filt: LogFilter, chunk_rows: int = 50_000) -> FeedbackResult:
    labels, label_counts = read_labels(config)
    scores: list[float] = []
    outcomes: list[int] = []
    slice_values: dict[str, list[str]] = {c: [] for c in config.slice_columns}
    found: dict[str, str] = {}  # slice column → where it was found
    matched: set[str] = set()
    counts = LogCounts()
    for records, in_window in read_log(log_uri, filt, counts, chunk_rows):
        for i, record in enumerate(records):
            if in_window is not None and not in_window[i]:
                continue
            pid = str(record.get("prediction_id"))
            label = labels.get(pid)
            if label is None or pid in matched:
                continue
            matched.add(pid)
            scores.append(float(record[filt.prediction_field]))
            outcomes.append(label.label)
            for column in config.slice_columns:
                if column in label.extra:
                    found.setdefault(column, "labels file")
                    slice_values[column].append(_slice_value(label.extra[column]))
                else:
                    if column in record["features"]:
                        found.setdefault(column, "logged features")
                    slice_values[column].append(_slice_value(record["features"].get(column)))
    if counts.used == 0:
        raise PipelineInputError(f"no monitored predictions in {log_uri} to join labels with")
    absent = [c for c in config.slice_columns if c not in found]
    if matched and absent:
        raise PipelineInputError(
            f"slice column(s) {absent} are neither in the labels file nor in the logged features "
            "(the model server logs only the model's raw features: send other attributes with the labels)")
    regression = config.label_kind == label_kinds.REGRESSION
    y, p = np.array(outcomes, dtype=np.float64 if regression else np.int64), np.array(scores, dtype=np.float64)
    notes = []
    if not matched:
        notes.append("no label matched a monitored prediction")
    overall = kind_metrics(config, y, p) if matched else {}
    slices: dict[str, dict[str, dict]] = {}
    gaps: dict[str, dict[str, float | None]] = {}
    for column, values in slice_values.items():
        values_array = np.array(values, dtype=object)
        per_value = {}
        for value in sorted(set(values)):
            mask = values_array == value
            per_value[value] = kind_metrics(config, y[mask], p[mask])
        slices[column] = per_value
        big = [m for m in per_value.values() if m["rows"] >= config.min_slice_rows]
        gaps[column] = {}
        for metric in GAP_METRICS[config.label_kind]:
            figures = [m[metric] for m in big if m[metric] is not None]
            gaps[column][metric] = max(figures) - min(figures) if len(figures) >= 2 else None
        if found.get(column):
            notes.append(f"slice column {column}: from the {found[column]}")
    return FeedbackResult(
        threshold=config.threshold, predictions=counts.used, labelled=len(matched),
        coverage=len(matched) / counts.used if counts.used else None, labels_read=label_counts["read"],
        unmatched_labels=len(labels) - len(matched), duplicate_labels=label_counts["duplicate"],
        invalid_labels=label_counts["invalid"], late_labels=label_counts["late"], overall=overall,
        slices=slices, gaps=gaps, notes=notes, label_kind=config.label_kind)


def feedback_metrics(result: FeedbackResult) -> dict[str, float]:
    """Flat figures for KFP Metrics (None left out)."""
    out = {"label_coverage": result.coverage, "labelled_predictions": result.labelled,
           "unmatched_labels": result.unmatched_labels}
    for name in TABLE_METRICS[result.label_kind]:
        out[f"live_{name}"] = result.overall.get(name)
    gap_names = ("fnr", "fpr") if result.label_kind == label_kinds.BINARY else TABLE_METRICS[result.label_kind]
    for column, gap in result.gaps.items():
        for name in gap_names:
            out[f"live_{name}_gap_{column}"] = gap.get(name)
    return {k: float(v) for k, v in out.items() if v is not None}


def slice_table(result: FeedbackResult) -> list[list]:
    names = TABLE_METRICS[result.label_kind]
    rows = [["overall", "", result.overall.get("rows"), *(result.overall.get(n) for n in names)]] \
        if result.overall else []
    for column, per_value in result.slices.items():
        for value, m in per_value.items():
            rows.append([column, value, m["rows"], *(m[n] for n in names)])
    return rows


def slice_headers(result: FeedbackResult) -> list[str]:
    return ["slice", "value", "rows", *(METRIC_TITLES[n] for n in TABLE_METRICS[result.label_kind])]
