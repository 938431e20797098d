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

Per label kind (`PredictionKind`, from the versions' model_info.json): every figure is on the
kind's scalar prediction (label_kinds.scalar_prediction; the observers reduce each answer to it):
binary the probability, as above; multiclass the predicted class, PSI over one bin per class and
live accuracy in place of AUC (the same margin, `max_auc_drop`, in accuracy points); regression the
value, PSI over the stable's quantile bins and live mean absolute error in place of AUC (the
candidate's MAE <= the stable's × (1 + `max_auc_drop`) + the difference's noise). A stable that
serves another kind than the candidate cannot be compared on predictions: a breach.

Percent 0 is the shadow step: the candidate saw mirrored traffic; the words say "shadow".
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from components.common import drift
from components.common import html_report as hr
from components.common import io as fio
from components.common import label_kinds, names
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
CHECK_ACCURACY = "live accuracy vs stable"
CHECK_MAE = "live MAE vs stable"


@dataclasses.dataclass(frozen=True)
class PredictionKind:
    """What the two versions predict: the candidate's label kind and class count, and the stable's
    kind when it differs (their predictions then cannot be compared)."""

    kind: str = label_kinds.BINARY
    n_classes: int = 0
    stable_kind: str = ""

    @property
    def comparable(self) -> bool:
        return not self.stable_kind or self.stable_kind == self.kind


def _model_info(version_dir: str) -> dict | None:
    path = fio.join(version_dir, names.MODEL_INFO_FILE)
    return fio.read_json(path) if version_dir and fio.exists(path) else None


def label_kind_of(version_dir: str) -> tuple[str, int]:
    """(label kind, number of classes) from a version's model_info.json; without "label_kind"
    (or without the file) binary, as versions before label kinds."""
    info = _model_info(version_dir) or {}
    kind = label_kinds.check_kind(info.get("label_kind") or label_kinds.BINARY)
    return kind, len(info.get("classes") or []) if kind == label_kinds.MULTICLASS else 0


def prediction_kind(candidate_dir: str, stable_dir: str | None = None) -> PredictionKind:
    """The candidate's kind; the stable's too when its model_info.json can be read (a target may
    name the stable by a location without it: then it is taken to be the candidate's)."""
    kind, n_classes = label_kind_of(candidate_dir)
    stable_info = _model_info(stable_dir) if stable_dir else None
    stable_kind = (stable_info.get("label_kind") or label_kinds.BINARY) if stable_info is not None else kind
    return PredictionKind(kind, n_classes, "" if stable_kind == kind else stable_kind)


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


def accuracy_with_error(labels: list, predicted: list[float]) -> tuple[float, float] | None:
    """Share of predicted classes equal to the labels, and its binomial standard error."""
    if not labels:
        return None
    accuracy = float(np.mean(np.asarray(predicted[:len(labels)]) == np.asarray(labels, dtype=np.float64)))
    return accuracy, math.sqrt(accuracy * (1 - accuracy) / len(labels))


def mae_with_error(labels: list, values: list[float]) -> tuple[float, float] | None:
    """Mean absolute error and its standard error (sd of the absolute errors / sqrt n)."""
    if len(labels) < 2:
        return None
    errors = np.abs(np.asarray(values[:len(labels)], dtype=np.float64) - np.asarray(labels, dtype=np.float64))
    return float(errors.mean()), float(errors.std(ddof=1) / math.sqrt(errors.size))


def p99(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.percentile(finite, 99)) if finite else None


def _rate(stats: VersionStats) -> float | None:
    return stats.errors / stats.requests if stats.requests else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def analyse(percent: int, stable: VersionStats, canary: VersionStats, policy: RolloutPolicy,
            prediction: PredictionKind = PredictionKind()) -> StepDecision:
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
    if enough and canary.predictions and not prediction.comparable:
        check(CHECK_SHIFT, None, policy.max_prediction_psi, False,
              f"prediction PSI: the stable serves a {prediction.stable_kind} model, the {who} a "
              f"{prediction.kind} one: their predictions cannot be compared")
    elif enough and canary.predictions:
        if not stable.predictions:
            check(CHECK_SHIFT, None, policy.max_prediction_psi, False,
                  f"prediction PSI: no stable predictions in the window to compare the {who}'s "
                  f"{len(canary.predictions)} with")
        else:
            try:
                edges = drift.prediction_edges(prediction.kind, stable.predictions, prediction.n_classes)
                psi = drift.psi(stable.predictions, canary.predictions, edges=edges)
                bins = len(edges) + 1
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

    # Live quality on labelled traffic: each version on its own share of the window.
    quality: dict = {}
    labelled = min(len(canary.labels), len(stable.labels))
    if enough and labelled >= policy.min_labelled and prediction.comparable:
        quality = _live_quality(prediction.kind, stable, canary, policy, who, check)
    auc_s, auc_c, auc_bound = (quality.get(k) for k in ("stable", "canary", "bound")) \
        if prediction.kind == label_kinds.BINARY else (None, None, None)

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
    if prediction.kind != label_kinds.BINARY:  # binary's figures stay as they were
        name = QUALITY_FIGURES[prediction.kind]
        figures.update({"label_kind": prediction.kind, f"{name}_stable": quality.get("stable"),
                        f"{name}_canary": quality.get("canary"), f"{name}_bound": quality.get("bound")})
    for role, stats in (("stable", stable), ("canary", canary)):
        if stats.served is not None:  # each step's served figures name their source in result.json
            figures.update({f"served_requests_{role}": stats.served["requests"],
                            f"served_errors_{role}": stats.served["errors"],
                            f"served_p99_ms_{role}": stats.served["p99_ms"]})
            figures["served_source"] = stats.served["source"]
            figures["served_window_s"] = stats.served["window_s"]
    return StepDecision(percent=percent, passed=not reasons and not pending, reasons=reasons, figures=figures,
                        checks=checks, pending=pending)


QUALITY_FIGURES = {label_kinds.BINARY: "auc", label_kinds.MULTICLASS: "accuracy", label_kinds.REGRESSION: "mae"}


def _live_quality(kind: str, stable: VersionStats, canary: VersionStats, policy: RolloutPolicy, who: str,
                  check) -> dict:
    """The kind's live quality check (AUC, accuracy, MAE) on labelled predictions; its figures."""
    measure = {label_kinds.BINARY: auc_with_error, label_kinds.MULTICLASS: accuracy_with_error,
               label_kinds.REGRESSION: mae_with_error}[kind]
    measured_s = measure(stable.labels, stable.predictions[:len(stable.labels)])
    measured_c = measure(canary.labels, canary.predictions[:len(canary.labels)])
    if not (measured_s and measured_c):
        return {}
    (value_s, se_s), (value_c, se_c) = measured_s, measured_c
    noise = drift.normal_quantile(policy.noise_quantile) * math.hypot(se_s, se_c)
    on = f"of the {who} on {len(canary.labels)} labelled predictions"
    if kind == label_kinds.REGRESSION:  # lower is better: a bound above the stable's error
        bound = value_s * (1 + policy.max_auc_drop) + noise
        passed = value_c <= bound
        check(CHECK_MAE, value_c, bound, passed,
              f"live MAE {value_c:.4g} {on} {'>' if not passed else '<='} bound {bound:.4g} (stable {value_s:.4g} "
              f"on {len(stable.labels)} × (1 + {policy.max_auc_drop:g} max_auc_drop) + {noise:.4g} noise)")
    else:
        bound = value_s - policy.max_auc_drop - noise
        passed = value_c >= bound
        name, title = (CHECK_QUALITY, "AUC") if kind == label_kinds.BINARY else (CHECK_ACCURACY, "accuracy")
        check(name, value_c, bound, passed,
              f"live {title} {value_c:.3f} {on} {'<' if not passed else '>='} bound {bound:.3f} (stable "
              f"{value_s:.3f} on {len(stable.labels)} - {policy.max_auc_drop:g} max_auc_drop - {noise:.3f} noise)")
    return {"stable": value_s, "canary": value_c, "bound": bound}


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
    if kind in ("psi", "auc", "accuracy"):
        return f"{value:.3f}"
    if kind == "mae":
        return f"{value:.4g}"
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
QUALITY_TITLES = {"auc": "AUC", "accuracy": "accuracy", "mae": "MAE"}


def step_columns(result: RolloutResult) -> tuple:
    """STEP_COLUMNS with the live quality columns of the rollout's label kind (binary: AUC)."""
    kind = next((s.figures.get("label_kind") for s in result.steps if s.figures.get("label_kind")),
                label_kinds.BINARY)
    name = QUALITY_FIGURES[kind]
    title = QUALITY_TITLES[name]
    return (*STEP_COLUMNS[:-2], (f"live {title} canary", f"{name}_canary", f"{name}_bound", name),
            (f"live {title} stable", f"{name}_stable", None, name))


def _step_cells(step: StepDecision, columns: tuple = STEP_COLUMNS) -> list[str]:
    f = step.figures
    cells = [f"{f.get('requests_stable', '—')} / {f.get('requests_canary', '—')}"]
    for _, figure, bound, kind in columns[1:]:
        text = _fmt(f.get(figure), kind)
        if bound is not None and f.get(figure) is not None:
            text += f" ({'≥' if kind in ('auc', 'accuracy') else '≤'} {_fmt(f.get(bound), kind)})"
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
        columns = step_columns(result)
        headers = ["step", *(c[0] for c in columns), "result"]
        lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for step in result.steps:
            verdict = step.verdict if step.passed or step.inconclusive else "**BREACH**"
            lines.append("| " + " | ".join([_label(step), *_step_cells(step, columns), verdict]) + " |")
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
        columns = step_columns(result)
        rows = [[_label(s), *_step_cells(s, columns), hr.badge(s.verdict)] for s in result.steps]
        headers = ["step", *(c[0] for c in columns), "result"]
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
