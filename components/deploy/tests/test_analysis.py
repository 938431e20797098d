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
def test_too_few_canary_requests_is_inconclusive_not_a_breach(requests, passed):
    decision = analysis.analyse(10, stats("v1", 400), stats("v2", requests), POLICY)
    assert decision.passed is passed
    if not passed:
        assert decision.inconclusive and decision.reasons == [] and decision.verdict == "inconclusive"
        assert decision.pending[0] == f"too few requests: the canary had {requests} requests at 10%, fewer than the minimum 30"
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
    noise = drift.noise_level(drift.PSI, 320, 2880, POLICY.noise_quantile, np.full(10, 0.1))
    assert decision.reasons == [f"prediction shift: PSI {psi:.3f} of the canary's 320 predictions against the "
                                f"stable's 2880 > bound 0.2 (sampling noise {noise:.3f})"]


def test_a_prediction_shift_within_sampling_noise_is_inconclusive():
    """40 canary predictions against 360: PSI's no-shift level is above 0.2, so the window cannot
    tell a shift of that size from chance; it is extended instead of failing a healthy canary."""
    rng = np.random.default_rng(0)
    few = VersionStats("v2", requests=40, latencies_ms=[10.0] * 40, predictions=rng.beta(2, 5, 40).tolist())
    many = VersionStats("v1", requests=360, latencies_ms=[10.0] * 360, predictions=rng.beta(2, 5, 360).tolist())
    decision = analysis.analyse(10, many, few, POLICY)
    assert decision.inconclusive and "too few predictions to judge" in decision.pending[0]
    shift = next(c for c in decision.checks if c["check"] == analysis.CHECK_SHIFT)
    assert shift["passed"] is None


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
    assert decision.pending[0].startswith("too few requests: the shadow had 10 requests in shadow")


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


# ------------------------------------------------------------------------------ live AUC on labelled traffic


def labelled(version: str, n: int, seed: int, quality: str = "good") -> VersionStats:
    """n labelled predictions (12% positives) of a decent model (AUC ~0.8), or the same spread of
    scores inverted or unrelated to the labels (what PSI against the stable cannot tell apart)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.12).astype(int)
    scores = 1 / (1 + np.exp(-(1.7 * labels - 1.5 + rng.normal(0, 1, n))))
    if quality == "inverted":  # the same scores, handed out in reverse rank order
        inverted = np.empty_like(scores)
        inverted[np.argsort(scores)] = np.sort(scores)[::-1]
        scores = inverted
    elif quality == "random":
        scores = rng.permutation(scores)  # the same spread, no relation to the labels
    requests = n // 8
    return VersionStats(version=version, requests=requests, latencies_ms=[10.0] * requests,
                        predictions=scores.tolist(), labels=labels.tolist())


def test_a_canary_as_good_as_the_stable_passes_the_live_auc_check():
    decision = analysis.analyse(10, labelled("v1", 2880, 1), labelled("v2", 320, 2), POLICY)
    check = next(c for c in decision.checks if c["check"] == analysis.CHECK_QUALITY)
    assert check["passed"] and decision.passed, decision.reasons
    f = decision.figures
    assert 0.7 < f["auc_stable"] < 0.9 and f["auc_bound"] < f["auc_stable"] - POLICY.max_auc_drop
    assert f["labelled_canary"] == 320


@pytest.mark.parametrize("quality", ["inverted", "random"])
def test_garbage_that_psi_cannot_see_fails_on_live_auc(quality):
    stable, canary = labelled("v1", 2880, 1), labelled("v2", 320, 2, quality)
    assert drift.psi(stable.predictions, canary.predictions) <= POLICY.max_prediction_psi  # PSI is blind here
    decision = analysis.analyse(10, stable, canary, POLICY)
    assert not decision.passed
    assert [r for r in decision.reasons if r.startswith("live AUC")], decision.reasons
    assert decision.figures["auc_canary"] < decision.figures["auc_bound"]


def test_live_auc_is_not_judged_without_enough_labels():
    stable, canary = labelled("v1", 2880, 1), labelled("v2", 320, 2, "inverted")
    canary.labels = canary.labels[:50]  # fewer than min_labelled (100)
    decision = analysis.analyse(10, stable, canary, POLICY)
    assert analysis.CHECK_QUALITY not in {c["check"] for c in decision.checks}
    assert decision.figures["auc_canary"] is None
    unlabelled = analysis.analyse(10, stats("v1", 360), stats("v2", 40), POLICY)
    assert analysis.CHECK_QUALITY not in {c["check"] for c in unlabelled.checks}


def test_auc_standard_error_matches_the_hanley_mcneil_table_value():
    # Hanley & McNeil (1982): AUC 0.8 with 50 positives and 50 negatives has SE ~0.0442.
    rng = np.random.default_rng(0)
    labels = np.array([1] * 50 + [0] * 50)
    scores = labels * 1.19 + rng.normal(0, 1, 100)  # AUC close to 0.8
    auc, se = analysis.auc_with_error(labels.tolist(), scores.tolist())
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    expected = np.sqrt((auc * (1 - auc) + 49 * (q1 - auc ** 2) + 49 * (q2 - auc ** 2)) / 2500)
    assert se == pytest.approx(expected) and 0.03 < se < 0.06
    assert analysis.auc_with_error([1, 1], [0.2, 0.3]) is None


def test_served_figures_too_few_to_judge_hold_the_step_and_are_recorded():
    stable, canary = stats("v1", 360), stats("v2", 40)
    served = {"requests": 5.0, "errors": 5.0, "p99_ms": 30.0, "window_s": 12, "source": "prometheus http://p"}
    stable.served, canary.served = dict(served, requests=400.0, errors=0.0), served
    decision = analysis.analyse(10, stable, canary, POLICY)
    assert decision.inconclusive and not decision.reasons
    assert any("too few served requests" in p for p in decision.pending)
    assert decision.figures["served_requests_canary"] == 5.0 and decision.figures["served_source"] == "prometheus http://p"
