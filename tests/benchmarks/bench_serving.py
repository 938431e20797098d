"""Benchmark: the KServe model server against the model's own in-process inference (the floor).

    .venv-serving/bin/python tests/benchmarks/bench_serving.py [--registry out/run/registry]
        [--model model] [--model-dir VERSION_DIR] [--data tests/fixtures/hmda_sample.csv]
        [--out out/bench/bench_serving.json]

Runs under the serving environment (kserve, onnxruntime). For each backend (savedmodel, onnx):

- floor: the backend's `predict` in this process on the same rows (1 row per call, and batches),
  no HTTP, no JSON: median and p99 per call; max calls/s = 1 / median;
- server: `python -m serving.model_server` as a subprocess on a loopback port, without and with
  --prediction_log, and with the log and kserve's per-request latency lines and access log on (its
  V1 predict then takes kserve's own path, as every request did before serving/v1_fast_path.py);
- peer (ONNX only): tests/benchmarks/peer_server.py, the plainest Starlette endpoint on uvicorn
  over the same backend code, no kserve;
  after a warm-up, for each server, an asyncio load generator (a minimal HTTP/1.1 keep-alive client on
  asyncio streams, one connection per concurrent worker: httpx.AsyncClient saturated a core at 115 rps
  here, `--client httpx` to compare) sends V1 requests of 1 row and of --batch rows at each
  concurrency for --seconds: rps, p50/p90/p99 latency, errors (must be 0), and the CPU that the
  client and the server each used (so a client-bound cell shows up as such).

All the servers (2 backends x 3 variants, and the peer) run at once, idle but for the one under load:
each cell runs on each server in turn, --rounds times with the order rotated, and the figures
pool the rounds, so a change in the machine's load (other users) hits every server alike.

Ratios: server p50 / floor median (at concurrency 1 this is the cost of HTTP + JSON + validation
+ kserve per request), and server rps / floor max calls/s; between variants (COMPARISONS): the
log's cost, the fast path's gain, and our server against the peer. The server's answers for the first
--batch rows are checked against the in-process predictions before any timing.

The model is --model-dir, else the registry's champion (CHAMPION.json); without one, a stand-in model
(serving/tests/stand_in.py) is built and the output says so. The load generator and the server
share this machine's cores (`cpu_count` in the JSON); figures from a busy machine are noisy, so
`loadavg` is recorded before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

try:
    import httpx
    from serving import backends, features
except ImportError as exc:  # kserve / onnxruntime live only in the serving env
    raise SystemExit(f"{exc}: run this benchmark with .venv-serving/bin/python (make setup-serving)") from None

BACKENDS = ("savedmodel", "onnx")
# Our server without and with the prediction log, and with kserve's per-request latency lines and
# access log on (then V1 predict takes kserve's own path instead of serving/v1_fast_path.py: the
# server as it was before the fast path); PEER is tests/benchmarks/peer_server.py, ONNX only.
VARIANTS = ("no_log", "with_log", "kserve_path")
PEER = "peer"
VARIANT_ARGS = {"no_log": (), "with_log": (), "kserve_path": ("--enable_latency_logging=true", "--enable_access_log=true")}
LOGGED_VARIANTS = ("with_log", "kserve_path")
PEER_SERVER = ROOT / "tests" / "benchmarks" / "peer_server.py"
START_TIMEOUT_S = 180
# Server answers vs in-process predictions of the same backend: the same computation, only the
# float32 → JSON float64 round trip differs.
SAME_BACKEND_TOLERANCE = 1e-5
ONNX_TOLERANCE = 1e-4  # components/train's own SavedModel vs ONNX check


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    registry: Path
    model: str
    model_dir: Path | None  # a model version directory instead of the registry's champion
    data: Path
    out: Path
    seconds: float = 2.5          # measured seconds per cell and round
    warmup_seconds: float = 0.5
    rounds: int = 2
    client: str = "raw"           # load generator: "raw" (asyncio streams) or "httpx"
    floor_seconds: float = 1.5    # per floor measurement (before and after the servers)
    batch: int = 32
    concurrency: tuple[int, ...] = (1, 8, 32)
    backends: tuple[str, ...] = BACKENDS


# ---------------------------------------------------------------------------------- inputs


def resolve_model(config: BenchConfig, work: Path) -> dict:
    """{model_root, source, version_dir, version}: --model-dir, else the champion, else a stand-in
    built in `work`."""
    root = config.registry / config.model
    if config.model_dir:
        root = config.model_dir
        source = f"model version directory {root}"
    elif (root / backends.CHAMPION_FILE).is_file():
        source = f"champion of {root}"
    else:
        from serving.tests import stand_in

        stand_in.build_registry(str(work / "registry"), config.model)
        source = (f"STAND-IN model (serving/tests/stand_in.py): no {backends.CHAMPION_FILE} in {root}; "
                  "run `make run` to benchmark the real model")
        root = work / "registry" / config.model
    resolved = backends.resolve_model_dir(str(root))
    return {"model_root": root, "source": source, "version_dir": resolved.path, "version": resolved.version}


def _typed(value: str, kind: str) -> Any:
    if value.strip() in ("", "NA", "nan", "NaN"):
        return None  # the server's "missing" (features.py)
    if kind == features.FLOAT:
        return float(value)
    if kind == features.INT:
        return int(float(value))
    return value


def read_instances(path: Path, feature_types: dict[str, str]) -> list[dict]:
    """The CSV's rows as V1 instances: only the model's raw features, typed as the model takes them."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in feature_types if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"{path} lacks the model's feature column(s) {missing}")
        rows = [{c: _typed(r[c], k) for c, k in feature_types.items()} for r in reader]
    if not rows:
        raise SystemExit(f"{path} has no rows")
    return rows


def batches(instances: list[dict], size: int) -> list[list[dict]]:
    count = max(1, len(instances) // size)
    return [instances[i * size:(i + 1) * size] for i in range(count)]


# ---------------------------------------------------------------------------------- floor


def summarize(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000.0
    return {"calls": len(ms), "median_ms": round(float(np.median(ms)), 4),
            "p90_ms": round(float(np.percentile(ms, 90)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4),
            "mean_ms": round(float(ms.mean()), 4)}


def time_calls(fn, inputs: list, seconds: float, min_calls: int = 200) -> tuple[list[float], float]:
    """Per-call wall seconds, and this process's CPU seconds over all calls (every thread: an
    intra-op pool that spins between calls shows up here, not in wall time)."""
    times: list[float] = []
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or len(times) < min_calls:
        x = inputs[i % len(inputs)]
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
        i += 1
    return times, time.process_time() - cpu


class Floor:
    """A backend loaded in this process, the rows pre-parsed into its columns: `predict` alone,
    no HTTP, no JSON, is the physical floor. `threads` (ONNX only): intra-op threads, 0 = ORT's
    default, which is what the server uses."""

    def __init__(self, version_dir: str, backend: str, instances: list[dict], batch: int, threads: int = 0):
        info = backends.read_model_info(version_dir)
        started = time.perf_counter()
        if threads:
            self.model = backends.OnnxBackend(version_dir, info, threads=threads)
        else:
            self.model = backends.load_backend(version_dir, backend, info)
        self.load_seconds = round(time.perf_counter() - started, 2)
        self.instances = instances
        self.inputs = {1: [self.parse([row]) for row in instances],
                       batch: [self.parse(rows) for rows in batches(instances, batch)]}
        self.reference = self.model.predict(self.inputs[batch][0])  # the first `batch` rows
        for columns in self.inputs[1][:20] + self.inputs[batch][:5]:  # first calls allocate; untimed
            self.model.predict(columns)

    def parse(self, rows: list[dict]) -> dict[str, np.ndarray]:
        return features.parse_v1({"instances": rows}, self.model.feature_types, len(rows))[0]

    def measure(self, seconds: float) -> dict:
        result = {}
        for rows, inputs in self.inputs.items():
            times, cpu = time_calls(self.model.predict, inputs, seconds)
            stats = summarize(times)
            stats["cpu_ms_per_call"] = round(1000 * cpu / len(times), 4)
            stats["max_calls_per_s"] = round(1000.0 / stats["median_ms"], 1)
            stats["max_rows_per_s"] = round(rows * 1000.0 / stats["median_ms"], 1)
            result[f"batch_{rows}"] = stats
        return result

    def parse_cost(self) -> dict:
        """What the server does in Python before the model sees a row: parse + validate 1 V1 instance."""
        return summarize(time_calls(lambda row: self.parse([row]), self.instances, 0.5)[0])


def floor_summary(floor: Floor, before: dict, after: dict) -> dict:
    """The floor measured before the servers start and after they stop; the ratios use the
    faster median of the two (the less disturbed: other users share this machine)."""
    result = {"load_seconds": floor.load_seconds, "parse_v1_1_row": floor.parse_cost(),
              "before_servers": before, "after_servers": after}
    for key in before:
        chosen = min((before[key], after[key]), key=lambda stats: stats["median_ms"])
        result[key] = {**chosen, "measured": "before_servers" if chosen is before[key] else "after_servers"}
    return result


# ---------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process, all its threads (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


class ServerProcess:
    """`python -m serving.model_server` (or the peer) on a free loopback port, output to
    `<work>/<name>.log`."""

    def __init__(self, model_root: Path, backend: str, model: str, work: Path, variant: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        name = f"{backend}-{variant}"
        self.output = work / f"{name}.log"
        self.prediction_log = work / f"{name}-predictions.jsonl" if variant in LOGGED_VARIANTS else None
        self.args = [f"--model_name={model}", f"--model_dir={model_root}", f"--backend={backend}",
                     f"--http_port={self.port}", *VARIANT_ARGS.get(variant, ())]
        if self.prediction_log:
            self.args.append(f"--prediction_log={self.prediction_log}")
        program = [str(PEER_SERVER)] if variant == PEER else ["-m", "serving.model_server"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PREDICTION_LOG", None)  # the server's default for --prediction_log
        self._out = open(self.output, "w")  # noqa: SIM115 (closed by stop())
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, *program, *self.args],
                                     cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self) -> float:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {START_TIMEOUT_S}s:\n{self.logs()[-4000:]}")

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


# ---------------------------------------------------------------------------------- load


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one connection per worker, the
    request bytes built once. Measured here: ~0.17 ms of CPU per request, httpx.AsyncClient
    ~1.8 ms (~6 ms at 32 connections): on a 2-core machine an httpx load generator takes the
    CPU the server needs, so it is the default; `--client httpx` remains for comparison."""

    def __init__(self, port: int, path: str, concurrency: int):
        self.port, self.path, self.concurrency = port, path, concurrency
        self.connections: list = []

    def prepare(self, body: bytes) -> bytes:
        return (f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def open(self) -> None:
        self.connections = [await asyncio.open_connection("127.0.0.1", self.port) for _ in range(self.concurrency)]

    async def post(self, worker: int, request: bytes) -> tuple[int, bytes]:
        reader, writer = self.connections[worker]
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ValueError(f"unsupported Transfer-Encoding {value.strip()!r}")
        if length is None:
            raise ValueError(f"response without Content-Length: {lines[0]!r}")
        return int(lines[0].split(b" ", 2)[1]), await reader.readexactly(length)

    async def reset(self, worker: int) -> None:
        """A fresh connection after an error (the old one's state is unknown)."""
        self.connections[worker][1].close()
        self.connections[worker] = await asyncio.open_connection("127.0.0.1", self.port)

    async def aclose(self) -> None:
        for _, writer in self.connections:
            writer.close()


class HttpxClient:
    """httpx.AsyncClient with one pooled keep-alive connection per worker."""

    def __init__(self, port: int, path: str, concurrency: int):
        self.path = path
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30)

    def prepare(self, body: bytes) -> bytes:
        return body

    async def open(self) -> None:
        pass

    async def post(self, worker: int, request: bytes) -> tuple[int, bytes]:
        response = await self.client.post(self.path, content=request, headers={"content-type": "application/json"})
        return response.status_code, response.content

    async def reset(self, worker: int) -> None:
        pass

    async def aclose(self) -> None:
        await self.client.aclose()


CLIENTS = {"raw": RawClient, "httpx": HttpxClient}


async def _drive(client, requests: list[bytes], rows: int, concurrency: int,
                 seconds: float) -> tuple[list[float], int, list[str], float]:
    """`concurrency` workers, each one request at a time, until `seconds` pass.
    Returns (latencies of good answers, requests sent, error messages, elapsed seconds)."""
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(k: int) -> None:
        nonlocal sent
        i = k
        while time.perf_counter() < deadline:
            request = requests[i % len(requests)]
            i += concurrency
            sent += 1
            began = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(client.post(k, request), timeout=30)
                ok = status == 200 and len(json.loads(body)["predictions"]) == rows
                problem = "" if ok else f"HTTP {status}: {body[:200]!r}"
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                await client.reset(k)
            if problem:
                errors.append(problem)
            else:
                latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, sent, errors, time.perf_counter() - start


async def _cell(port: int, path: str, bodies: list[bytes], rows: int, concurrency: int,
                config: BenchConfig, server_pid: int, client_kind: str) -> dict:
    """One measured run of one cell: raw latencies and CPU seconds, aggregated by `aggregate`."""
    client = CLIENTS[client_kind](port, path, concurrency)
    requests = [client.prepare(body) for body in bodies]
    await client.open()
    try:
        # Warm-up opens the connections and warms the server's code paths; not recorded.
        warm, _, warm_errors, _ = await _drive(client, requests, rows, concurrency, config.warmup_seconds)
        client_cpu, server_cpu = time.process_time(), cpu_seconds(server_pid)
        latencies, sent, errors, elapsed = await _drive(client, requests, rows, concurrency, config.seconds)
        client_cpu = time.process_time() - client_cpu
        server_cpu = cpu_seconds(server_pid) - server_cpu
    finally:
        await client.aclose()
    return {"latencies": latencies, "sent": sent, "errors": warm_errors + errors, "elapsed": elapsed,
            "client_cpu": client_cpu, "server_cpu": server_cpu, "served": (len(warm) + len(latencies)) * rows}


def aggregate(runs: list[dict], rows: int, concurrency: int) -> dict:
    """The runs (rounds) of one cell pooled: rps = good answers / measured seconds, percentiles
    over every latency; rps per round shows the spread."""
    latencies = [x for run in runs for x in run["latencies"]]
    elapsed = sum(run["elapsed"] for run in runs)
    sent = sum(run["sent"] for run in runs)
    errors = [e for run in runs for e in run["errors"]]
    stats = summarize(latencies) if latencies else {}
    rps = len(latencies) / elapsed
    return {
        "batch_rows": rows, "concurrency": concurrency, "rounds": len(runs), "seconds": round(elapsed, 2),
        "requests": sent, "errors": len(errors), "error_examples": errors[:3],
        "rps": round(rps, 1), "rps_per_round": [round(len(r["latencies"]) / r["elapsed"], 1) for r in runs],
        "rows_per_s": round(rps * rows, 1),
        "p50_ms": stats.get("median_ms"), "p90_ms": stats.get("p90_ms"), "p99_ms": stats.get("p99_ms"),
        "mean_ms": stats.get("mean_ms"),
        # Cores each side kept busy, and CPU per request: where the machine's cores went.
        "client_cores": round(sum(r["client_cpu"] for r in runs) / elapsed, 2),
        "server_cores": round(sum(r["server_cpu"] for r in runs) / elapsed, 2),
        "client_cpu_ms_per_request": round(1000 * sum(r["client_cpu"] for r in runs) / max(sent, 1), 3),
        "server_cpu_ms_per_request": round(1000 * sum(r["server_cpu"] for r in runs) / max(sent, 1), 3),
    }


def add_ratios(cell: dict, floor_batch: dict) -> None:
    """Server p50 / floor median (at concurrency 1: the cost of HTTP + JSON + kserve per request),
    server rps / floor max calls/s (1 / median)."""
    cell["p50_over_floor_median"] = round(cell["p50_ms"] / floor_batch["median_ms"], 2) if cell["p50_ms"] else None
    cell["rps_over_floor_max"] = round(cell["rps"] / floor_batch["max_calls_per_s"], 3)


def check_answers(url: str, path: str, instances: list[dict], reference: np.ndarray) -> float:
    response = httpx.post(url + path, json={"instances": instances}, timeout=30)
    response.raise_for_status()
    served = np.asarray(response.json()["predictions"], np.float64)
    return float(np.max(np.abs(served - reference)))


def bench_servers(model: dict, instances: list[dict], references: dict,
                  config: BenchConfig, work: Path) -> tuple[list[dict], dict]:
    """Every (backend, variant) server at once; each cell runs on each server in turn, `rounds`
    times, the order rotated per round, so a change in machine load hits all servers alike."""
    keys = [(b, v) for b in config.backends for v in VARIANTS] + [("onnx", PEER)] * ("onnx" in config.backends)
    path = f"/v1/models/{config.model}:predict"
    servers = {(b, v): ServerProcess(model["model_root"], b, config.model, work, v) for b, v in keys}
    results = {key: {"backend": key[0], "variant": key[1], "server_args": s.args} for key, s in servers.items()}
    runs: dict[tuple, list[dict]] = {}
    served = dict.fromkeys(keys, 0)
    try:
        for key, server in servers.items():  # started together, so ready times include each other's load
            results[key]["seconds_to_ready"] = round(server.wait_ready(), 1)
        for (backend, variant), server in servers.items():
            metadata = {} if variant == PEER else httpx.get(f"{server.url}/v2/models/{config.model}", timeout=10).json()
            diff = check_answers(server.url, path, instances[:config.batch], references[backend])
            served[(backend, variant)] += config.batch
            results[(backend, variant)].update(platform=metadata.get("platform"), max_abs_diff_vs_in_process=diff)
            if diff > SAME_BACKEND_TOLERANCE:
                raise RuntimeError(f"{backend} {variant} server answers differ from in-process predict by {diff}")
        for round_ in range(config.rounds):
            for rows in (1, config.batch):
                bodies = [json.dumps({"instances": b}).encode() for b in batches(instances, rows)]
                for concurrency in config.concurrency:
                    shift = round_ % len(keys)
                    for key in keys[shift:] + keys[:shift]:
                        run = asyncio.run(_cell(servers[key].port, path, bodies, rows, concurrency, config,
                                                servers[key].proc.pid, config.client))
                        runs.setdefault((key, rows, concurrency), []).append(run)
                        served[key] += run["served"]
                        print(f"  round {round_} {key[0]:10s} {key[1]:8s} rows {rows:3d} c{concurrency:<3d} "
                              f"{len(run['latencies']) / run['elapsed']:8.1f} rps  errors {len(run['errors'])}  "
                              f"load {loadavg()[:1]}", flush=True)
        # On the cheapest of our servers (onnx without log, if benchmarked), so the client matters most.
        cheapest = ("onnx", "no_log") if ("onnx", "no_log") in servers else keys[0]
        comparison = compare_clients(servers[cheapest], cheapest, path, instances, config, served)
    finally:
        for key, server in servers.items():
            results[key]["exit_code"] = server.stop()
    for key in keys:
        results[key]["cells"] = [
            aggregate(runs[(key, rows, c)], rows, c)
            for rows in (1, config.batch) for c in config.concurrency]
        server = servers[key]
        if server.prediction_log:
            with open(server.prediction_log) as f:
                records = sum(1 for _ in f)
            closed = re.search(r"closed: (\d+) written, (\d+) dropped", server.logs())
            results[key]["prediction_log"] = {"records": records, "predictions_served": served[key],
                                              "dropped": int(closed.group(2)) if closed else None}
    return list(results.values()), comparison


def compare_clients(server: ServerProcess, key: tuple, path: str, instances: list[dict],
                    config: BenchConfig, served: dict) -> dict:
    """Both load generators back to back on one server (1-row requests, lowest and highest
    concurrency): what the client itself costs, and whether it caps the figures."""
    bodies = [json.dumps({"instances": [row]}).encode() for row in instances]
    cells = {}
    for concurrency in sorted({min(config.concurrency), max(config.concurrency)}):
        for kind in sorted(CLIENTS):
            run = asyncio.run(_cell(server.port, path, bodies, 1, concurrency, config, server.proc.pid, kind))
            served[key] += run["served"]
            cell = aggregate([run], 1, concurrency)
            cells[f"{kind}_c{concurrency}"] = {k: cell[k] for k in (
                "rps", "p50_ms", "p99_ms", "errors", "client_cores", "server_cores",
                "client_cpu_ms_per_request", "server_cpu_ms_per_request")}
            print(f"  client {kind:5s} c{concurrency:<3d} on {key[0]} {key[1]}: {cells[f'{kind}_c{concurrency}']}",
                  flush=True)
    return {"server": f"{key[0]} {key[1]}", "batch_rows": 1, "cells": cells}


# ---------------------------------------------------------------------------------- report


# name: (variant, the variant it is divided by); the peer is ONNX only, so its ratios are too.
COMPARISONS = {
    "prediction_log_overhead": ("with_log", "no_log"),     # the log's cost
    "fast_path_gain": ("with_log", "kserve_path"),         # the fast path's gain, log on in both
    "vs_peer_no_log": ("no_log", PEER),                    # our server against the plainest one
    "vs_peer_with_log": ("with_log", PEER),
}


def variant_ratios(servers: list[dict], variant: str, against: str) -> list[dict]:
    """rps and p50 of `variant` / those of `against`, for the same backend, batch and concurrency."""
    index = {(s["backend"], s["variant"], c["batch_rows"], c["concurrency"]): c for s in servers for c in s["cells"]}
    out = []
    for (backend, name, rows, concurrency), cell in index.items():
        base = index.get((backend, against, rows, concurrency))
        if name != variant or base is None or not (base["rps"] and base["p50_ms"] and cell["p50_ms"]):
            continue
        out.append({"backend": backend, "batch_rows": rows, "concurrency": concurrency,
                    "rps_ratio": round(cell["rps"] / base["rps"], 3),
                    "p50_ratio": round(cell["p50_ms"] / base["p50_ms"], 3)})
    return out


def table(result: dict) -> str:
    lines = [f"model: {result['model']['source']} (version {result['model']['version']}); "
             f"cpu_count {result['cpu_count']}; loadavg {result['loadavg_start']} -> {result['loadavg_end']}",
             "", "in-process floor (backend.predict, no HTTP):",
             f"  {'backend':10s} {'rows':>4s} {'median ms':>10s} {'p99 ms':>8s} {'max calls/s':>12s} {'cpu ms/call':>11s}"
             "  median before / after the servers"]
    for backend, floor in result["floor"].items():
        for key, stats in floor.items():
            if key.startswith("batch_"):
                lines.append(f"  {backend:10s} {key[6:]:>4s} {stats['median_ms']:10.3f} {stats['p99_ms']:8.3f} "
                             f"{stats['max_calls_per_s']:12.1f} {stats['cpu_ms_per_call']:11.3f}  "
                             f"{floor['before_servers'][key]['median_ms']:.3f} / {floor['after_servers'][key]['median_ms']:.3f}")
        lines.append(f"  {backend:10s} parse_v1 of 1 row: median {floor['parse_v1_1_row']['median_ms']:.3f} ms")
    extra = result.get("floor_onnx_intra_op_threads_1")
    if extra:
        for key, stats in extra.items():
            if key.startswith("batch_"):
                lines.append(f"  {'onnx 1 thr':10s} {key[6:]:>4s} {stats['median_ms']:10.3f} {stats['p99_ms']:8.3f} "
                             f"{stats['max_calls_per_s']:12.1f} {stats['cpu_ms_per_call']:11.3f}")
        lines.append("  (onnx 1 thr: the same session with intra_op_num_threads=1; the server uses ORT's default)")
    lines += ["", "server (V1 over loopback HTTP):",
              f"  {'backend':10s} {'variant':11s} {'rows':>4s} {'conc':>4s} {'rps':>8s} {'p50 ms':>8s} {'p90 ms':>8s} "
              f"{'p99 ms':>8s} {'err':>4s} {'p50/floor':>9s} {'rps/floor':>9s} {'client':>6s} {'server':>6s}  rps per round"]
    nan = float("nan")  # a cell with no good answer (its errors make the run fail anyway)
    for server in result["servers"]:
        for c in server["cells"]:
            c = {k: nan if v is None else v for k, v in c.items()}
            lines.append(
                f"  {server['backend']:10s} {server['variant']:11s} {c['batch_rows']:4d} {c['concurrency']:4d} "
                f"{c['rps']:8.1f} {c['p50_ms']:8.2f} {c['p90_ms']:8.2f} {c['p99_ms']:8.2f} {c['errors']:4d} "
                f"{c['p50_over_floor_median']:9.1f} {c['rps_over_floor_max']:9.3f} "
                f"{c['client_cores']:6.2f} {c['server_cores']:6.2f}  {'/'.join(map(str, c['rps_per_round']))}")
    lines.append("  (p50/floor: server p50 / in-process median; rps/floor: server rps / in-process max calls/s; "
                 "client/server: CPU cores each kept busy)")
    comparison = result["client_comparison"]
    lines += ["", f"load generators on {comparison['server']}, 1-row requests:"]
    for name, c in comparison["cells"].items():
        lines.append(f"  {name:10s} {c['rps']:8.1f} rps  p50 {c['p50_ms']:7.2f} ms  client {c['client_cores']:.2f} cores "
                     f"({c['client_cpu_ms_per_request']:.3f} ms CPU/request)  server {c['server_cores']:.2f} cores")
    for name, (variant, against) in COMPARISONS.items():
        if result["ratios"][name]:
            lines += ["", f"{name} ({variant} / {against}):"]
            for r in result["ratios"][name]:
                lines.append(f"  {r['backend']:10s} rows {r['batch_rows']:3d} c{r['concurrency']:<3d} "
                             f"rps x{r['rps_ratio']:.3f}  p50 x{r['p50_ratio']:.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=ROOT / "out" / "run" / "registry")
    parser.add_argument("--model", default="model")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="a model version directory (e.g. a run's train/model output) instead of the champion")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "fixtures" / "hmda_sample.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "bench_serving.json")
    parser.add_argument("--seconds", type=float, default=BenchConfig.seconds, help="measured seconds per cell")
    parser.add_argument("--warmup-seconds", type=float, default=BenchConfig.warmup_seconds)
    parser.add_argument("--rounds", type=int, default=BenchConfig.rounds,
                        help="times each cell runs (interleaved across servers); figures pool the rounds")
    parser.add_argument("--client", choices=sorted(CLIENTS), default=BenchConfig.client,
                        help="load generator; the other one is measured once on one server for comparison")
    parser.add_argument("--floor-seconds", type=float, default=BenchConfig.floor_seconds)
    parser.add_argument("--batch", type=int, default=BenchConfig.batch, help="rows per request of the batch case")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args(argv)
    chosen = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    unknown = set(chosen) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {sorted(unknown)}; choose from {BACKENDS}")
    return BenchConfig(registry=args.registry, model=args.model, model_dir=args.model_dir, data=args.data, out=args.out,
                       seconds=args.seconds, warmup_seconds=args.warmup_seconds, rounds=args.rounds,
                       client=args.client, floor_seconds=args.floor_seconds,
                       batch=args.batch, concurrency=tuple(int(c) for c in args.concurrency.split(",")),
                       backends=chosen)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    started = time.perf_counter()
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench_serving-") as tmp:
        work = Path(tmp)
        model = resolve_model(config, work)
        print(f"model: {model['source']}, version {model['version']}", flush=True)
        info = backends.read_model_info(model["version_dir"])
        instances = read_instances(config.data, info.get("raw_feature_types") or
                                   backends.load_backend(model["version_dir"], "savedmodel", info).feature_types)
        # Floors before any server runs (this process has the machine to itself) and again after.
        models = {b: Floor(model["version_dir"], b, instances, config.batch) for b in config.backends}
        references = {b: f.reference for b, f in models.items()}
        before = {b: f.measure(config.floor_seconds) for b, f in models.items()}
        print(f"  floor before servers: {json.dumps(before)}", flush=True)
        if "onnx" in config.backends:
            # The server's ORT session has ORT's default intra-op threads (which spin between calls);
            # the same session with 1 thread shows what that default costs and gains.
            floor_onnx_1_thread = Floor(model["version_dir"], "onnx", instances, config.batch,
                                        threads=1).measure(config.floor_seconds)
            print(f"  floor onnx, intra_op_num_threads=1: {json.dumps(floor_onnx_1_thread)}", flush=True)
        try:
            servers, client_comparison = bench_servers(model, instances, references, config, work)
        except Exception:
            for log_file in sorted(work.glob("*.log")):
                print(f"--- {log_file.name} (tail)\n{log_file.read_text()[-3000:]}", file=sys.stderr)
            raise
        after = {b: f.measure(config.floor_seconds) for b, f in models.items()}
        floors = {b: floor_summary(f, before[b], after[b]) for b, f in models.items()}
    for server in servers:
        for cell in server["cells"]:
            add_ratios(cell, floors[server["backend"]][f"batch_{cell['batch_rows']}"])
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "note": (f"load generator ({config.client} client in this process, asyncio, one keep-alive connection "
                 "per concurrent worker) and server share the machine's cores; client_cores/server_cores say "
                 "who used them; client_comparison measures both clients on one server"),
        "loadavg_start": load_start, "loadavg_end": loadavg(),
        "versions": {"python": platform.python_version(), "httpx": httpx.__version__,
                     **{m: _version(m) for m in ("kserve", "tensorflow", "onnxruntime")}},
        "model": {"source": model["source"], "version": model["version"], "model_root": str(model["model_root"]),
                  "features": len(instances[0])},
        "data": {"path": str(config.data), "rows": len(instances)},
        "settings": {"seconds_per_cell_and_round": config.seconds, "rounds": config.rounds,
                     "warmup_seconds": config.warmup_seconds,
                     "floor_seconds": config.floor_seconds, "batch_rows": config.batch,
                     "concurrency": list(config.concurrency)},
        "floor": floors,
        "floor_onnx_intra_op_threads_1": floor_onnx_1_thread if "onnx" in config.backends else None,
        "onnx_vs_savedmodel_max_abs_diff": (float(np.max(np.abs(references["onnx"] - references["savedmodel"])))
                                            if {"onnx", "savedmodel"} <= set(references) else None),
        "servers": servers,
        "ratios": {name: variant_ratios(servers, *pair) for name, pair in COMPARISONS.items()},
        "client_comparison": client_comparison,
        "total_errors": (sum(c["errors"] for s in servers for c in s["cells"])
                         + sum(c["errors"] for c in client_comparison["cells"].values())),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result))
    print(f"\nwrote {config.out} in {result['wall_seconds']} s")
    problems = []
    if result["total_errors"]:
        problems.append(f"{result['total_errors']} failed requests")
    if result["onnx_vs_savedmodel_max_abs_diff"] is not None and result["onnx_vs_savedmodel_max_abs_diff"] > ONNX_TOLERANCE:
        problems.append(f"ONNX and SavedModel disagree by {result['onnx_vs_savedmodel_max_abs_diff']}")
    for server in servers:
        # uvicorn.run re-raises the SIGTERM it handled, so the peer's graceful exit reads -15.
        if server["exit_code"] not in ((0, -signal.SIGTERM) if server["variant"] == PEER else (0,)):
            problems.append(f"{server['backend']} {server['variant']} server exited with {server['exit_code']}")
        logged = server.get("prediction_log")
        if logged and logged["records"] != logged["predictions_served"]:
            problems.append(f"{server['backend']} prediction log has {logged['records']} records for "
                            f"{logged['predictions_served']} predictions ({logged['dropped']} dropped)")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
