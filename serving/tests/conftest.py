"""Fixtures: a stand-in registry (stand_in.py) and real model servers on loopback ports."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("kserve", reason="serving tests need the serving venv (make setup-serving)")
import httpx  # noqa: E402

from serving.tests import stand_in  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HMDA_SAMPLE = ROOT / "tests" / "fixtures" / "hmda_sample.csv"
MODEL = "model"
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m serving.model_server` in a subprocess; `url` is http://127.0.0.1:<port>."""

    def __init__(self, model_dir: str, workdir: Path, name: str, *extra: str, model_dir_arg: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prediction_log = workdir / f"{name}-predictions.jsonl"
        self.output = workdir / f"{name}-server.log"
        cmd = [sys.executable, "-m", "serving.model_server", f"--model_name={MODEL}",
               *([f"--model_dir={model_dir}"] if model_dir_arg else []), f"--http_port={self.port}",
               f"--prediction_log={self.prediction_log}", *extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
        self._out = open(self.output, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        return self.output.read_text() if self.output.exists() else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30)

    def log_records(self, match, n: int, timeout: float = 10) -> list[dict]:
        """The prediction log's records for which match(record) holds, once there are n of them
        (the writer is asynchronous) or the timeout passed."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.prediction_log.read_text() if self.prediction_log.exists() else ""
            records = [r for r in map(json.loads, text.splitlines()) if match(r)]
            if len(records) >= n or time.monotonic() > deadline:
                return records
            time.sleep(0.05)


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> dict:
    """A registry with the stand-in model as champion: {registry, model_root, version_dir, version}."""
    path = tmp_path_factory.mktemp("registry")
    version_dir = stand_in.build_registry(str(path), MODEL)
    champion = json.loads((path / MODEL / "CHAMPION.json").read_text())
    return {"registry": path, "model_root": path / MODEL, "version_dir": Path(version_dir),
            "version": champion["version"]}


@pytest.fixture(scope="session")
def server(registry, tmp_path_factory) -> Server:
    """The SavedModel backend on the registry root (the champion is resolved from CHAMPION.json).
    One server for the session: start-up (kserve + TensorFlow imports) is most of the suite's time."""
    started = Server(str(registry["model_root"]), tmp_path_factory.mktemp("server"), "savedmodel",
                     "--backend=savedmodel")
    try:
        yield started.wait_ready()
    finally:
        returncode = started.stop()
    # SIGTERM is a graceful shutdown (the prediction log is drained and closed), not a crash.
    assert returncode == 0, started.logs()[-4000:]
    assert "prediction log" in started.logs() and "closed" in started.logs()


@pytest.fixture(scope="session")
def hmda_rows() -> list[dict]:
    """Realistic rows (all CSV columns, the label among them) with the stand-in's feature types,
    plus rows with missing values and an unseen category."""
    with open(HMDA_SAMPLE, newline="") as f:
        rows = [dict(r) for _, r in zip(range(24), csv.DictReader(f))]
    for row in rows:
        row["lvrat"] = float(row["lvrat"])
        row["chist"] = int(row["chist"])
        for column in ("pirat", "hirat", "unemp"):
            row[column] = float(row[column])
        row["mhist"] = int(row["mhist"])
    rows.append({"lvrat": None, "chist": 3, "selfemp": "yes"})
    rows.append({"lvrat": 0.95, "chist": None, "selfemp": None})
    rows.append({"lvrat": 1.2, "chist": 6, "selfemp": "unseen-category"})
    return rows


def v2_inputs(rows: list[dict]) -> list[dict]:
    datatypes = {"float": "FP32", "int": "INT64", "string": "BYTES"}
    return [{"name": c, "shape": [len(rows)], "datatype": datatypes[k], "data": [r[c] for r in rows]}
            for c, k in stand_in.FEATURE_TYPES.items()]
