"""Multi-worker training as a Vertex worker pool or a TFJob runs it: two processes on loopback with
TF_CONFIG and MultiWorkerMirroredStrategy, the same train() code; only the chief writes the model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from components.common import names
from components.train import train as T

ROOT = Path(__file__).resolve().parents[3]
EPOCHS = 5
WORKER = """
import json, sys
from components.train.train import train
t = json.loads(sys.argv[1])
info = train(t["transformed_examples_dir"], t["transform_graph_dir"], t["examples_dir"], sys.argv[2],
             epochs={epochs}, seed=42, multi_worker=sys.argv[3] == "1")
print("RESULT " + json.dumps({{k: info.get(k) for k in ("chief", "strategy", "replicas", "final_metrics")}}))
"""


def test_the_chief_is_worker_0_or_the_chief_task():
    workers = {"cluster": {"worker": ["a:1", "b:2"]}}
    assert T.is_chief(T.KIND_DEFAULT, "")
    assert T.is_chief(T.KIND_MULTI_WORKER, json.dumps({**workers, "task": {"type": "worker", "index": 0}}))
    assert not T.is_chief(T.KIND_MULTI_WORKER, json.dumps({**workers, "task": {"type": "worker", "index": 1}}))
    with_chief = {"cluster": {"chief": ["c:0"], "worker": ["a:1"]}}
    assert T.is_chief(T.KIND_MULTI_WORKER, json.dumps({**with_chief, "task": {"type": "chief", "index": 0}}))
    assert not T.is_chief(T.KIND_MULTI_WORKER, json.dumps({**with_chief, "task": {"type": "worker", "index": 0}}))


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(transformed: dict, model_dir: Path, multi_worker: bool, tf_config: dict | None) -> subprocess.Popen:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    inputs = {k: transformed[k] for k in ("transformed_examples_dir", "transform_graph_dir", "examples_dir")}
    return subprocess.Popen([sys.executable, "-c", WORKER.format(epochs=EPOCHS), json.dumps(inputs), str(model_dir),
                             "1" if multi_worker else "0"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _result(process: subprocess.Popen) -> dict:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[len("RESULT "):])


@pytest.mark.slow
def test_two_workers_on_loopback_train_one_model_that_the_chief_writes(transformed, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [_start(transformed, tmp_path / f"worker{i}", True, {"cluster": cluster, "task": {"type": "worker", "index": i}})
               for i in range(2)]
    chief, other = [_result(w) for w in workers]
    single = _result(_start(transformed, tmp_path / "single", False, None))
    assert (chief["chief"], other["chief"]) == (True, False)
    assert chief["strategy"] == T.KIND_MULTI_WORKER and chief["replicas"] == 2
    # one model: every worker ends with the same weights, so the same figures
    assert chief["final_metrics"] == pytest.approx(other["final_metrics"], abs=1e-6)
    assert (tmp_path / "worker0" / names.MODEL_INFO_FILE).exists() and (tmp_path / "worker0" / names.ONNX_FILE).exists()
    assert not (tmp_path / "worker1").exists(), "only the chief writes the model"
    # The same data in batches twice as large (64 per worker): within the fixture's noise (179
    # eval rows, 20 positives: an AUC's standard error is ~0.06) of one worker's model.
    assert abs(chief["final_metrics"]["eval_auc"] - single["final_metrics"]["eval_auc"]) < 0.12
