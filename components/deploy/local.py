"""The `local` target: real model-server processes behind an in-process traffic splitter.

    client ──▶ splitter (aiohttp, 127.0.0.1:<port>) ──▶ stable  `python -m serving.model_server`
                    │  P(canary) = canary_percent/100  ──▶ canary  (same, another version)
                    └─ mirror, answer never returned ───▶ shadow

Each version runs as its own `serving.model_server` process (the serving env, `.venv-serving`) on a
free loopback port. The splitter routes every predict request like KServe's canaryTrafficPercent
(each request independently goes to the canary with probability percent/100), mirrors it to the
shadow, and records per request: role, version, ok/error, HTTP status, latency, predictions.

Swaps lose no request: the routing table is replaced in one step on the splitter's event loop, and
a replaced process is stopped only after its in-flight requests finished (drain).

The live state (which version is stable/canary/shadow, the share) is a JSON file in `state_dir`,
written atomically, so `live()` answers across processes and a re-run is idempotent. Processes are
the runtime of that state: started when an operation needs them, stopped by `close()` (also on
errors, KeyboardInterrupt, SIGTERM via the CLI, and interpreter exit). Their ids are recorded in
`processes.json` as soon as they start, so processes left behind by a run killed outright (SIGKILL)
are stopped by the next LocalTarget on the same state_dir. One LocalTarget per state_dir (flock).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from components.common import io as fio
from components.common import names
from components.deploy import payload_logger
from components.deploy.local_prometheus import LocalPrometheus
from components.deploy.revision_metrics import RevisionMetrics
from components.deploy.rollout import LiveState, ModelRef
from components.deploy.traffic import scalar_predictions

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SERVING_PYTHON = REPO_ROOT / ".venv-serving" / "bin" / "python"
STATE_FILE = "state.json"
PROCESSES_FILE = "processes.json"
LOCK_FILE = "lock"
STABLE, CANARY, SHADOW = "stable", "canary", "shadow"
MAX_BODY_BYTES = 10 * 1024 * 1024  # the model server's default limit
MAX_RECORDS = 500_000
# uvicorn closes idle keep-alive connections after 5 s; reusing one it is closing fails the
# request, so the splitter drops idle backend connections well before that.
BACKEND_KEEPALIVE_S = 2.0


class ServerStartError(RuntimeError):
    """A model server did not become ready; the message ends with its log."""


@dataclasses.dataclass(frozen=True)
class LocalConfig:
    state_dir: str
    serving_python: str = ""
    """Python of the serving env; default: the repository's .venv-serving/bin/python."""
    backend: str = "savedmodel"
    host: str = "127.0.0.1"
    splitter_port: int = 0
    """0 = any free port (see LocalTarget.url)."""
    ready_timeout_s: float = 180.0
    drain_timeout_s: float = 30.0
    stop_timeout_s: float = 20.0
    request_timeout_s: float = 30.0
    seed: int | None = None
    """Seeds the splitter's routing draws (reproducible splits in tests)."""
    warmup_requests: int = 5
    """Predict calls (all features missing) a new process answers before it gets traffic: the first
    calls of a fresh TensorFlow process are slow, and a canary should not be judged on that."""
    server_args: tuple[str, ...] = ()
    log_sink_output: str = ""
    """Where a local log sink (serving/log_sink.py) writes the served traffic, as KServe's payload
    logger and the cluster's sink would (an absolute path, gs:// or s3://); "" = no sink."""
    prometheus: bool = False
    """Run a Prometheus on loopback scraping the splitter (local_prometheus.py; `prometheus_url`)."""

    def __post_init__(self) -> None:
        if not self.state_dir:
            raise ValueError("LocalConfig.state_dir is required")
        if self.backend not in ("savedmodel", "onnx"):
            raise ValueError(f"backend must be savedmodel or onnx, got {self.backend!r}")

    @property
    def python(self) -> str:
        return self.serving_python or str(DEFAULT_SERVING_PYTHON)


@dataclasses.dataclass
class RequestRecord:
    """One request as the splitter saw it (shadow copies are records of their own)."""

    request_id: str
    role: str
    version: str
    ok: bool
    status: int
    """HTTP status of the backend's answer; 0 when there was none (refused, reset, timeout)."""
    latency_ms: float
    predictions: list[float]
    error: str = ""
    at: float = 0.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _pid_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (exited, not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _model_to_json(model: ModelRef | None) -> dict | None:
    return dataclasses.asdict(model) if model else None


def _model_from_json(record: dict | None) -> ModelRef | None:
    return ModelRef(**record) if record else None


# ------------------------------------------------------------------------------ processes


class ServerProcess:
    """One `serving.model_server` process serving one model version on a loopback port."""

    _counter = 0

    def __init__(self, model: ModelRef, role: str, config: LocalConfig, log_dir: Path):
        if not fio.is_local(model.uri) or not os.path.isdir(model.uri):
            raise ServerStartError(f"the local target serves local version directories; {model.uri} is not one")
        ServerProcess._counter += 1
        self.key = f"{role}-{model.version}-{ServerProcess._counter}"
        self.model = model
        self.role = role
        self.config = config
        stem = f"{model.version}-{role}-{time.strftime('%Y%m%dT%H%M%S')}-{ServerProcess._counter}"
        self.log_path = log_dir / f"{stem}.server.log"
        self.prediction_log = log_dir / f"{stem}.predictions.jsonl"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.ready = False

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.port = free_port(self.config.host)
        cmd = [self.config.python, "-m", "serving.model_server", f"--model_name={self.model.model_name}",
               f"--model_dir={os.path.abspath(self.model.uri)}", f"--http_port={self.port}",
               f"--backend={self.config.backend}", f"--prediction_log={self.prediction_log}",
               *self.config.server_args]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
        with open(self.log_path, "ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        log.info("started %s (pid %d) on port %d", self.key, self.proc.pid, self.port)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise ServerStartError(f"model server for {self.model.version} ({self.role}) exited with "
                                       f"{code} before it was ready; log {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=1) as response:
                    if response.status == 200:
                        self.ready = True
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"model server for {self.model.version} ({self.role}) not ready after "
                               f"{timeout:g} s; log {self.log_path}:\n{self.log_tail()}")

    def warm_up(self, requests: int) -> None:
        """A few predictions with every feature missing (a valid request for any of our models),
        marked synthetic so that the prediction log's readers (the drift monitor) leave them out."""
        info_path = os.path.join(self.model.uri, "model_info.json")
        try:
            with open(info_path, encoding="utf-8") as f:
                features = list(json.load(f).get("raw_feature_types") or {})
        except (OSError, ValueError):
            features = []
        if not features:
            return
        body = json.dumps({"instances": [dict.fromkeys(features)] * 8}).encode()
        for _ in range(requests):
            request = urllib.request.Request(f"{self.url}/v1/models/{self.model.model_name}:predict", data=body,
                                             headers={"content-type": "application/json",
                                                      names.SYNTHETIC_TRAFFIC_HEADER: "warm-up"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            except (urllib.error.URLError, OSError) as exc:  # judged by the analysis, not here
                log.warning("warm-up request to %s failed: %s", self.key, exc)
                return

    def stop(self) -> int | None:
        """SIGTERM (graceful: the prediction log is flushed), SIGKILL after stop_timeout_s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and not self.ready:
            # Still loading: nothing to drain or flush, and kserve defers SIGTERM until it serves.
            self.proc.kill()
            self.proc.wait()
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", self.key, self.config.stop_timeout_s)
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ------------------------------------------------------------------------------ splitter


@dataclasses.dataclass(frozen=True)
class Backend:
    key: str
    version: str
    url: str


@dataclasses.dataclass(frozen=True)
class Routes:
    stable: Backend | None = None
    canary: Backend | None = None
    percent: int = 0
    shadow: Backend | None = None


def _predictions(body: bytes) -> list[float]:
    """One number per prediction (traffic.scalar_predictions) of a V1 ({"predictions": [...]}) or
    V2 ({"outputs": [{"data": [...], "shape": [...]}]}) answer."""
    try:
        payload = json.loads(body)
        if "predictions" in payload:
            return scalar_predictions(payload["predictions"])
        output = payload["outputs"][0]
        return scalar_predictions(output["data"], output.get("shape"))
    except (ValueError, KeyError, IndexError, TypeError):
        return []


class Splitter:
    """The reverse proxy; runs its own asyncio loop on a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, request_timeout_s: float = 30.0,
                 seed: int | None = None, events_url: str = ""):
        self.host = host
        self.events_url = events_url
        """Where each answered predict call's request and response CloudEvents go (the log sink)."""
        self.events_failed = 0
        self.port = port
        self.request_timeout_s = request_timeout_s
        self._random = random.Random(seed)
        self._routes = Routes()
        self._inflight: collections.Counter[str] = collections.Counter()
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=MAX_RECORDS)
        self.metrics = RevisionMetrics()
        """What a Prometheus scraping /metrics sees: queue-proxy's per-revision names and labels."""
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self._session = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle (called from the owner's thread)

    def start(self) -> None:
        if self.running:
            return
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="deploy-splitter", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"the splitter could not listen on {self.host}:{self.port}: {failure[0]}")

    async def _start(self) -> None:
        import aiohttp
        from aiohttp import web

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=BACKEND_KEEPALIVE_S),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout_s), auto_decompress=False)
        app = web.Application(client_max_size=MAX_BODY_BYTES + 1024)
        app.router.add_get("/splitter/routes", self._show_routes)
        app.router.add_get("/metrics", self._show_metrics)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, shutdown_timeout=self.request_timeout_s)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _cleanup(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.request_timeout_s)
        if self._runner is not None:
            await self._runner.cleanup()  # stops listening; waits for in-flight handlers
        if self._session is not None:
            await self._session.close()

    def stop(self) -> None:
        if not self.running or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.request_timeout_s + 10)
        self._thread = None

    def _call(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # -- routing (thread-safe)

    @property
    def routes(self) -> Routes:
        return self._routes

    def set_routes(self, routes: Routes) -> None:
        async def swap() -> None:  # on the loop: no request sees half a table
            self._routes = routes

        self._call(swap(), timeout=10)

    def drain(self, key: str, timeout: float) -> bool:
        """Wait until no request is in flight to backend `key` (it is no longer routed to)."""
        async def wait() -> bool:
            deadline = time.monotonic() + timeout
            while self._inflight[key] > 0:
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.01)
            return True

        return self._call(wait(), timeout=timeout + 10)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no request (shadow copies included) is in flight."""
        async def wait() -> bool:
            deadline = time.monotonic() + timeout
            while sum(self._inflight.values()) > 0 or self._tasks:
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.01)
            return True

        return self._call(wait(), timeout=timeout + 10) if self.running else True

    def records(self, request_ids: set[str] | None = None) -> list[RequestRecord]:
        with self._lock:
            snapshot = list(self._records)
        return snapshot if request_ids is None else [r for r in snapshot if r.request_id in request_ids]

    def clear_records(self) -> None:
        with self._lock:
            self._records.clear()

    # -- request path (on the loop)

    async def _show_routes(self, request):
        from aiohttp import web

        return web.json_response(dataclasses.asdict(self._routes))

    async def _show_metrics(self, request):
        from aiohttp import web

        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8")

    async def _handle(self, request):
        from aiohttp import web

        body = await request.read()
        routes = self._routes
        if routes.stable is None:
            return web.json_response({"error": "nothing is deployed on this target"}, status=503)
        path = request.path_qs
        predict = request.method == "POST" and (request.path.endswith(":predict") or request.path.endswith("/infer"))
        backend, role = routes.stable, STABLE
        if predict and routes.canary is not None and self._random.random() * 100 < routes.percent:
            backend, role = routes.canary, CANARY
        request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
        headers = {"content-type": request.headers.get("content-type", "application/json"),
                   "x-request-id": request_id}
        if names.SYNTHETIC_TRAFFIC_HEADER in request.headers:  # replay and warm-up stay out of the monitor's traffic
            headers[names.SYNTHETIC_TRAFFIC_HEADER] = request.headers[names.SYNTHETIC_TRAFFIC_HEADER]
        if predict and routes.shadow is not None:
            task = asyncio.ensure_future(self._forward(routes.shadow, SHADOW, request.method, path, body,
                                                       headers, request_id, record=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        received = dt.datetime.now(dt.timezone.utc)
        status, payload, content_type = await self._forward(backend, role, request.method, path, body, headers,
                                                            request_id, record=predict)
        if predict and status == 200 and self.events_url:  # KServe logs the answers of 200s only
            task = asyncio.ensure_future(self._log_events(backend, role, request_id, received, body, payload,
                                                          headers))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=status, body=payload, headers={"content-type": content_type})

    async def _log_events(self, backend: Backend, role: str, request_id: str, received: dt.datetime,
                          body: bytes, payload: bytes, headers: dict) -> None:
        """The two CloudEvents KServe's agent would send for this call, off the request path."""
        import aiohttp

        endpoint = "canary" if role == CANARY else "default"
        source = f"local-{role}-{backend.version}"
        synthetic = headers.get(names.SYNTHETIC_TRAFFIC_HEADER)
        for event_type, data, at in ((payload_logger.REQUEST_TYPE, body, received),
                                     (payload_logger.RESPONSE_TYPE, payload, dt.datetime.now(dt.timezone.utc))):
            event = payload_logger.event_headers(event_type, request_id, source, at, endpoint,
                                                 headers["content-type"], synthetic)
            try:
                async with self._session.post(self.events_url, data=data, headers=event) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                self.events_failed += 1  # the agent logs and goes on; so do we
                if self.events_failed == 1 or self.events_failed % 100 == 0:
                    log.warning("could not send a payload event to %s (%d so far): %s",
                                self.events_url, self.events_failed, exc)

    async def _forward(self, backend: Backend, role: str, method: str, path: str, body: bytes,
                       headers: dict, request_id: str, record: bool) -> tuple[int, bytes, str]:
        import aiohttp

        # Counted before the first await: a drain that sees 0 cannot race a request on its way.
        self._inflight[backend.key] += 1
        start = time.perf_counter()
        status, error = 0, ""
        payload, content_type = b"", "application/json"
        try:
            for attempt in (1, 2):
                try:
                    async with self._session.request(method, backend.url + path, data=body, headers=headers) as resp:
                        payload = await resp.read()
                        status = resp.status
                        content_type = resp.headers.get("content-type", content_type)
                    break
                except aiohttp.ServerDisconnectedError as exc:
                    # A pooled connection the server closed as we reused it; predictions are pure
                    # functions, so one retry is safe. A dead server fails the retry as well.
                    error = f"{type(exc).__name__}: {exc}"
                    if attempt == 2:
                        raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            status = 0
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            self._inflight[backend.key] -= 1
        latency_ms = (time.perf_counter() - start) * 1000
        ok = 200 <= status < 300
        if record:
            if ok:
                error = ""
            elif status:
                error = payload[:300].decode("utf-8", errors="replace")
            rec = RequestRecord(request_id=request_id, role=role, version=backend.version, ok=ok, status=status,
                                latency_ms=latency_ms, predictions=_predictions(payload) if ok else [],
                                error=error, at=time.time())
            with self._lock:
                self._records.append(rec)
        if status == 0:
            timeout = "Timeout" in error
            body = json.dumps({"error": f"{role} backend {backend.version} gave no answer: {error}"}).encode()
            status, payload, content_type = (504 if timeout else 502), body, "application/json"
        self.metrics.observe(backend.version, status, latency_ms)
        return status, payload, content_type


# ------------------------------------------------------------------------------ target


class LocalTarget:
    """A `rollout.Target` on this machine; use as a context manager (or call close())."""

    name = "local"

    def __init__(self, config: LocalConfig):
        self.config = config
        self.state_dir = Path(config.state_dir).resolve()
        self.log_dir = self.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.state_dir / STATE_FILE
        self._procs: dict[str, ServerProcess] = {}
        self._started: list[ServerProcess] = []  # everything started, for close()
        self._sink = None
        if config.log_sink_output:
            self._sink = payload_logger.LogSinkProcess(config.python, config.log_sink_output, config.host,
                                                       free_port(config.host), self.log_dir / "log-sink.log",
                                                       REPO_ROOT)
        self._splitter = Splitter(config.host, config.splitter_port, config.request_timeout_s, config.seed,
                                  events_url=self._sink.url if self._sink else "")
        self._prometheus: LocalPrometheus | None = None
        self._closed = False
        # One target per state_dir at a time: two would fight over the processes it records.
        self._lock = open(self.state_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            raise RuntimeError(f"{self.state_dir} is in use by another local deploy ({holder})") from None
        self._lock.truncate(0)
        self._lock.write(f"pid {os.getpid()}")
        self._lock.flush()
        self._reap_stale()
        atexit.register(self.close)

    def __enter__(self) -> "LocalTarget":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- state

    def _read_state(self) -> dict:
        if not self.state_path.exists():
            return {}
        return json.loads(self.state_path.read_text())

    def live(self) -> LiveState:
        state = self._read_state()
        return LiveState(stable=_model_from_json(state.get("stable")), canary=_model_from_json(state.get("canary")),
                         canary_percent=int(state.get("canary_percent", 0)),
                         shadow=_model_from_json(state.get("shadow")))

    def _write_state(self, live: LiveState) -> None:
        fio.write_json_atomic(str(self.state_path), {
            "stable": _model_to_json(live.stable), "canary": _model_to_json(live.canary),
            "canary_percent": live.canary_percent, "shadow": _model_to_json(live.shadow),
            "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "splitter": self._splitter.url if self._splitter.running else None,
        })

    def _write_pids(self) -> None:
        """Every running process this target started, recorded as soon as it exists: a run that is
        killed outright (SIGKILL) leaves nothing that the next run on this state_dir does not stop."""
        fio.write_json_atomic(str(self.state_dir / PROCESSES_FILE), {"pids": self.pids()})

    def _reap_stale(self) -> None:
        """Stop the processes a killed earlier run left behind (recorded pids, our state_dir) and
        remove its Prometheus data."""
        path = self.state_dir / PROCESSES_FILE
        stale = json.loads(path.read_text()).get("pids", []) if path.exists() else []
        for pid in stale:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            ours = ("serving.model_server" in cmdline and str(self.log_dir) in cmdline) or (
                "prometheus" in cmdline and str(self.state_dir) in cmdline)
            if ours:
                log.warning("stopping pid %d left by an earlier run: %s", pid, cmdline[:200])
                try:
                    os.kill(pid, signal.SIGTERM)
                    deadline = time.monotonic() + self.config.stop_timeout_s
                    while _pid_running(pid) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    if _pid_running(pid):
                        os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if stale:
            self._write_pids()
        for leftover in self.state_dir.glob("prometheus-*"):  # we hold the lock: nothing uses them
            shutil.rmtree(leftover, ignore_errors=True)

    # -- processes and routes

    def _start(self, model: ModelRef, role: str) -> ServerProcess:
        if self._closed:
            raise RuntimeError("this LocalTarget is closed")
        proc = ServerProcess(model, role, self.config, self.log_dir)
        self._started.append(proc)  # before Popen returns control: close() always finds it
        proc.start()
        self._write_pids()
        try:
            proc.wait_ready(self.config.ready_timeout_s)
            proc.warm_up(self.config.warmup_requests)
        except BaseException:
            proc.stop()
            self._write_pids()
            raise
        return proc

    def _running(self, role: str, model: ModelRef | None) -> ServerProcess | None:
        proc = self._procs.get(role)
        if model is not None and proc is not None and proc.model == model and proc.alive():
            return proc
        return None

    def _ensure(self, role: str, model: ModelRef) -> tuple[ServerProcess, ServerProcess | None]:
        """A ready process serving `model` in `role`, and the one it replaces (not yet stopped)."""
        running = self._running(role, model)
        if running is not None:
            return running, None
        return self._start(model, role), self._procs.get(role)

    def _backend(self, role: str) -> Backend | None:
        proc = self._procs.get(role)
        return Backend(proc.key, proc.model.version, proc.url) if proc else None

    def _apply(self, live: LiveState, retired: list[ServerProcess | None]) -> None:
        """Route to the processes in self._procs, persist `live`, then drain and stop `retired`."""
        if self._sink is not None and self._sink.proc is None:
            self._sink.start()
        self._splitter.start()
        if self.config.prometheus and self._prometheus is None:
            # its own data directory per run: a Prometheus a killed run left holds the old one's lock
            self._prometheus = LocalPrometheus(
                f"{self.config.host}:{self._splitter.port}",
                tempfile.mkdtemp(prefix="prometheus-", dir=self.state_dir), free_port(self.config.host),
                self.config.host).start()
            self._write_pids()
        canary = self._backend(CANARY) if live.canary else None
        self._splitter.set_routes(Routes(stable=self._backend(STABLE), canary=canary,
                                         percent=live.canary_percent if canary else 0,
                                         shadow=self._backend(SHADOW) if live.shadow else None))
        self._write_state(live)
        for proc in retired:
            if proc is None or proc in self._procs.values():
                continue
            if not self._splitter.drain(proc.key, self.config.drain_timeout_s):
                log.warning("%s still had requests in flight after %.0f s; stopping it anyway",
                            proc.key, self.config.drain_timeout_s)
            proc.stop()
        self._write_pids()

    def ensure_serving(self) -> None:
        """Processes and routes for the persisted live state (after a restart of this program)."""
        live = self.live()
        retired = []
        for role, model in ((STABLE, live.stable), (CANARY, live.canary), (SHADOW, live.shadow)):
            if model is not None:
                self._procs[role], old = self._ensure(role, model)
                retired.append(old)
        self._apply(live, retired)

    @property
    def prometheus_url(self) -> str:
        """The local Prometheus's query API once it has scraped the splitter; "" without one."""
        if self._prometheus is None:
            return ""
        self._prometheus.wait_ready()
        return self._prometheus.url

    @property
    def url(self) -> str:
        """The splitter's address (clients send everything here); starts what the state needs."""
        if not self._splitter.running or self._splitter.routes.stable is None:
            self.ensure_serving()
        return self._splitter.url

    # -- rollout.Target

    def deploy(self, model: ModelRef) -> None:
        live = self.live()
        self._procs[STABLE], old = self._ensure(STABLE, model)
        old_canary = self._procs.pop(CANARY, None)
        if live.shadow is not None:
            self._procs[SHADOW], old_shadow = self._ensure(SHADOW, live.shadow)
        else:
            old_shadow = None
        self._apply(LiveState(stable=model, shadow=live.shadow), [old, old_canary, old_shadow])

    def set_canary(self, model: ModelRef, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"canary percent must be in [0, 100], got {percent}")
        live = self.live()
        if live.stable is None:
            raise RuntimeError("nothing is live to canary against: deploy a stable version first")
        self._procs[STABLE], old_stable = self._ensure(STABLE, live.stable)
        self._procs[CANARY], old_canary = self._ensure(CANARY, model)
        self._apply(dataclasses.replace(live, canary=model, canary_percent=percent), [old_stable, old_canary])

    def promote(self, model: ModelRef) -> None:
        live = self.live()
        if live.stable == model and live.canary is None and self._running(STABLE, model):
            return
        canary, old_canary = self._ensure(CANARY, model)
        old_stable = self._procs.get(STABLE)
        self._procs[STABLE] = canary
        self._procs.pop(CANARY, None)
        self._apply(LiveState(stable=model, shadow=live.shadow), [old_stable, old_canary])

    def rollback(self) -> None:
        live = self.live()
        if live.canary is None and CANARY not in self._procs:
            return
        old_canary = self._procs.pop(CANARY, None)
        if live.stable is not None and self._running(STABLE, live.stable) is None:
            self._procs[STABLE], _ = self._ensure(STABLE, live.stable)
        self._apply(dataclasses.replace(live, canary=None, canary_percent=0), [old_canary])

    def start_shadow(self, model: ModelRef) -> None:
        live = self.live()
        if live.stable is None:
            raise RuntimeError("nothing is live to shadow: deploy a stable version first")
        self._procs[STABLE], old_stable = self._ensure(STABLE, live.stable)
        self._procs[SHADOW], old_shadow = self._ensure(SHADOW, model)
        self._apply(dataclasses.replace(live, shadow=model), [old_stable, old_shadow])

    def stop_shadow(self) -> None:
        live = self.live()
        old_shadow = self._procs.pop(SHADOW, None)
        if live.shadow is None and old_shadow is None:
            return
        self._apply(dataclasses.replace(live, shadow=None), [old_shadow])

    # -- observation hooks (components/deploy/replay.py)

    def records(self, request_ids: set[str] | None = None) -> list[RequestRecord]:
        return self._splitter.records(request_ids)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        return self._splitter.wait_idle(timeout)

    def process(self, role: str) -> ServerProcess | None:
        """The process serving `role` now (tests and diagnostics)."""
        return self._procs.get(role)

    def pids(self) -> list[int]:
        """Every process this target started that is still running (model servers, Prometheus)."""
        pids = [p.pid for p in self._started if p.alive()]
        if self._prometheus is not None and self._prometheus.proc is not None and self._prometheus.proc.poll() is None:
            pids.append(self._prometheus.proc.pid)
        return pids

    def close(self) -> None:
        """Stop the splitter, then every process this target started. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._splitter.stop()  # waits for the payload events still on their way
            if self._sink is not None:
                self._sink.stop()
            if self._prometheus is not None:
                self._prometheus.stop()
                shutil.rmtree(self._prometheus.workdir, ignore_errors=True)
        finally:
            for proc in self._started:
                try:
                    proc.stop()
                except Exception:  # noqa: BLE001 - keep stopping the others
                    log.exception("could not stop %s", proc.key)
            self._procs.clear()
            self._write_pids()
            atexit.unregister(self.close)
            self._lock.close()  # releases the flock
