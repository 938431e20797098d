"""Model version resolution and the two inference backends (SavedModel, ONNX Runtime).

Registry layout (components/push/registry.py; constants duplicated here because the serving image
ships only this package — serving/tests/test_contract.py checks they still match components.common.names):

    <registry>/<model_name>/CHAMPION.json     {"version": ..., "path": "versions/<version>", ...}
    <registry>/<model_name>/versions/<version>/saved_model/, model.onnx, model_info.json, lineage.json

What the model answers depends on its label kind (model_info.json "label_kind", "classes",
"output"; absent: binary, as versions before label kinds): `OutputSpec` says which output to read
and its shape, [N] ("probability", "value") or [N, K] ("probabilities").
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import numpy as np

from serving.features import KINDS
from serving.label_kinds import BINARY, MULTICLASS, OUTPUT_NAMES, REGRESSION  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

CHAMPION_FILE = "CHAMPION.json"
SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "model.onnx"
MODEL_INFO_FILE = "model_info.json"
LINEAGE_FILE = "lineage.json"
SERVING_RAW = "serving_raw"
PROBABILITY = OUTPUT_NAMES[BINARY]
BACKENDS = ("savedmodel", "onnx")


class ModelLoadError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    path: str     # the version directory
    version: str


def resolve_model_dir(model_dir: str) -> ModelVersion:
    """A version directory as is, or a registry model root's champion (CHAMPION.json)."""
    model_dir = os.path.abspath(model_dir)
    pointer = os.path.join(model_dir, CHAMPION_FILE)
    if os.path.isfile(pointer):
        with open(pointer, encoding="utf-8") as f:
            record = json.load(f)
        try:
            path = os.path.normpath(os.path.join(model_dir, record["path"]))
            version = str(record["version"])
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"{pointer} lacks 'version' or 'path': {record!r}") from exc
        if not os.path.isdir(path):
            raise ModelLoadError(f"{pointer} names {record['path']}, which does not exist")
        return ModelVersion(path=path, version=version)
    if os.path.isdir(os.path.join(model_dir, SAVED_MODEL_DIR)) or os.path.isfile(os.path.join(model_dir, ONNX_FILE)):
        lineage = _read_json(os.path.join(model_dir, LINEAGE_FILE))
        version = str(lineage.get("model_version") or os.path.basename(model_dir.rstrip("/")))
        return ModelVersion(path=model_dir, version=version)
    raise ModelLoadError(
        f"{model_dir} is neither a model version directory (no {SAVED_MODEL_DIR}/ or {ONNX_FILE}) "
        f"nor a registry model root (no {CHAMPION_FILE})"
    )


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_model_info(version_dir: str) -> dict:
    return _read_json(os.path.join(version_dir, MODEL_INFO_FILE))


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What the model answers: its label kind, the output to read, and the class names (multiclass)."""

    kind: str = BINARY
    name: str = PROBABILITY
    classes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        """Values per row: K class probabilities, else one."""
        return len(self.classes) if self.kind == MULTICLASS else 1


def output_spec(model_info: dict) -> OutputSpec:
    """The OutputSpec model_info.json declares; a version without "label_kind" is binary."""
    kind = model_info.get("label_kind") or BINARY
    if kind not in OUTPUT_NAMES:
        raise ModelLoadError(f"{MODEL_INFO_FILE} label_kind {kind!r} is not one of {list(OUTPUT_NAMES)}")
    classes = tuple(str(c) for c in model_info.get("classes") or ())
    if kind == MULTICLASS and len(classes) < 2:
        raise ModelLoadError(f"{MODEL_INFO_FILE} names {len(classes)} classes for a multiclass model (needs >= 2)")
    return OutputSpec(kind, model_info.get("output") or OUTPUT_NAMES[kind], classes if kind == MULTICLASS else ())


def _pick_output(wanted: str, available: list[str], spec: OutputSpec, where: str) -> str:
    """The output named `wanted` ("name" or "name:0"); binary falls back to the first output, as
    versions before label kinds were served, other kinds must name theirs."""
    match = next((o for o in available if o.split(":")[0] == wanted), None)
    if match is not None:
        return match
    if spec.kind == BINARY and available:
        return available[0]
    raise ModelLoadError(f"{where} has no output {wanted!r} for a {spec.kind} model (outputs: {available})")


def shape_answer(values, rows: int, spec: OutputSpec) -> np.ndarray:
    """The backend's output as [rows] (binary, regression) or [rows, K] (multiclass)."""
    array = np.asarray(values, np.float64).reshape(rows, -1)
    if array.shape[1] != spec.width:
        raise ModelLoadError(f"the model answered {array.shape[1]} values per row for '{spec.name}', "
                             f"expected {spec.width} ({spec.kind})")
    return array if spec.kind == MULTICLASS else array[:, 0]


def _rows(columns: dict[str, np.ndarray]) -> int:
    return len(next(iter(columns.values())))


def _check_types(feature_types: Any, source: str) -> dict[str, str]:
    if not isinstance(feature_types, dict) or not feature_types:
        raise ModelLoadError(f"{source}: raw feature types must be a non-empty {{column: kind}} object")
    bad = {c: k for c, k in feature_types.items() if k not in KINDS}
    if bad:
        raise ModelLoadError(f"{source}: unknown feature kinds {bad} (expected one of {KINDS})")
    return dict(feature_types)


class SavedModelBackend:
    """The SavedModel's `serving_raw` signature (transform graph + Keras model)."""

    platform = "tensorflow_savedmodel"

    def __init__(self, version_dir: str, model_info: dict):
        import tensorflow as tf

        self._tf = tf
        path = os.path.join(version_dir, SAVED_MODEL_DIR)
        if not os.path.isdir(path):
            raise ModelLoadError(f"no SavedModel at {path}")
        self._loaded = tf.saved_model.load(path)
        if SERVING_RAW not in self._loaded.signatures:
            raise ModelLoadError(f"{path} has no '{SERVING_RAW}' signature (has {list(self._loaded.signatures)})")
        self._fn = self._loaded.signatures[SERVING_RAW]
        specs = self._fn.structured_input_signature[1]
        kinds = {tf.float32: "float", tf.int64: "int", tf.string: "string"}
        from_signature = {}
        for name, spec in specs.items():
            if spec.dtype not in kinds:
                raise ModelLoadError(f"{SERVING_RAW} input '{name}' has unsupported dtype {spec.dtype.name}")
            from_signature[name] = kinds[spec.dtype]
        if "raw_feature_types" in model_info:
            self.feature_types = _check_types(model_info["raw_feature_types"], MODEL_INFO_FILE)
            if self.feature_types != from_signature:
                raise ModelLoadError(
                    f"{MODEL_INFO_FILE} raw_feature_types {self.feature_types} disagree with the "
                    f"{SERVING_RAW} signature {from_signature}"
                )
        else:
            self.feature_types = from_signature
        self._dtypes = {c: specs[c].dtype for c in self.feature_types}
        self.spec = output_spec(model_info)
        self.output = _pick_output(self.spec.name, list(self._fn.structured_outputs), self.spec,
                                   f"the {SERVING_RAW} signature")

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        tf = self._tf
        feeds = {c: tf.constant(columns[c], dtype=self._dtypes[c]) for c in self.feature_types}
        return shape_answer(self._fn(**feeds)[self.output].numpy(), _rows(columns), self.spec)


class OnnxBackend:
    """model.onnx over raw features (the export with the transform inside), on ONNX Runtime."""

    platform = "onnxruntime_onnx"

    def __init__(self, version_dir: str, model_info: dict, threads: int = 0):
        import onnxruntime as ort

        path = os.path.join(version_dir, ONNX_FILE)
        if not os.path.isfile(path):
            raise ModelLoadError(f"no ONNX model at {path}")
        onnx_info = model_info.get("onnx") or {}
        if onnx_info.get("inputs") != "raw":
            raise ModelLoadError(
                f"{path} takes {onnx_info.get('inputs') or 'unknown'} inputs, not raw features "
                f"({MODEL_INFO_FILE} onnx.inputs); serve the SavedModel instead"
            )
        self.feature_types = _check_types(model_info.get("raw_feature_types"), MODEL_INFO_FILE)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._inputs = {}
        for tensor in self._session.get_inputs():
            column = tensor.name.split(":")[0]
            if column not in self.feature_types:
                raise ModelLoadError(f"ONNX input '{tensor.name}' is not a raw feature {list(self.feature_types)}")
            self._inputs[column] = tensor.name
        self.spec = output_spec(model_info)
        self.output = _pick_output(onnx_info.get("output") or self.spec.name,
                                   [o.name for o in self._session.get_outputs()], self.spec, path)

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: columns[column] for column, name in self._inputs.items()}
        return shape_answer(self._session.run([self.output], feeds)[0], _rows(columns), self.spec)


def load_backend(version_dir: str, backend: str, model_info: dict, onnx_threads: int = 1):
    if backend == "savedmodel":
        return SavedModelBackend(version_dir, model_info)
    if backend == "onnx":
        return OnnxBackend(version_dir, model_info, threads=onnx_threads)
    raise ModelLoadError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
