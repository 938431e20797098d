"""The local target end to end: real `serving.model_server` processes (serving env) behind the
splitter, stand-in model versions (serving/tests/stand_in.py), replayed HMDA rows as traffic.

One target for the module (process start-up is most of the time): each test starts from "v1 is
stable" (the `stable_v1` fixture puts it back when a test left something else live).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from components.deploy import analysis
from components.deploy.local import CANARY, DEFAULT_SERVING_PYTHON, STABLE, LocalConfig, LocalTarget
from components.deploy.replay import ReplayObserver, load_rows
from components.deploy.traffic import ReplayConfig
from components.deploy.rollout import (
    ABORTED, FIRST_DEPLOY, PROMOTED, ROLLED_BACK, UNCHANGED, LiveState, ModelRef, RolloutPolicy, rollout,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not DEFAULT_SERVING_PYTHON.exists(),
                       reason=f"needs the serving env {DEFAULT_SERVING_PYTHON} (make setup-serving)"),
]

MODEL = "model"
# 200 requests of 8 rows per step; at 20% the canary gets ~40 requests (>= min_requests 20) and
# ~320 predictions, enough for PSI noise to stay far below 0.2.
POLICY = RolloutPolicy(steps=(20, 50, 100), requests_per_step=200, min_requests=20)
REPLAY = ReplayConfig(rows_per_request=8, concurrency=4, seed=1)
# ONNX Runtime servers start in a third of the time of TensorFlow ones (no TensorFlow import); the
# target does not depend on the backend (`python -m components.deploy` runs the SavedModel).
SERVER = {"backend": "onnx", "seed": 0, "ready_timeout_s": 120}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A stopped child we have not reaped yet is a zombie, not a running server.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, ModelRef]:
    from serving.tests import stand_in

    registry = tmp_path_factory.mktemp("registry")
    built = {}
    for key, version, bias in (("v1", "v20250101T000000Z-one", stand_in.BIAS),
                               ("v2", "v20250102T000000Z-two", stand_in.BIAS + 0.05),  # a small, honest change
                               ("shifted", "v20250103T000000Z-shifted", stand_in.BIAS + 2.0)):
        built[key] = ModelRef(MODEL, version, stand_in.build_registry(str(registry), MODEL, version=version, bias=bias))
    return built


@pytest.fixture(scope="module")
def rows(hmda_csv):
    from serving.tests import stand_in

    return load_rows(str(hmda_csv), stand_in.FEATURE_TYPES)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy-state")


@pytest.fixture(scope="module")
def target(state_dir):
    with LocalTarget(LocalConfig(state_dir=str(state_dir), **SERVER)) as t:
        yield t


@pytest.fixture
def stable_v1(target, versions):
    if target.live() != LiveState(stable=versions["v1"]):
        target.deploy(versions["v1"])
    return target


def observer(target, rows, lines=None, labels=None) -> ReplayObserver:
    return ReplayObserver(target, MODEL, rows, REPLAY, POLICY.requests_per_step,
                          progress=(lines.append if lines is not None else print), labels=labels)


@pytest.fixture(scope="module")
def deny(hmda_csv) -> list[int]:
    """The sample's labels, in load_rows order: the replay is labelled, as an eval split is."""
    import csv

    with open(hmda_csv, newline="") as f:
        return [int(row["deny"] == "yes") for row in csv.DictReader(f)]


def predict(url: str, rows: list[dict]) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/v1/models/{MODEL}:predict",
                                     data=json.dumps({"instances": rows}).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError) as exc:
        return 0, {"error": str(exc)}


def window_records(target, lines_before: int) -> list:
    return target.records()[lines_before:]


def test_first_deploy_serves_and_a_rerun_changes_nothing(target, versions, rows):
    assert target.live() == LiveState()
    result = rollout(target, versions["v1"], POLICY, observer(target, rows), analysis.analyse, print)
    assert result.outcome == FIRST_DEPLOY
    status, body = predict(target.url, rows[:3])
    assert status == 200 and body["model_version"] == versions["v1"].version and len(body["predictions"]) == 3
    pids = target.pids()
    assert len(pids) == 1

    again = rollout(target, versions["v1"], POLICY, observer(target, rows), analysis.analyse, print)
    assert again.outcome == UNCHANGED and target.pids() == pids  # no process started or stopped
    state = json.loads((target.state_dir / "state.json").read_text())
    assert state["stable"]["version"] == versions["v1"].version
    assert json.loads((target.state_dir / "processes.json").read_text())["pids"] == pids


def test_shifted_canary_is_rolled_back_on_psi_and_the_stable_share_never_fails(stable_v1, versions, rows):
    target = stable_v1
    seen = len(target.records())
    result = rollout(target, versions["shifted"], POLICY, observer(target, rows), analysis.analyse, print)
    assert result.outcome == ROLLED_BACK and len(result.steps) == 1
    step = result.steps[0]
    assert step.figures["prediction_psi"] > POLICY.max_prediction_psi
    assert result.reason.startswith("at 20%: prediction shift: PSI ")
    records = window_records(target, seen)
    assert {r.role for r in records} == {STABLE, CANARY}
    assert all(r.ok for r in records)  # a shift is not an error: nobody saw a failure
    assert target.live() == LiveState(stable=versions["v1"])
    assert target.process(CANARY) is None and len(target.pids()) == 1


def test_canary_killed_mid_step_is_rolled_back_with_zero_stable_failures(stable_v1, versions, rows):
    target = stable_v1
    seen = len(target.records())
    observe = observer(target, rows)
    killed = {}

    def kill_canary_after_some_answers():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answered = [r for r in window_records(target, seen) if r.role == CANARY and r.ok]
            proc = target.process(CANARY)
            if len(answered) >= 8 and proc is not None:
                killed["pid"] = proc.pid
                os.kill(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.005)

    def observe_and_kill(percent):
        killer = threading.Thread(target=kill_canary_after_some_answers)
        killer.start()
        try:
            return observe(percent)
        finally:
            killer.join()

    result = rollout(target, versions["v2"], POLICY, observe_and_kill, analysis.analyse, print)
    assert "pid" in killed, "the canary was never killed"
    assert result.outcome == ROLLED_BACK and result.reason.startswith("at 20%: canary error rate ")
    records = window_records(target, seen)
    stable = [r for r in records if r.role == STABLE]
    canary = [r for r in records if r.role == CANARY]
    assert stable and all(r.ok for r in stable), [r.error for r in stable if not r.ok][:3]
    assert sum(r.ok for r in canary) >= 8 and sum(not r.ok for r in canary) > 0
    assert all(r.status == 0 for r in canary if not r.ok)  # no answer: the process was gone
    assert result.steps[0].figures["errors_stable"] == 0
    assert target.live() == LiveState(stable=versions["v1"]) and not alive(killed["pid"])
    status, body = predict(target.url, rows[:2])  # the stable version still serves
    assert status == 200 and body["model_version"] == versions["v1"].version


def test_shadow_answers_are_recorded_never_returned_and_its_failure_never_reaches_clients(stable_v1, versions,
                                                                                          rows):
    target = stable_v1
    seen = len(target.records())
    observe = observer(target, rows)
    after_kill: list[tuple[int, dict]] = []

    def observe_then_kill_the_shadow(percent):
        stats = observe(percent)
        shadow = target.process("shadow")
        os.kill(shadow.pid, signal.SIGKILL)
        shadow.proc.wait()
        after_kill.extend(predict(target.url, rows[i:i + 4]) for i in range(0, 20, 4))
        target.wait_idle()
        return stats

    policy = RolloutPolicy(mode="shadow", requests_per_step=POLICY.requests_per_step, min_requests=20)
    result = rollout(target, versions["shifted"], policy, observe_then_kill_the_shadow, analysis.analyse, print)
    assert result.outcome == "shadow_failed" and "prediction shift: PSI" in result.reason
    assert result.steps[0].figures["requests_canary"] == result.steps[0].figures["requests_stable"] == 200
    records = window_records(target, seen)
    client = [r for r in records if r.role == STABLE]
    shadow = [r for r in records if r.role == "shadow"]
    assert {r.request_id for r in shadow} == {r.request_id for r in client}  # every request mirrored
    assert all(r.version == versions["v1"].version and r.ok for r in client)
    assert all(status == 200 and body["model_version"] == versions["v1"].version for status, body in after_kill)
    assert sum(not r.ok for r in shadow) == len(after_kill)  # the dead shadow failed only for itself
    assert target.live() == LiveState(stable=versions["v1"]) and target.process("shadow") is None


def test_a_canary_that_cannot_start_is_aborted_with_its_log(stable_v1, versions, rows, tmp_path):
    import shutil

    broken = tmp_path / "v20250105T000000Z-broken"
    shutil.copytree(versions["v2"].uri, broken)
    (broken / "model.onnx").unlink()
    target = stable_v1
    result = rollout(target, ModelRef(MODEL, broken.name, str(broken)), POLICY, observer(target, rows),
                     analysis.analyse, print)
    assert result.outcome == ABORTED and result.steps == []
    assert result.reason.startswith(f"at 20%: ServerStartError: model server for {broken.name} (canary) exited")
    assert "no ONNX model at" in result.reason  # the server's own words, from its log
    assert target.live() == LiveState(stable=versions["v1"]) and len(target.pids()) == 1
    status, body = predict(target.url, rows[:2])
    assert status == 200 and body["model_version"] == versions["v1"].version


def test_good_canary_is_promoted_under_continuous_load_without_losing_a_request(stable_v1, versions, rows, deny):
    target = stable_v1
    old_stable = target.process(STABLE)
    url = target.url
    stop = threading.Event()
    answers: list[tuple[int, str]] = []

    def load(offset: int) -> None:
        i = offset
        while not stop.is_set():
            status, body = predict(url, rows[i % 700: i % 700 + 4])
            answers.append((status, body.get("model_version", body.get("error", ""))))
            i += 4

    threads = [threading.Thread(target=load, args=(k * 300,)) for k in range(2)]
    for thread in threads:
        thread.start()
    lines: list[str] = []
    try:
        result = rollout(target, versions["v2"], POLICY, observer(target, rows, lines, deny), analysis.analyse,
                         print)
        time.sleep(0.5)  # keep the load on the new stable for a moment
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert result.outcome == PROMOTED, result.reason
    assert [s.percent for s in result.steps] == [20, 50] and all(s.passed for s in result.steps)
    assert all(s.figures["errors_canary"] == 0 and s.figures["errors_stable"] == 0 for s in result.steps)
    # Labelled replay: each version's AUC on its own share, from the splitter's records.
    for step in result.steps:
        f = step.figures
        assert f["labelled_canary"] == f["predictions_canary"] > 100
        # Two shares of ~100-300 rows with ~12% positives: each AUC has a standard error near 0.08,
        # their difference near 0.11, so 0.15 failed healthy runs (0.154 seen in CI); 0.35 is ~3 se.
        assert 0.55 < f["auc_canary"] and abs(f["auc_canary"] - f["auc_stable"]) < 0.35
        assert analysis.CHECK_QUALITY in {c["check"] for c in step.checks}
    assert len(lines) == 2 and all("(0 failed at the client)" in line for line in lines)
    failures = [a for a in answers if a[0] != 200]
    assert len(answers) > 50 and not failures, (len(answers), failures[:5])
    served = [version for _, version in answers]
    assert versions["v1"].version in served and served[-1] == versions["v2"].version
    # The old stable was stopped (gracefully: exit 0) only after the switch, and nothing was lost.
    assert old_stable.proc.returncode == 0 and not alive(old_stable.pid)
    assert target.live() == LiveState(stable=versions["v2"]) and target.process(CANARY) is None

    rerun = rollout(target, versions["v2"], POLICY, observer(target, rows), analysis.analyse, print)
    assert rerun.outcome == UNCHANGED and len(target.pids()) == 1


def test_state_survives_the_target_and_close_leaves_no_process(target, state_dir, versions, rows):
    if target.live().stable is None:
        target.deploy(versions["v1"])
    live, pids = target.live(), target.pids()
    assert pids
    with pytest.raises(RuntimeError, match="in use by another local deploy"):
        LocalTarget(LocalConfig(state_dir=str(state_dir), **SERVER))
    target.close()
    assert not any(alive(pid) for pid in pids)
    assert json.loads((state_dir / "processes.json").read_text())["pids"] == []

    with LocalTarget(LocalConfig(state_dir=str(state_dir), **SERVER)) as again:
        assert again.live() == live and again.pids() == []  # knowing the state starts nothing
        status, body = predict(again.url, rows[:2])  # the first use starts what the state says
        assert status == 200 and body["model_version"] == live.stable.version
        started = again.pids()
        assert len(started) == 1
    assert not any(alive(pid) for pid in started)


def test_each_step_judges_served_traffic_from_a_local_prometheus(versions, rows, hmda_csv, tmp_path):
    """prometheus=True (DeployConfig.local_prometheus, on for `make deploy`): a Prometheus on
    loopback scrapes the splitter, and build_observer judges each step's served traffic from it."""
    from pathlib import Path

    from components.deploy import deploy as dep
    from components.deploy import local_prometheus

    assert local_prometheus.binary(), "no prometheus binary: `make prometheus` installs Debian's package"
    config = dep.DeployConfig(target="local", registry_uri=str(tmp_path / "registry"), state_dir=str(tmp_path / "state"),
                              data=str(hmda_csv), requests_per_step=POLICY.requests_per_step, seed=1)
    lines: list[str] = []
    with LocalTarget(LocalConfig(state_dir=config.state_dir, prometheus=True, **SERVER)) as target:
        target.deploy(versions["v1"])
        observe = dep.build_observer(config, target, versions["v2"], lambda: target.live().stable.version,
                                     lines.append)
        result = rollout(target, versions["v2"], POLICY, observe, analysis.analyse, print)
        url, prometheus_pid = target.prometheus_url, target.pids()[-1]
    assert result.outcome == PROMOTED, result.reason
    assert any(f"served traffic from {url}" in line for line in lines)
    for step in result.steps:
        f = step.figures
        assert f["served_source"] == f"prometheus {url}"
        assert f["served_requests_canary"] > 0 and f["served_errors_canary"] == 0
        assert f["served_requests_stable"] > f["served_requests_canary"] * 0.5  # the stable's share too
    report = analysis.report_markdown(result)
    assert "Served traffic per revision" in report and f"| 20% | {result.steps[0].figures['served_window_s']} s |" in report
    assert f"prometheus {url}" in analysis.report_html(result)
    assert not alive(prometheus_pid) and not list(Path(config.state_dir).glob("prometheus-*"))
