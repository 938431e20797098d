"""Drift monitor: the serving prediction log against the pushed model's training baseline.

Per feature, and for the prediction itself (the label kind's, config.PREDICTION_FIELDS: the
probability, the predicted class over one bin per class, or the value):

- numeric: PSI over the baseline's quantile bins (plus a bin for missing values; empty bins get
  drift.EMPTY_BIN_FLOOR) and the two-sample KS statistic;
- categorical: Jensen–Shannon distance and L-infinity distance between the category distributions
  (missing is a category).

Every figure gets a severity from warn/act thresholds (0.1 / 0.2 by default, per statistic
configurable); the decision is the worst severity, naming the features that reached it. A decision
is an output, never a failure; only unusable input (no log, no baseline, too few rows) raises.

The training baseline is in baseline.py, the figures and their noise levels in drift_counts.py, the
log reading in prediction_logs.py; this module reads, judges and decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from components.common import io as fio
from components.common import label_kinds, names
from components.common.config import RETRAIN_ON
from components.common.errors import PipelineInputError
from components.monitor.baseline import Baseline, load_baseline, read_probabilities
from components.monitor.config import ACT, OK, PREDICTION_FIELDS, SEVERITY_ORDER, WARN, MonitorConfig
from components.monitor.drift_counts import DriftAccumulator, DriftRow, extract_columns
from components.monitor.feedback import FeedbackConfig, FeedbackResult, run_feedback
from components.monitor.prediction_logs import LogCounts, LogFilter, parse_time, read_log


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
    label_kind: str = "binary"
    classes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


def log_filter(config: MonitorConfig, version: str, label_kind: str = label_kinds.BINARY) -> LogFilter:
    return LogFilter(version=None if config.all_versions else version,
                     since=parse_time(config.since, "since") if config.since else None,
                     until=parse_time(config.until, "until") if config.until else None,
                     prediction_field=PREDICTION_FIELDS[label_kind])


def feedback_for(result: MonitorResult, config: MonitorConfig, feedback: FeedbackConfig) -> FeedbackResult:
    """The labels joined with the monitored version's predictions, read for its label kind."""
    kind = dataclasses.replace(feedback, label_kind=result.label_kind, classes=tuple(result.classes))
    return run_feedback(kind, config.log_uri, log_filter(config, result.model_version, result.label_kind),
                        config.chunk_rows)


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
    filt = log_filter(config, baseline.version, baseline.label_kind)
    for records, in_window in read_log(config.log_uri, filt, counts, config.chunk_rows):
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
        label_kind=baseline.label_kind, classes=list(baseline.classes),
    )
