"""The local target's splitter and process bookkeeping, fast: tiny aiohttp backends in a thread
stand in for model servers (the real ones are in test_local.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from components.common import names
from components.deploy.local import (
    CANARY, PROCESSES_FILE, SHADOW, STABLE, Backend, LocalConfig, LocalTarget, Routes, Splitter, free_port,
)


class FakeBackends:
    """aiohttp apps answering V1 like the model server: {"predictions": [p], "model_version": name}."""

    def __init__(self, answers: dict[str, float], fail_unmarked: frozenset[str] = frozenset()):
        self.answers = answers
        self.fail_unmarked = fail_unmarked
        """Backends that answer 500 to requests without x-synthetic-traffic (users' traffic) only."""
        self.ports: dict[str, int] = {}
        self.seen: dict[str, list[str]] = {name: [] for name in answers}
        self.synthetic: dict[str, list[str]] = {name: [] for name in answers}
        self.loop = asyncio.new_event_loop()
        self.runners = []
        started = threading.Event()
        self.thread = threading.Thread(target=self._main, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)

    def _main(self, started: threading.Event) -> None:
        from aiohttp import web

        async def serve() -> None:
            for name, prediction in self.answers.items():
                async def predict(request, name=name, prediction=prediction):
                    self.seen[name].append(request.headers.get("x-request-id", ""))
                    self.synthetic[name].append(request.headers.get(names.SYNTHETIC_TRAFFIC_HEADER, ""))
                    if name in self.fail_unmarked and names.SYNTHETIC_TRAFFIC_HEADER not in request.headers:
                        return web.json_response({"error": "broken on real traffic"}, status=500)
                    body = await request.json()
                    return web.json_response({"predictions": [prediction] * len(body["instances"]),
                                              "model_version": name})

                app = web.Application()
                app.router.add_post("/v1/models/model:predict", predict)
                runner = web.AppRunner(app)
                await runner.setup()
                port = free_port()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                self.runners.append(runner)
                self.ports[name] = port

        self.loop.run_until_complete(serve())
        started.set()
        self.loop.run_forever()

    def backend(self, name: str) -> Backend:
        return Backend(key=f"{name}-key", version=name, url=f"http://127.0.0.1:{self.ports[name]}")

    def close(self) -> None:
        async def cleanup():
            for runner in self.runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def backends():
    fake = FakeBackends({"v1": 0.1, "v2": 0.9, "v3": 0.5})
    yield fake
    fake.close()


@pytest.fixture
def splitter():
    started = Splitter(seed=11, request_timeout_s=5)
    started.start()
    yield started
    started.stop()


def post(url: str, request_id: str, extra_headers: dict | None = None) -> tuple[int, dict]:
    body = json.dumps({"instances": [{}, {}]}).encode()
    request = urllib.request.Request(f"{url}/v1/models/model:predict", data=body,
                                     headers={"content-type": "application/json", "x-request-id": request_id,
                                              **(extra_headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_the_synthetic_traffic_marker_reaches_the_model_server(splitter, backends):
    """Replayed and warm-up requests are marked so the model server's prediction log (the
    monitor's input) leaves them out; the splitter must pass the marker on, and add none."""
    splitter.set_routes(Routes(stable=backends.backend("v1")))
    assert post(splitter.url, "m1", {names.SYNTHETIC_TRAFFIC_HEADER: "replay"})[0] == 200
    assert post(splitter.url, "m2")[0] == 200
    assert backends.synthetic["v1"] == ["replay", ""]


def test_metrics_are_per_revision_in_queue_proxy_names(splitter, backends):
    from prometheus_client.parser import text_string_to_metric_families

    dead = Backend(key="dead-key", version="v9", url=f"http://127.0.0.1:{free_port()}")
    splitter.set_routes(Routes(stable=backends.backend("v1"), canary=dead, percent=30))
    statuses = [post(splitter.url, f"p{i}")[0] for i in range(100)]
    with urllib.request.urlopen(f"{splitter.url}/metrics", timeout=10) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    counts = {(s.labels["revision_name"], s.labels["response_code_class"]): s.value
              for s in families["revision_app_request_count"].samples}
    assert counts == {("v1", "2xx"): statuses.count(200), ("v9", "5xx"): statuses.count(502)}
    assert 0 < statuses.count(502) < 100
    latency_counts = {s.labels["revision_name"]: s.value for s in families["revision_app_request_latencies"].samples
                      if s.name.endswith("_count")}
    assert latency_counts == {"v1": statuses.count(200), "v9": statuses.count(502)}


def test_nothing_deployed_is_503(splitter):
    assert post(splitter.url, "r0")[0] == 503


@pytest.mark.parametrize("percent", [0, 30, 100])
def test_each_request_goes_to_the_canary_with_probability_percent(splitter, backends, percent):
    splitter.set_routes(Routes(stable=backends.backend("v1"), canary=backends.backend("v2"), percent=percent))
    n = 400
    answers = [post(splitter.url, f"r{i}") for i in range(n)]
    assert all(status == 200 for status, _ in answers)
    to_canary = sum(body["model_version"] == "v2" for _, body in answers)
    if percent in (0, 100):
        assert to_canary == n * percent // 100
    else:  # binomial(400, 0.3): sd 9.2 requests; ±40 is > 4 sd
        assert abs(to_canary - 120) < 40
    records = splitter.records({f"r{i}" for i in range(n)})
    assert len(records) == n and all(r.ok and r.predictions == [0.9 if r.role == CANARY else 0.1, ] * 2
                                      for r in records)
    assert sum(r.role == CANARY for r in records) == to_canary
    assert {r.version for r in records if r.role == STABLE} <= {"v1"}


def test_shadow_gets_a_copy_and_the_client_gets_the_stable_answer(splitter, backends):
    splitter.set_routes(Routes(stable=backends.backend("v1"), shadow=backends.backend("v3")))
    answers = [post(splitter.url, f"s{i}") for i in range(20)]
    assert splitter.wait_idle(10)
    assert all(body["model_version"] == "v1" and body["predictions"] == [0.1, 0.1] for _, body in answers)
    records = splitter.records({f"s{i}" for i in range(20)})
    assert sorted(r.role for r in records) == [SHADOW] * 20 + [STABLE] * 20
    assert sorted(backends.seen["v3"]) == sorted(f"s{i}" for i in range(20))  # same request ids


def test_a_dead_backend_is_a_recorded_502_and_the_shadow_never_fails_the_client(splitter, backends):
    dead = Backend(key="dead", version="gone", url=f"http://127.0.0.1:{free_port()}")
    splitter.set_routes(Routes(stable=backends.backend("v1"), canary=dead, percent=100, shadow=dead))
    status, body = post(splitter.url, "d1")
    assert status == 502 and "canary backend gone gave no answer" in body["error"]
    splitter.set_routes(Routes(stable=backends.backend("v1"), shadow=dead))
    status, body = post(splitter.url, "d2")
    assert status == 200 and body["model_version"] == "v1"
    assert splitter.wait_idle(10)
    failed = [r for r in splitter.records({"d1", "d2"}) if not r.ok]
    assert sorted((r.request_id, r.role, r.status) for r in failed) == [("d1", CANARY, 0), ("d1", SHADOW, 0),
                                                                        ("d2", SHADOW, 0)]


def test_drain_waits_for_requests_in_flight(splitter, backends):
    splitter.set_routes(Routes(stable=backends.backend("v1")))
    assert splitter.drain("v1-key", timeout=1)  # idle: immediately
    splitter._loop.call_soon_threadsafe(splitter._inflight.update, {"v1-key": 1})
    assert splitter.drain("v1-key", timeout=0.2) is False  # one request never finishes
    splitter._loop.call_soon_threadsafe(splitter._inflight.subtract, {"v1-key": 1})
    assert splitter.drain("v1-key", timeout=1)


def test_one_target_per_state_dir(tmp_path):
    with LocalTarget(LocalConfig(state_dir=str(tmp_path))):
        with pytest.raises(RuntimeError, match=r"in use by another local deploy \(pid \d+\)"):
            LocalTarget(LocalConfig(state_dir=str(tmp_path)))
    LocalTarget(LocalConfig(state_dir=str(tmp_path))).close()  # released by close()


def test_processes_left_by_a_killed_run_are_stopped_and_others_are_not(tmp_path):
    log_dir = tmp_path / "logs"
    sleeper = "import time; time.sleep(120)"
    # A model server of an earlier run on this state_dir (its arguments name our log dir) ...
    ours = subprocess.Popen([sys.executable, "-c", sleeper, "-m", "serving.model_server",
                             f"--prediction_log={log_dir}/x.jsonl"])
    # ... and an unrelated process whose pid happens to be recorded.
    other = subprocess.Popen([sys.executable, "-c", sleeper])
    try:
        (tmp_path / PROCESSES_FILE).write_text(json.dumps({"pids": [ours.pid, other.pid, 999999999]}))
        started = time.monotonic()
        target = LocalTarget(LocalConfig(state_dir=str(tmp_path), stop_timeout_s=5))
        assert ours.wait(10) is not None and time.monotonic() - started < 10
        assert other.poll() is None
        assert json.loads((tmp_path / PROCESSES_FILE).read_text())["pids"] == []
        target.close()
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()


def test_local_config_is_checked():
    with pytest.raises(ValueError, match="state_dir is required"):
        LocalConfig(state_dir="")
    with pytest.raises(ValueError, match="backend must be"):
        LocalConfig(state_dir="s", backend="torch")


def test_replay_without_records_attributes_by_response_version_and_blames_errors_on_the_candidate(
        splitter, backends):
    from components.deploy.replay import ReplayObserver
    from components.deploy.traffic import ReplayConfig

    rows = [{"x": i} for i in range(50)]
    lines: list[str] = []
    observe = ReplayObserver(None, "model", rows, ReplayConfig(rows_per_request=2, concurrency=3), 100,
                             url=splitter.url, versions=lambda: ("v1", "v2"), progress=lines.append)
    splitter.set_routes(Routes(stable=backends.backend("v1"), canary=backends.backend("v2"), percent=50))
    stable, canary = observe(50)
    assert stable.requests + canary.requests == 100 and stable.errors == canary.errors == 0
    assert set(stable.predictions) == {0.1} and set(canary.predictions) == {0.9}
    assert len(canary.predictions) == 2 * canary.requests and 20 < canary.requests < 80
    dead = Backend(key="dead", version="v2", url=f"http://127.0.0.1:{free_port()}")
    splitter.set_routes(Routes(stable=backends.backend("v1"), canary=dead, percent=50))
    stable, canary = observe(50)
    assert stable.errors == 0 and canary.errors == canary.requests > 20  # answers name no version
    assert "failed at the client" in lines[-1] and observe.windows[-1]["failed"] == canary.errors
