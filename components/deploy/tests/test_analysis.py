"""Canary analysis: each breach kind at and past its bound, and the reports built from decisions."""

from __future__ import annotations

import numpy as np
import pytest

from components.common import drift
from components.deploy import analysis
from components.deploy.rollout import (
    PROMOTED, ROLLED_BACK, RolloutPolicy, RolloutResult, StepDecision, VersionStats,
)

POLICY = RolloutPolicy(min_requests=30, max_error_rate=0.01, max_error_rate_increase=0.005,
                       max_p99_latency_ratio=1.5, p99_latency_slack_ms=25.0, max_prediction_psi=0.2)
RNG = np.random.default_rng(7)
BASE = RNG.beta(2, 5, size=4000).tolist()


def stats(version: str, requests: int, errors: int = 0, latency: float = 10.0,
          predictions: list[float] | None = None) -> VersionStats:
    answered = requests - errors
    return VersionStats(version=version, requests=requests, errors=errors, latencies_ms=[latency] * answered,
                        predictions=list(BASE[: answered * 8] if predictions is None else predictions))


def test_a_healthy_canary_passes_with_every_figure():
    decision = analysis.analyse(10, stats("v1", 360), stats("v2", 40), POLICY)
    assert decision.passed and decision.reasons == []
    f = decision.figures
    assert (f["requests_stable"], f["requests_canary"], f["errors_canary"]) == (360, 40, 0)
    assert f["error_rate_canary"] == 0.0 and f["p99_ms_canary"] == pytest.approx(10.0)
    assert f["p99_bound_ms"] == pytest.approx(10 * 1.5 + 25)
    assert 0 <= f["prediction_psi"] < 0.05
    assert {c["check"] for c in decision.checks} == {
        analysis.CHECK_TRAFFIC, analysis.CHECK_ERRORS, analysis.CHECK_ERRORS_RELATIVE,
        analysis.CHECK_LATENCY, analysis.CHECK_SHIFT}
    assert all(c["passed"] for c in decision.checks)


@pytest.mark.parametrize("requests, passed", [(30, True), (29, False), (0, False)])
def test_too_few_canary_requests_is_a_breach(requests, passed):
    decision = analysis.analyse(10, stats("v1", 400), stats("v2", requests), POLICY)
    assert decision.passed is passed
    if not passed:
        assert decision.reasons[0] == (
            f"too few requests: the canary had {requests} requests at 10%, fewer than the minimum 30 "
            "(send more traffic per step or use a larger first step)")
        # Latency and shift are not judged on so little traffic.
        assert {c["check"] for c in decision.checks} <= {analysis.CHECK_TRAFFIC, analysis.CHECK_ERRORS,
                                                         analysis.CHECK_ERRORS_RELATIVE}


def test_error_rate_absolute_bound_is_inclusive_and_named():
    loose = RolloutPolicy(max_error_rate=0.01, max_error_rate_increase=0.5)
    assert analysis.analyse(50, stats("v1", 100), stats("v2", 100, errors=1), loose).passed  # 1.00% <= 1.00%
    decision = analysis.analyse(50, stats("v1", 100), stats("v2", 100, errors=2), loose)
    assert not decision.passed
    assert decision.reasons == ["canary error rate 2.00% (2/100) > bound 1.00% (max_error_rate)"]


def test_error_rate_relative_to_stable():
    # 1/125 = 0.8% is within the absolute 1% but more than stable 0% + 0.5%.
    decision = analysis.analyse(50, stats("v1", 250), stats("v2", 125, errors=1), POLICY)
    assert not decision.passed
    assert decision.reasons == ["canary error rate 0.80% (1/125) > stable 0.00% (0/250) + 0.50% "
                                "(max_error_rate_increase) = 0.50%"]
    # The same canary next to a stable that fails 0.4% of the time: bound 0.9%, passes.
    assert analysis.analyse(50, stats("v1", 250, errors=1), stats("v2", 125, errors=1), POLICY).passed
    # A stable that fails often does not excuse the canary past the absolute bound.
    both = analysis.analyse(50, stats("v1", 100, errors=5), stats("v2", 100, errors=3), POLICY)
    assert [c["check"] for c in both.checks if not c["passed"]] == [analysis.CHECK_ERRORS]


def test_p99_latency_bound_is_ratio_plus_slack():
    assert analysis.analyse(10, stats("v1", 300, latency=10.0), stats("v2", 40, latency=40.0), POLICY).passed
    decision = analysis.analyse(10, stats("v1", 300, latency=10.0), stats("v2", 40, latency=40.1), POLICY)
    assert decision.reasons == ["canary p99 latency 40.1 ms > bound 40.0 ms (stable p99 10.0 ms × 1.5 + 25 ms)"]


def test_p99_is_the_99th_percentile_not_the_mean():
    slow_tail = [5.0] * 95 + [500.0] * 5  # mean 29.75 ms, p99 500 ms
    canary = VersionStats("v2", requests=100, latencies_ms=slow_tail, predictions=BASE[:800])
    decision = analysis.analyse(50, stats("v1", 100, latency=5.0), canary, POLICY)
    assert decision.figures["p99_ms_canary"] == pytest.approx(500.0)
    assert not decision.passed and "p99 latency 500.0 ms" in decision.reasons[0]


def test_prediction_shift_breach_names_psi_and_bound():
    shifted = (np.asarray(BASE[:320]) * 0.5 + 0.4).tolist()
    decision = analysis.analyse(10, stats("v1", 360), stats("v2", 40, predictions=shifted), POLICY)
    assert not decision.passed
    psi = drift.psi(BASE[: 360 * 8], shifted)
    assert decision.figures["prediction_psi"] == pytest.approx(psi)
    assert decision.reasons == [f"prediction shift: PSI {psi:.3f} of the canary's 320 predictions against the "
                                f"stable's 2880 > bound 0.2"]


def test_prediction_shift_bound_is_inclusive():
    canary_predictions = (np.asarray(BASE[1000:1320]) + 0.05).tolist()
    psi = drift.psi(BASE[:2880], canary_predictions)
    at = RolloutPolicy(max_prediction_psi=psi)
    below = RolloutPolicy(max_prediction_psi=psi * 0.99)
    assert analysis.analyse(10, stats("v1", 360), stats("v2", 40, predictions=canary_predictions), at).passed
    assert not analysis.analyse(10, stats("v1", 360), stats("v2", 40, predictions=canary_predictions), below).passed


def test_no_stable_predictions_is_a_breach_not_a_pass():
    stable = VersionStats("v1", requests=100, errors=100)
    decision = analysis.analyse(10, stable, stats("v2", 40), RolloutPolicy(max_error_rate_increase=0.0))
    assert any("no stable predictions" in r for r in decision.reasons)
    assert not decision.passed


def test_shadow_step_is_worded_as_shadow():
    decision = analysis.analyse(0, stats("v1", 400), stats("v2", 10), POLICY)
    assert decision.reasons[0].startswith("too few requests: the shadow had 10 requests in shadow")


def _result(outcome: str, steps: list[StepDecision]) -> RolloutResult:
    return RolloutResult(target="local", model_name="model", mode="canary", candidate_version="v2",
                         stable_version="v1", outcome=outcome, reason="why it ended so", steps=steps,
                         notes=["deployed v1 first"])


def test_metrics_are_flat_numbers_with_step_prefixes():
    ok = analysis.analyse(10, stats("v1", 360), stats("v2", 40), POLICY)
    bad = analysis.analyse(50, stats("v1", 200), stats("v2", 200, errors=20), POLICY)
    m = analysis.metrics(_result(ROLLED_BACK, [ok, bad]))
    assert m["outcome"] == analysis.OUTCOME_CODES[ROLLED_BACK] < 0
    assert m["succeeded"] == 0.0 and m["steps_run"] == 2.0 and m["steps_passed"] == 1.0
    assert m["step10_passed"] == 1.0 and m["step50_passed"] == 0.0
    assert m["step50_error_rate_canary"] == pytest.approx(0.1)
    assert m["step10_requests_canary"] == 40.0
    assert all(isinstance(v, float) for v in m.values())
    assert analysis.metrics(_result(PROMOTED, []))["outcome"] == 1.0


def test_reports_put_the_decision_first_and_show_each_step():
    ok = analysis.analyse(10, stats("v1", 360), stats("v2", 40), POLICY)
    bad = analysis.analyse(50, stats("v1", 200), stats("v2", 200, errors=20), POLICY)
    result = _result(ROLLED_BACK, [ok, bad])
    md = analysis.report_markdown(result)
    assert md.index("why it ended so") < md.index("| 10% |") < md.index("| 50% |")
    assert "**BREACH**" in md and "10.00% (20/200) > bound 1.00%" in md and "deployed v1 first" in md
    html = analysis.report_html(result)
    assert html.index("why it ended so") < html.index("<table")
    assert 'class="badge bad">rolled_back' in html and 'class="badge ok">pass' in html
    assert 'class="badge bad">breach' in html
    assert "<script" not in html and "src=" not in html  # self-contained for the KFP UI
