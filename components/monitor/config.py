"""The drift monitor's settings and the names its figures and decisions use."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from components.common import drift, label_kinds, names
from components.common.errors import PipelineInputError
from components.monitor.prediction_logs import parse_time

PSI, KS, JS, LINF = drift.PSI, drift.KS, drift.JS, drift.LINF
STATISTICS = (PSI, KS, JS, LINF)
NUMERIC, CATEGORICAL, PREDICTION = "numeric", "categorical", "prediction"
OK, WARN, ACT = names.DRIFT_DECISIONS
SEVERITY_ORDER = {OK: 0, WARN: 1, ACT: 2}
PREDICTION_FEATURE = "probability"  # the logged field; the prediction's row in the results
# The logged prediction per label kind (serving/prediction_log.py's PREDICTION_FIELDS): the
# probability, the predicted class index (multiclass: beside the K "probabilities"), the value.
# Each kind's field is also its prediction row's name in the results.
PREDICTION_FIELDS = {label_kinds.BINARY: PREDICTION_FEATURE, label_kinds.MULTICLASS: "predicted_class",
                     label_kinds.REGRESSION: "value"}


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
