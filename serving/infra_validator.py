"""Infra validation (TFX's InfraValidator): before a model may be pushed, the real model server
loads it and answers held-out rows over HTTP, V1 and V2, on loopback.

    result = validate(model_dir, examples_dir, requests=50)

In the pipeline this runs in the serving image (components/infra_validate), so "it loads" means it
loads with the serving image's libraries, not the trainer's. A model passes when the server is
ready within `startup_timeout_s`, every V1 request (one held-out row each) answers 200 with what
the model's label kind promises (the V2 metadata's `label_kind`: binary a finite probability in
[0, 1], multiclass K probabilities in [0, 1] summing to 1, regression a finite value), and one V2
request over the complete rows answers the same (within `agreement`). Load time and per-request
latency are recorded.

Standard library and TensorFlow only (the eval split is TFRecords of tf.Example): this module runs
in both the serving image and the pipeline's own environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

MODEL_NAME = "infra-validation"
# The serving image has no components/: these equal components/common/names.py's EVAL,
# EXAMPLES_FILE and INFRA_BLESSING_FILE (serving/tests/test_contract.py keeps them equal).
EVAL_SPLIT, EXAMPLES_FILE = "eval", "data.tfrecord.gz"
BLESSING_FILE = "infra_blessing.json"
SYNTHETIC_TRAFFIC_HEADER = "x-synthetic-traffic"  # serving/prediction_log.py
REPO_SERVING_PYTHON = Path(__file__).resolve().parents[1] / ".venv-serving" / "bin" / "python"
DEFAULT_REQUESTS = 50
DEFAULT_STARTUP_TIMEOUT_S = 180.0
DEFAULT_AGREEMENT = 1e-4
# Class probabilities are float32: K of them sum to 1 within a few ulps, not exactly.
SUM_TOLERANCE = 1e-4


@dataclasses.dataclass
class InfraValidationResult:
    blessed: bool
    reason: str
    load_seconds: float | None = None
    rows: int = 0
    v1: dict = dataclasses.field(default_factory=dict)
    v2: dict = dataclasses.field(default_factory=dict)
    server_log_tail: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class InfraValidationError(RuntimeError):
    """The model did not load or did not answer as it must."""


def server_python() -> str:
    """The interpreter that runs the model server: this one where kserve is installed (the serving
    image), else the repository's serving environment (`make setup-serving`)."""
    if importlib.util.find_spec("kserve") is not None:
        return sys.executable
    if REPO_SERVING_PYTHON.exists():
        return str(REPO_SERVING_PYTHON)
    raise InfraValidationError(f"no model server environment: kserve is not installed here and "
                               f"{REPO_SERVING_PYTHON} does not exist (run `make setup-serving`)")


def held_out_rows(examples_dir: str, limit: int) -> list[dict]:
    """Up to `limit` rows of the eval split as {feature: value}; absent features are left out."""
    import tensorflow as tf

    path = os.path.join(examples_dir, EVAL_SPLIT, EXAMPLES_FILE)
    if not tf.io.gfile.exists(path):
        raise InfraValidationError(f"no eval split at {path}")
    rows = []
    for record in tf.data.TFRecordDataset(path, compression_type="GZIP").take(limit):
        example = tf.train.Example.FromString(record.numpy())
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            if values:
                value = values[0]
                row[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        rows.append(row)
    return rows


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: dict | None = None, timeout: float = 30.0) -> tuple[int, dict, float]:
    """(status, JSON body, seconds) of one request; an HTTP error status is returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json",
                                                              SYNTHETIC_TRAFFIC_HEADER: "infra-validation"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    seconds = time.perf_counter() - started
    try:
        return status, json.loads(text or b"{}"), seconds
    except ValueError:
        return status, {"error": text[:500].decode("utf-8", "replace")}, seconds


@contextlib.contextmanager
def running_server(model_dir: str, backend: str, startup_timeout_s: float, log_path: str):
    """The model server on a free loopback port; yields (base URL, seconds until ready)."""
    port = _free_port()
    command = [server_python(), "-m", "serving.model_server", f"--model_name={MODEL_NAME}",
               f"--model_dir={model_dir}", f"--http_port={port}", f"--backend={backend}",
               "--enable_grpc=false"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise InfraValidationError(f"the model server exited with {proc.returncode} before it was ready")
            if time.monotonic() - started > startup_timeout_s:
                raise InfraValidationError(f"the model server was not ready after {startup_timeout_s:g} s")
            with contextlib.suppress(OSError):
                if _request(f"{url}/v2/models/{MODEL_NAME}/ready", timeout=2)[0] == 200:
                    break
            time.sleep(0.2)
        yield url, time.monotonic() - started
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _latency(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"requests": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(p99 * 1000, 2)}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _probability(value) -> bool:
    return _finite(value) and 0.0 <= value <= 1.0


def _class_probabilities(value, classes: int) -> bool:
    return (isinstance(value, list) and len(value) == classes and all(map(_probability, value))
            and abs(sum(value) - 1.0) <= SUM_TOLERANCE)


def answer_check(metadata: dict):
    """What one row's V1 prediction must be for the served model's label kind (binary when the
    metadata names none), as a predicate."""
    kind = metadata.get("label_kind") or "binary"
    if kind == "multiclass":
        classes = len(metadata.get("classes") or [])
        if classes < 2:
            raise InfraValidationError(f"the model metadata names {classes} classes for a multiclass model")
        return lambda value: _class_probabilities(value, classes)
    if kind == "regression":
        return _finite
    if kind == "binary":
        return _probability
    raise InfraValidationError(f"the model metadata names an unknown label kind {kind!r}")


def _flat(value) -> list[float]:
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


def check_answers(url: str, rows: list[dict], agreement: float) -> tuple[dict, dict]:
    """V1 (one row per request) and V2 (complete rows in one request) figures; raises on a bad answer."""
    status, metadata, _ = _request(f"{url}/v2/models/{MODEL_NAME}")
    if status != 200:
        raise InfraValidationError(f"model metadata answered {status}: {metadata}")
    inputs = {tensor["name"]: tensor["datatype"] for tensor in metadata.get("inputs", [])}
    valid = answer_check(metadata)
    v1_seconds, v1_answers = [], []
    for i, row in enumerate(rows):
        instance = {name: row.get(name) for name in inputs}
        status, body, seconds = _request(f"{url}/v1/models/{MODEL_NAME}:predict", {"instances": [instance]})
        predictions = body.get("predictions") if status == 200 else None
        if status != 200 or not isinstance(predictions, list) or len(predictions) != 1 \
                or not valid(predictions[0]):
            raise InfraValidationError(f"V1 request {i + 1} of {len(rows)} answered {status}: "
                                       f"{json.dumps(body)[:300]}")
        v1_seconds.append(seconds)
        v1_answers.append(predictions[0])
    complete = [i for i, row in enumerate(rows) if all(row.get(name) is not None for name in inputs)]
    v2 = {"rows": len(complete)}
    if complete:
        tensors = [{"name": name, "datatype": datatype, "shape": [len(complete)],
                    "data": [rows[i][name] for i in complete]} for name, datatype in inputs.items()]
        status, body, seconds = _request(f"{url}/v2/models/{MODEL_NAME}/infer", {"inputs": tensors})
        outputs = body.get("outputs") or [{}]
        data = outputs[0].get("data") if status == 200 else None
        width = len(_flat(v1_answers[0]))  # values per row: K class probabilities, else one
        if status != 200 or not isinstance(data, list) or len(data) != len(complete) * width:
            raise InfraValidationError(f"V2 request answered {status}: {json.dumps(body)[:300]}")
        gap = max(abs(float(p) - expected)
                  for n, i in enumerate(complete)
                  for p, expected in zip(data[n * width:(n + 1) * width], _flat(v1_answers[i])))
        if gap > agreement:
            raise InfraValidationError(f"V2 answers differ from V1 answers on the same rows by up to {gap:.2e} "
                                       f"(allowed {agreement:g})")
        v2.update(latency_ms=round(seconds * 1000, 2), max_abs_diff_vs_v1=gap)
    return {**_latency(v1_seconds), "rows_per_request": 1}, v2


def validate(model_dir: str, examples_dir: str, requests: int = DEFAULT_REQUESTS, backend: str = "onnx",
             startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S, agreement: float = DEFAULT_AGREEMENT,
             work_dir: str | None = None) -> InfraValidationResult:
    """Serve `model_dir` with the real model server and judge its answers to held-out rows."""
    if requests < 1:
        raise ValueError(f"requests must be >= 1, got {requests}")
    rows = held_out_rows(examples_dir, requests)
    if not rows:
        return InfraValidationResult(False, "the eval split has no rows to send")
    work_dir = work_dir or tempfile.mkdtemp(prefix="infra-validation-")
    log_path = os.path.join(work_dir, "model_server.log")
    load_seconds = None
    try:
        with running_server(model_dir, backend, startup_timeout_s, log_path) as (url, load_seconds):
            v1, v2 = check_answers(url, rows, agreement)
    except (InfraValidationError, OSError) as exc:
        return InfraValidationResult(False, f"infra validation failed: {exc}", load_seconds, len(rows),
                                     server_log_tail=_tail(log_path))
    reason = (f"served by the model server ({backend}): ready in {load_seconds:.1f} s, {len(rows)} V1 requests "
              f"answered (p50 {v1['p50_ms']} ms, p99 {v1['p99_ms']} ms), V2 agreed on {v2['rows']} rows")
    return InfraValidationResult(True, reason, round(load_seconds, 2), len(rows), v1, v2)


def report_markdown(result: InfraValidationResult) -> str:
    lines = [f"# Infra validation: {'passed' if result.blessed else 'FAILED'}", "", result.reason, ""]
    if result.load_seconds is not None:
        lines.append(f"- model server ready in {result.load_seconds:.2f} s")
    if result.v1:
        lines.append(f"- V1: {result.v1['requests']} requests of one held-out row, p50 {result.v1['p50_ms']} ms, "
                     f"p99 {result.v1['p99_ms']} ms")
    if result.v2.get("rows"):
        lines.append(f"- V2: one request of {result.v2['rows']} complete rows in {result.v2['latency_ms']} ms, "
                     f"max |V2 - V1| {result.v2['max_abs_diff_vs_v1']:.2e}")
    if result.server_log_tail:
        lines += ["", "## Model server log (tail)", "", "```", result.server_log_tail, "```"]
    return "\n".join(lines) + "\n"


def _tail(path: str, chars: int = 3000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return ""
