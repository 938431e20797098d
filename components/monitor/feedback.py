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


# ------------------------------------------------------------------------------ labels


@dataclasses.dataclass
class Label:
    label: int
    timestamp: dt.datetime | None
    extra: dict


def parse_label(value) -> int | None:
    text = str(value).strip().lower()
    return 1 if text in POSITIVE else 0 if text in NEGATIVE else None


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
    for row in _label_rows(config.labels_uri):
        counts["read"] += 1
        pid, label = row.get("prediction_id"), parse_label(row.get("label"))
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
            scores.append(float(record["probability"]))
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
    y, p = np.array(outcomes, dtype=np.int64), np.array(scores, dtype=np.float64)
    notes = []
    if not matched:
        notes.append("no label matched a monitored prediction")
    overall = classification_metrics(y, p, config.threshold) if matched else {}
    slices: dict[str, dict[str, dict]] = {}
    gaps: dict[str, dict[str, float | None]] = {}
    for column, values in slice_values.items():
        values_array = np.array(values, dtype=object)
        per_value = {}
        for value in sorted(set(values)):
            mask = values_array == value
            per_value[value] = classification_metrics(y[mask], p[mask], config.threshold)
        slices[column] = per_value
        big = [m for m in per_value.values() if m["rows"] >= config.min_slice_rows]
        gaps[column] = {}
        for metric in ("fnr", "fpr", "accuracy", "auc"):
            figures = [m[metric] for m in big if m[metric] is not None]
            gaps[column][metric] = max(figures) - min(figures) if len(figures) >= 2 else None
        if found.get(column):
            notes.append(f"slice column {column}: from the {found[column]}")
    return FeedbackResult(
        threshold=config.threshold, predictions=counts.used, labelled=len(matched),
        coverage=len(matched) / counts.used if counts.used else None, labels_read=label_counts["read"],
        unmatched_labels=len(labels) - len(matched), duplicate_labels=label_counts["duplicate"],
        invalid_labels=label_counts["invalid"], late_labels=label_counts["late"], overall=overall,
        slices=slices, gaps=gaps, notes=notes)


def feedback_metrics(result: FeedbackResult) -> dict[str, float]:
    """Flat figures for KFP Metrics (None left out)."""
    out = {"label_coverage": result.coverage, "labelled_predictions": result.labelled,
           "unmatched_labels": result.unmatched_labels}
    for name in ("accuracy", "auc", "fnr", "fpr"):
        out[f"live_{name}"] = result.overall.get(name)
    for column, gap in result.gaps.items():
        for name in ("fnr", "fpr"):
            out[f"live_{name}_gap_{column}"] = gap.get(name)
    return {k: float(v) for k, v in out.items() if v is not None}


def slice_table(result: FeedbackResult) -> list[list]:
    rows = [["overall", "", result.overall.get("rows"), result.overall.get("accuracy"), result.overall.get("auc"),
             result.overall.get("fnr"), result.overall.get("fpr")]] if result.overall else []
    for column, per_value in result.slices.items():
        for value, m in per_value.items():
            rows.append([column, value, m["rows"], m["accuracy"], m["auc"], m["fnr"], m["fpr"]])
    return rows


SLICE_HEADERS: Sequence[str] = ("slice", "value", "rows", "accuracy", "AUC", "FNR", "FPR")
