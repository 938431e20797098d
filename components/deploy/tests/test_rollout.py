"""The rollout loop against a fake target: which calls it makes and what it decides."""

from __future__ import annotations

import pytest

from components.deploy import analysis
from components.deploy.rollout import (
    ABORTED, FIRST_DEPLOY, INCONCLUSIVE, PROMOTED, ROLLED_BACK, SHADOW, SHADOW_FAILED, SHADOW_PASSED, UNCHANGED,
    LiveState,
    RolloutPolicy, rollout,
)
from components.deploy.tests.fakes import V1, V2, FakeTarget, ScriptedObserver

CANARY_POLICY = RolloutPolicy(steps=(10, 50, 100), requests_per_step=400, min_requests=30)


def run(target: FakeTarget, observer: ScriptedObserver, policy: RolloutPolicy = CANARY_POLICY):
    lines: list[str] = []
    result = rollout(target, V2, policy, observer, analysis.analyse, lines.append)
    return result, lines


def test_first_deploy_takes_100_percent_without_observing():
    target, observer = FakeTarget(), ScriptedObserver()
    result, lines = run(target, observer)
    assert result.outcome == FIRST_DEPLOY and result.succeeded
    assert target.calls == [("deploy", V2.version)]
    assert observer.asked == [] and result.stable_version is None
    assert target.live() == LiveState(stable=V2)
    assert "nothing was live" in lines[-1]


def test_rerun_with_the_live_model_changes_nothing():
    target, observer = FakeTarget(LiveState(stable=V2)), ScriptedObserver()
    result, _ = run(target, observer)
    assert result.outcome == UNCHANGED and result.succeeded
    assert target.calls == [] and observer.asked == []


def test_rerun_after_an_interrupted_rollout_removes_the_stale_canary():
    target = FakeTarget(LiveState(stable=V2, canary=V1, canary_percent=10))
    result, _ = run(target, ScriptedObserver())
    assert result.outcome == UNCHANGED and target.calls == [("rollback",)]
    assert target.live() == LiveState(stable=V2)


def test_every_step_passing_promotes():
    target, observer = FakeTarget(LiveState(stable=V1)), ScriptedObserver()
    result, lines = run(target, observer)
    assert result.outcome == PROMOTED and result.succeeded
    assert target.calls == [("set_canary", V2.version, 10), ("set_canary", V2.version, 50), ("promote", V2.version)]
    assert observer.asked == [10, 50]
    assert [s.percent for s in result.steps] == [10, 50] and all(s.passed for s in result.steps)
    assert result.stable_version == V1.version and target.live() == LiveState(stable=V2)
    assert any("at 10%: PASS" in line for line in lines)


def test_breach_at_10_percent_rolls_back_before_more_traffic():
    target = FakeTarget(LiveState(stable=V1))
    observer = ScriptedObserver({10: {"canary_errors": 5}})
    result, _ = run(target, observer)
    assert result.outcome == ROLLED_BACK and not result.succeeded
    assert target.calls == [("set_canary", V2.version, 10), ("rollback",)]
    assert observer.asked == [10]
    assert result.reason.startswith("at 10%: canary error rate 12.50% (5/40) > bound 1.00%")
    assert target.live() == LiveState(stable=V1)


def test_breach_at_50_percent_rolls_back_after_a_passed_step():
    target = FakeTarget(LiveState(stable=V1))
    observer = ScriptedObserver({50: {"shift": 0.4}})
    result, _ = run(target, observer)
    assert result.outcome == ROLLED_BACK
    assert target.calls == [("set_canary", V2.version, 10), ("set_canary", V2.version, 50), ("rollback",)]
    assert [s.passed for s in result.steps] == [True, False]
    assert result.reason.startswith("at 50%: prediction shift: PSI ")
    assert ("promote", V2.version) not in target.calls


def test_a_canary_that_cannot_start_is_aborted_with_the_error_not_rolled_back():
    target = FakeTarget(LiveState(stable=V1), fail_on="set_canary")
    observer = ScriptedObserver()
    result, _ = run(target, observer)
    assert result.outcome == ABORTED and not result.succeeded
    assert result.reason == "at 10%: RuntimeError: set_canary failed: model server exited with 1"
    assert target.calls[-1] == ("rollback",) and observer.asked == []


def test_an_observer_error_aborts_and_an_interrupt_rolls_back_but_propagates():
    target = FakeTarget(LiveState(stable=V1))
    result, _ = run(target, ScriptedObserver(raises={50: ConnectionError("splitter gone")}))
    assert result.outcome == ABORTED and "ConnectionError: splitter gone" in result.reason
    assert target.calls[-1] == ("rollback",) and target.live().canary is None

    target = FakeTarget(LiveState(stable=V1))
    with pytest.raises(KeyboardInterrupt):
        run(target, ScriptedObserver(raises={10: KeyboardInterrupt()}))
    assert target.calls == [("set_canary", V2.version, 10), ("rollback",)]


def test_shadow_observes_once_and_never_promotes():
    policy = RolloutPolicy(mode=SHADOW)
    target, observer = FakeTarget(LiveState(stable=V1)), ScriptedObserver()
    result, _ = run(target, observer, policy)
    assert result.outcome == SHADOW_PASSED and result.succeeded
    assert target.calls == [("start_shadow", V2.version), ("stop_shadow",)]
    assert observer.asked == [0] and target.live() == LiveState(stable=V1)
    assert result.steps[0].figures["requests_canary"] == 400  # every request was mirrored

    target = FakeTarget(LiveState(stable=V1))
    result, _ = run(target, ScriptedObserver({0: {"canary_latency": 200.0}}), policy)
    assert result.outcome == SHADOW_FAILED and not result.succeeded
    assert "shadow p99 latency 200.0 ms > bound 40.0 ms" in result.reason
    assert target.calls == [("start_shadow", V2.version), ("stop_shadow",)]


def test_shadow_stops_even_when_observing_fails():
    target = FakeTarget(LiveState(stable=V1))
    result, _ = run(target, ScriptedObserver(raises={0: TimeoutError("no answer")}), RolloutPolicy(mode=SHADOW))
    assert result.outcome == ABORTED and "TimeoutError: no answer" in result.reason
    assert target.calls == [("start_shadow", V2.version), ("stop_shadow",)]


def test_too_little_traffic_extends_the_window_and_then_ends_inconclusive():
    # 100 requests per window at 10%: the canary gets 10 each time, 30 needed
    target = FakeTarget(LiveState(stable=V1))
    observer = ScriptedObserver({10: {"total": 100}})
    result, lines = run(target, observer, RolloutPolicy(max_windows=2))
    assert result.outcome == INCONCLUSIVE and not result.succeeded
    assert observer.asked == [10, 10] and result.steps[0].windows == 2
    assert target.calls == [("set_canary", V2.version, 10), ("rollback",)]
    assert "after 2 windows: too few requests: the canary had 20 requests" in result.reason
    assert any("extending the window" in line for line in lines)
    # a third window reaches 30 canary requests: judged, passed, and the rollout goes on
    target, observer = FakeTarget(LiveState(stable=V1)), ScriptedObserver({10: {"total": 100}})
    result, _ = run(target, observer, RolloutPolicy(max_windows=3, max_prediction_psi=1.0))
    assert result.outcome == PROMOTED and result.steps[0].windows == 3
    assert result.steps[0].figures["requests_canary"] == 30


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "blue-green"}, "mode must be one of"),
    ({"steps": (50, 10, 100)}, "steps must increase"),
    ({"steps": (10, 50)}, "end at 100"),
    ({"max_error_rate": 1.5}, "max_error_rate must be in [0, 1]"),
    ({"max_error_rate_increase": -0.1}, "max_error_rate_increase"),
    ({"max_p99_latency_ratio": 0.5}, "max_p99_latency_ratio must be >= 1"),
])
def test_policy_validation_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match="invalid rollout policy") as info:
        RolloutPolicy(**kwargs)
    assert message in str(info.value)
