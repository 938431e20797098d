"""Canary analysis: one step's figures for the stable version and the candidate → pass or breach.

Checks (every breach names the figure and its bound):

- enough traffic: the candidate must have had at least `min_requests` requests in the window;
  fewer leaves the step inconclusive (no evidence is neither a pass nor a breach: the rollout
  extends the window). Latency and prediction shift are not judged on so few; errors still are.
- error rate: the candidate's rate <= `max_error_rate` (absolute) AND <= the stable's rate +
  `max_error_rate_increase` (relative: a candidate may not be worse than what it replaces).
- p99 latency of answered requests: candidate <= stable × `max_p99_latency_ratio` +
  `p99_latency_slack_ms` (the slack keeps sub-millisecond noise from failing a step).
- prediction shift: PSI (components/common/drift.py) of the candidate's predictions against the
  stable's over the same window (same traffic, split at random) <= `max_prediction_psi`, judged
  only when the PSI two samples of these sizes reach by chance (at `noise_quantile`) is below the
  bound: 40 canary predictions against 360 read PSI ~0.25 on average with no shift at all, so
  such a window is inconclusive, not a breach.
- live quality, when the traffic is labelled (replayed eval rows): the candidate's AUC on its share
  >= the stable's AUC on its share - `max_auc_drop` - z × the standard error of the difference
  (Hanley–McNeil; the two shares are independent random splits; z at `noise_quantile`, 3.72). PSI cannot see a model whose
  scores are inverted or random but spread like the stable's (measured PSI 0.17 and 0.07 against
  the champion's scores); AUC on labelled rows does. Judged when each side has `min_labelled`
  labelled predictions of both classes.

Percent 0 is the shadow step: the candidate saw mirrored traffic; the words say "shadow".
"""

from __future__ import annotations

import math

import numpy as np

from components.common import drift
from components.common import html_report as hr
from components.common.ranking import auc_score
from components.deploy.rollout import (
    ABORTED, FIRST_DEPLOY, INCONCLUSIVE, PROMOTED, ROLLED_BACK, SHADOW_FAILED, SHADOW_PASSED, UNCHANGED,
    RolloutPolicy, RolloutResult, StepDecision, VersionStats,
)

# Outcome as a number for KFP Metrics: > 0 the candidate serves (or was already serving),
# -1/-2 it was refused, -3/-4 it was not judged (aborted, inconclusive), 0 nothing was attempted.
OUTCOME_CODES = {PROMOTED: 1.0, FIRST_DEPLOY: 2.0, UNCHANGED: 3.0, SHADOW_PASSED: 4.0,
                 ROLLED_BACK: -1.0, SHADOW_FAILED: -2.0, ABORTED: -3.0, INCONCLUSIVE: -4.0}
NOT_DEPLOYED = "not_deployed"

CHECK_TRAFFIC = "requests"
CHECK_ERRORS = "error rate"
CHECK_ERRORS_RELATIVE = "error rate vs stable"
CHECK_LATENCY = "p99 latency"
CHECK_SERVED_ERRORS = "served error rate"
CHECK_SHIFT = "prediction PSI"
CHECK_QUALITY = "live AUC vs stable"


def auc_with_error(labels: list[int], scores: list[float]) -> tuple[float, float] | None:
    """ROC AUC and its Hanley–McNeil (1982) standard error; None without both classes."""
    y = np.asarray(labels, dtype=bool)
    auc = auc_score(y, np.asarray(scores, dtype=np.float64))
    if auc is None:
        return None
    positives, negatives = int(y.sum()), int((~y).sum())
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) \
        / (positives * negatives)
    return auc, math.sqrt(max(variance, 0.0))


def p99(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.percentile(finite, 99)) if finite else None


def _rate(stats: VersionStats) -> float | None:
    return stats.errors / stats.requests if stats.requests else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def analyse(percent: int, stable: VersionStats, canary: VersionStats, policy: RolloutPolicy) -> StepDecision:
    """Judge one observation window; see the module docstring."""
    who = "shadow" if percent == 0 else "canary"
    reasons: list[str] = []
    pending: list[str] = []
    checks: list[dict] = []

    def check(name: str, value, bound, passed: bool | None, detail: str) -> None:
        """passed None: the window cannot decide this check (pending, not a breach)."""
        checks.append({"check": name, "value": value, "bound": bound, "passed": passed, "detail": detail})
        if passed is None:
            pending.append(detail)
        elif not passed:
            reasons.append(detail)

    enough = canary.requests >= policy.min_requests
    where = f"at {percent}%" if percent else "in shadow"
    check(CHECK_TRAFFIC, canary.requests, policy.min_requests, True if enough else None,
          f"too few requests: the {who} had {canary.requests} requests {where}, fewer than the "
          f"minimum {policy.min_requests}"
          if not enough else f"the {who} had {canary.requests} requests (minimum {policy.min_requests})")

    # Error rate: absolute and relative to the stable version over the same window.
    rate_c, rate_s = _rate(canary), _rate(stable)
    relative_bound = (rate_s or 0.0) + policy.max_error_rate_increase
    if rate_c is not None:
        figure = f"{who} error rate {_pct(rate_c)} ({canary.errors}/{canary.requests})"
        check(CHECK_ERRORS, rate_c, policy.max_error_rate, rate_c <= policy.max_error_rate,
              f"{figure} {'>' if rate_c > policy.max_error_rate else '<='} bound "
              f"{_pct(policy.max_error_rate)} (max_error_rate)")
        check(CHECK_ERRORS_RELATIVE, rate_c, relative_bound, rate_c <= relative_bound,
              f"{figure} {'>' if rate_c > relative_bound else '<='} stable {_pct(rate_s)} "
              f"({stable.errors}/{stable.requests}) + {_pct(policy.max_error_rate_increase)} "
              f"(max_error_rate_increase) = {_pct(relative_bound)}")

    # All the traffic the canary revision served (users' too), from the metrics provider.
    served = canary.served
    if served is not None:
        n, errors, source = served["requests"], served["errors"], served["source"]
        over = f"over {served['window_s']} s ({source})"
        if n < policy.min_requests:
            check(CHECK_SERVED_ERRORS, None, policy.max_error_rate, None,
                  f"too few served requests: the {who} revision served {n:.0f} {over}, fewer than the "
                  f"minimum {policy.min_requests}")
        else:
            rate = errors / n
            check(CHECK_SERVED_ERRORS, rate, policy.max_error_rate, rate <= policy.max_error_rate,
                  f"{who} revision's 5xx rate on all served traffic {_pct(rate)} ({errors:.0f}/{n:.0f} "
                  f"{over}) {'>' if rate > policy.max_error_rate else '<='} bound "
                  f"{_pct(policy.max_error_rate)} (max_error_rate)")

    # Latency: judged only on enough answers, against the stable's p99 in the same window.
    p99_c, p99_s = p99(canary.latencies_ms), p99(stable.latencies_ms)
    p99_bound = None if p99_s is None else p99_s * policy.max_p99_latency_ratio + policy.p99_latency_slack_ms
    if enough and p99_c is not None and p99_bound is not None:
        check(CHECK_LATENCY, p99_c, p99_bound, p99_c <= p99_bound,
              f"{who} p99 latency {p99_c:.1f} ms {'>' if p99_c > p99_bound else '<='} bound "
              f"{p99_bound:.1f} ms (stable p99 {p99_s:.1f} ms × {policy.max_p99_latency_ratio:g} + "
              f"{policy.p99_latency_slack_ms:g} ms)")

    # Prediction shift: the candidate's predictions against the stable's, same traffic.
    psi = None
    if enough and canary.predictions:
        if not stable.predictions:
            check(CHECK_SHIFT, None, policy.max_prediction_psi, False,
                  f"prediction PSI: no stable predictions in the window to compare the {who}'s "
                  f"{len(canary.predictions)} with")
        else:
            try:
                psi = drift.psi(stable.predictions, canary.predictions)
                bins = len(drift.quantile_edges(stable.predictions)) + 1
            except ValueError as exc:  # no finite baseline values
                check(CHECK_SHIFT, None, policy.max_prediction_psi, False, f"prediction PSI: {exc}")
            else:
                noise = drift.noise_level(drift.PSI, len(canary.predictions), len(stable.predictions),
                                          policy.noise_quantile, np.full(bins, 1 / bins))
                passed = None if noise > policy.max_prediction_psi else psi <= policy.max_prediction_psi
                figure = (f"prediction shift: PSI {psi:.3f} of the {who}'s {len(canary.predictions)} "
                          f"predictions against the stable's {len(stable.predictions)}")
                check(CHECK_SHIFT, psi, policy.max_prediction_psi, passed,
                      f"{figure}: its sampling noise {noise:.3f} exceeds the bound {policy.max_prediction_psi:g}, "
                      "too few predictions to judge" if passed is None else
                      f"{figure} {'>' if not passed else '<='} bound {policy.max_prediction_psi:g} "
                      f"(sampling noise {noise:.3f})")

    # Live quality on labelled traffic: AUC of each version on its own share of the window.
    auc_s = auc_c = auc_bound = None
    labelled = min(len(canary.labels), len(stable.labels))
    if enough and labelled >= policy.min_labelled:
        measured_s = auc_with_error(stable.labels, stable.predictions[:len(stable.labels)])
        measured_c = auc_with_error(canary.labels, canary.predictions[:len(canary.labels)])
        if measured_s and measured_c:
            (auc_s, se_s), (auc_c, se_c) = measured_s, measured_c
            noise = drift.normal_quantile(policy.noise_quantile) * math.hypot(se_s, se_c)
            auc_bound = auc_s - policy.max_auc_drop - noise
            passed = auc_c >= auc_bound
            check(CHECK_QUALITY, auc_c, auc_bound, passed,
                  f"live AUC {auc_c:.3f} of the {who} on {len(canary.labels)} labelled predictions "
                  f"{'<' if not passed else '>='} bound {auc_bound:.3f} (stable {auc_s:.3f} on "
                  f"{len(stable.labels)} - {policy.max_auc_drop:g} max_auc_drop - {noise:.3f} noise)")

    figures = {
        "requests_stable": stable.requests, "requests_canary": canary.requests,
        "errors_stable": stable.errors, "errors_canary": canary.errors,
        "error_rate_stable": rate_s, "error_rate_canary": rate_c,
        "error_rate_bound": min(policy.max_error_rate, relative_bound),
        "p99_ms_stable": p99_s, "p99_ms_canary": p99_c, "p99_bound_ms": p99_bound,
        "prediction_psi": psi, "psi_bound": policy.max_prediction_psi,
        "auc_stable": auc_s, "auc_canary": auc_c, "auc_bound": auc_bound, "labelled_canary": len(canary.labels),
        "predictions_stable": len(stable.predictions), "predictions_canary": len(canary.predictions),
        "min_requests": policy.min_requests,
    }
    for role, stats in (("stable", stable), ("canary", canary)):
        if stats.served is not None:  # each step's served figures name their source in result.json
            figures.update({f"served_requests_{role}": stats.served["requests"],
                            f"served_errors_{role}": stats.served["errors"],
                            f"served_p99_ms_{role}": stats.served["p99_ms"]})
            figures["served_source"] = stats.served["source"]
            figures["served_window_s"] = stats.served["window_s"]
    return StepDecision(percent=percent, passed=not reasons and not pending, reasons=reasons, figures=figures,
                        checks=checks, pending=pending)


# ---------------------------------------------------------------------------------- reports


def _step_name(step: StepDecision) -> str:
    return "shadow" if step.percent == 0 else f"step{step.percent}"


def _label(step: StepDecision) -> str:
    return "shadow" if step.percent == 0 else f"{step.percent}%"


def metrics(result: RolloutResult) -> dict[str, float]:
    """Flat numbers for KFP Metrics: outcome code, succeeded, and every step's figures."""
    out = {"outcome": OUTCOME_CODES.get(result.outcome, 0.0), "succeeded": float(result.succeeded),
           "steps_run": float(len(result.steps)), "steps_passed": float(sum(s.passed for s in result.steps))}
    for step in result.steps:
        prefix = _step_name(step)
        out[f"{prefix}_passed"] = float(step.passed)
        out[f"{prefix}_windows"] = float(step.windows)
        for name, value in step.figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[f"{prefix}_{name}"] = float(value)
    return out


def _fmt(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "rate":
        return _pct(value)
    if kind == "ms":
        return f"{value:.1f} ms"
    if kind in ("psi", "auc"):
        return f"{value:.3f}"
    if kind == "approx":  # Prometheus' increase() extrapolates counts to the window's edges
        return f"{value:.0f}"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


STEP_COLUMNS = (  # (header, figure, bound figure, kind)
    ("requests stable / canary", None, None, "count"),
    ("error rate canary", "error_rate_canary", "error_rate_bound", "rate"),
    ("error rate stable", "error_rate_stable", None, "rate"),
    ("p99 canary", "p99_ms_canary", "p99_bound_ms", "ms"),
    ("p99 stable", "p99_ms_stable", None, "ms"),
    ("prediction PSI", "prediction_psi", "psi_bound", "psi"),
    ("live AUC canary", "auc_canary", "auc_bound", "auc"),
    ("live AUC stable", "auc_stable", None, "auc"),
)


def _step_cells(step: StepDecision) -> list[str]:
    f = step.figures
    cells = [f"{f.get('requests_stable', '—')} / {f.get('requests_canary', '—')}"]
    for _, figure, bound, kind in STEP_COLUMNS[1:]:
        text = _fmt(f.get(figure), kind)
        if bound is not None and f.get(figure) is not None:
            text += f" ({'≥' if kind == 'auc' else '≤'} {_fmt(f.get(bound), kind)})"
        cells.append(text)
    return cells


SERVED_HEADERS = ("step", "window", "served requests stable / canary", "5xx stable / canary",
                  "p99 stable / canary", "source")


def _served_rows(result: RolloutResult) -> list[list[str]]:
    """What each revision served per step, users' traffic included (the metrics provider's figures)."""
    rows = []
    for step in result.steps:
        f = step.figures
        if "served_source" not in f:
            continue
        pair = lambda name, kind: f"{_fmt(f.get(name + '_stable'), kind)} / {_fmt(f.get(name + '_canary'), kind)}"  # noqa: E731
        rows.append([_label(step), f"{f.get('served_window_s', '—')} s", pair("served_requests", "approx"),
                     pair("served_errors", "approx"), pair("served_p99_ms", "ms"), f["served_source"]])
    return rows


def _headline(result: RolloutResult) -> str:
    stable = result.stable_version or "nothing"
    return (f"{result.outcome}: {result.candidate_version} on {result.target} "
            f"({result.mode}, stable before: {stable})")


def report_markdown(result: RolloutResult) -> str:
    lines = [f"## Deploy: {_headline(result)}", "", f"**Decision:** {result.outcome}. **Why:** {result.reason}", ""]
    lines += [f"- {note}" for note in result.notes]
    if result.notes:
        lines.append("")
    if result.steps:
        headers = ["step", *(c[0] for c in STEP_COLUMNS), "result"]
        lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for step in result.steps:
            verdict = step.verdict if step.passed or step.inconclusive else "**BREACH**"
            lines.append("| " + " | ".join([_label(step), *_step_cells(step), verdict]) + " |")
        breaches = [(s, r) for s in result.steps for r in s.reasons]
        if breaches:
            lines += ["", "Breaches:", *(f"- {_label(s)}: {r}" for s, r in breaches)]
        pending = [(s, r) for s in result.steps for r in s.pending]
        if pending:
            lines += ["", "Not decided by the window:", *(f"- {_label(s)} ({s.windows} windows): {r}" for s, r in pending)]
        served = _served_rows(result)
        if served:
            lines += ["", "Served traffic per revision over each step (users' requests included):", "",
                      "| " + " | ".join(SERVED_HEADERS) + " |", "|" + "---|" * len(SERVED_HEADERS),
                      *("| " + " | ".join(row) + " |" for row in served)]
    return "\n".join(lines) + "\n"


def report_html(result: RolloutResult) -> str:
    status = "ok" if result.succeeded else "fail"  # html_report.STATUS_CLASSES keys
    top = hr.section("Decision", f"<p>{hr.badge(status, result.outcome)} {hr.escape(result.reason)}</p>",
                     *(hr.paragraph(n) for n in result.notes))
    sections = [top]
    if result.steps:
        rows = [[_label(s), *_step_cells(s), hr.badge(s.verdict)] for s in result.steps]
        headers = ["step", *(c[0] for c in STEP_COLUMNS), "result"]
        sections.append(hr.section("Steps", hr.table(headers, rows, raw_html_columns=[len(headers) - 1])))
        check_rows = []
        for s in result.steps:
            for c in s.checks:
                check_rows.append([_label(s), c["check"],
                                   c["value"], c["bound"],
                                   hr.badge("inconclusive" if c["passed"] is None else "pass" if c["passed"] else "breach"),
                                   c["detail"]])
        if check_rows:
            sections.append(hr.section("Checks", hr.table(["step", "check", "value", "bound", "result", "detail"],
                                                          check_rows, raw_html_columns=[4])))
        served = _served_rows(result)
        if served:
            sections.append(hr.section("Served traffic per revision (users' requests included)",
                                       hr.table(list(SERVED_HEADERS), served)))
        psis = {_label(s): s.figures.get("prediction_psi") for s in result.steps}
        if any(v is not None for v in psis.values()):
            bound = next((s.figures.get("psi_bound") for s in result.steps), None)
            sections.append(hr.section("Prediction PSI by step", hr.bar_chart(psis, bound=bound)))
    return hr.page(f"Deploy {result.model_name}", sections, subtitle=_headline(result))
