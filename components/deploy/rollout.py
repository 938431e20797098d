"""Progressive delivery, independent of where the model is served.

A `Target` (local processes, a KServe InferenceService, a Vertex AI endpoint) knows how to put a
model version live, at a canary share, or in shadow; an observer sends or watches traffic and
returns per-version figures; `analysis.analyse` turns the figures into a pass/fail decision. The
rollout loop here composes them:

    nothing live            → deploy the candidate at 100% ("first_deploy")
    candidate already live  → change nothing ("unchanged"): re-running a step is idempotent
    canary mode             → for each step below 100: set the canary share, observe, analyse;
                              too little evidence (too few canary requests, a figure whose
                              sampling noise exceeds its bound) extends the window, up to
                              `max_windows`; a breach rolls back (stable keeps 100%) with the
                              reason recorded; all steps pass → promote (candidate takes 100%)
    shadow mode             → the candidate receives mirrored traffic whose answers are logged,
                              never returned; analysed once; never promoted automatically

Only a breach demotes a candidate. Evidence still short after `max_windows` ends the rollout as
"inconclusive", and an error while the canary is out (it cannot start, the observation breaks, an
API is unreachable) as "aborted": in both the stable version takes 100% again and the candidate is
not judged (the registry's champion is left alone).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Protocol

# The policy (modes, steps, bounds) lives in components/common so the pipeline config can check it
# without importing deploy; re-exported here for the rollout loop and its callers.
from components.common.rollout_policy import CANARY, MODES, SHADOW, RolloutPolicy  # noqa: F401

log = logging.getLogger(__name__)

# Outcomes of one rollout.
FIRST_DEPLOY = "first_deploy"
UNCHANGED = "unchanged"
PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
SHADOW_PASSED = "shadow_passed"
SHADOW_FAILED = "shadow_failed"
INCONCLUSIVE = "inconclusive"
ABORTED = "aborted"


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """One pushed model version: `uri` is its registry version directory (saved_model/, model.onnx)."""

    model_name: str
    version: str
    uri: str


@dataclasses.dataclass(frozen=True)
class LiveState:
    """What a target serves now. canary_percent is the share of traffic the canary gets."""

    stable: ModelRef | None = None
    canary: ModelRef | None = None
    canary_percent: int = 0
    shadow: ModelRef | None = None


@dataclasses.dataclass
class VersionStats:
    """What one version did during an observation window."""

    version: str
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    predictions: list[float] = dataclasses.field(default_factory=list)
    """One number per prediction (label_kinds.scalar_prediction): the probability, the predicted
    class index or the value."""
    labels: list[float] = dataclasses.field(default_factory=list)
    """The true labels of `predictions`, in order, when the traffic was labelled (replayed eval
    rows): 0/1, class indices or values by the label kind; empty otherwise."""

    served: dict | None = None
    """What the revision served over the step so far, from a metrics provider: all its traffic,
    users' included (prometheus.RevisionFigures as a dict: requests, errors, p99_ms, window_s,
    source); None without one."""

    def merged(self, later: "VersionStats") -> "VersionStats":
        """These figures and a later window's of the same version, as one window."""
        return VersionStats(self.version, self.requests + later.requests, self.errors + later.errors,
                            self.latencies_ms + later.latencies_ms, self.predictions + later.predictions,
                            self.labels + later.labels,
                            served=later.served if later.served is not None else self.served)  # step-long query


@dataclasses.dataclass
class StepDecision:
    percent: int
    passed: bool
    reasons: list[str]
    """Every breach, in words with the figures (empty when passed)."""
    figures: dict[str, float | int | None]
    """error_rate_canary, error_rate_stable, p99_ms_canary, p99_ms_stable, p99_bound_ms,
    prediction_psi, requests_canary, requests_stable (analysis.analyse adds the bounds too)."""
    checks: list[dict] = dataclasses.field(default_factory=list)
    """One {"check", "value", "bound", "passed", "detail"} per check, for reports (may be empty);
    passed is None for a check the window's evidence could not decide."""
    pending: list[str] = dataclasses.field(default_factory=list)
    """What the window was too small to judge, in words (no breach, not a pass either)."""
    windows: int = 1

    @property
    def inconclusive(self) -> bool:
        return not self.reasons and bool(self.pending)

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "inconclusive" if self.inconclusive else "breach"


@dataclasses.dataclass
class RolloutResult:
    target: str
    model_name: str
    mode: str
    candidate_version: str
    stable_version: str | None
    outcome: str
    reason: str
    steps: list[StepDecision] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    """What else was done around the rollout (e.g. the previous version deployed first as stable)."""

    @property
    def succeeded(self) -> bool:
        return self.outcome in (FIRST_DEPLOY, UNCHANGED, PROMOTED, SHADOW_PASSED)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"succeeded": self.succeeded}


class Target(Protocol):
    """Where models are served. Every method is idempotent: calling it again with the same
    arguments leaves the serving state as it is."""

    name: str

    def live(self) -> LiveState: ...

    def deploy(self, model: ModelRef) -> None:
        """Serve `model` to 100% of traffic with no canary (first deploy)."""

    def set_canary(self, model: ModelRef, percent: int) -> None:
        """Serve `model` to `percent`% of traffic beside the stable version."""

    def promote(self, model: ModelRef) -> None:
        """The canary takes 100% of traffic and replaces the stable version."""

    def rollback(self) -> None:
        """The stable version takes 100% again; the canary gets no traffic and is removed."""

    def start_shadow(self, model: ModelRef) -> None:
        """`model` receives a mirror of the traffic; its answers are logged, never returned."""

    def stop_shadow(self) -> None: ...


# observe(percent) → figures for the stable version and the candidate over one window.
Observer = Callable[[int], tuple[VersionStats, VersionStats]]
Analyse = Callable[[int, VersionStats, VersionStats, RolloutPolicy], StepDecision]


def rollout(target: Target, candidate: ModelRef, policy: RolloutPolicy, observe: Observer,
            analyse: Analyse, progress: Callable[[str], None] = log.info) -> RolloutResult:
    """Take `candidate` live on `target` under `policy`; see the module docstring."""
    live = target.live()
    stable = live.stable

    def result(outcome: str, reason: str, steps: list[StepDecision] | None = None) -> RolloutResult:
        progress(f"{target.name}: {outcome}: {reason}")
        return RolloutResult(target=target.name, model_name=candidate.model_name, mode=policy.mode,
                             candidate_version=candidate.version,
                             stable_version=stable.version if stable else None,
                             outcome=outcome, reason=reason, steps=steps or [])

    if stable is None:
        target.deploy(candidate)
        return result(FIRST_DEPLOY, f"nothing was live: {candidate.version} serves 100% of traffic")
    if stable.version == candidate.version:
        if live.canary is not None:  # a half-finished rollout of another version: end it safely
            target.rollback()
            return result(UNCHANGED, f"{candidate.version} is already stable; the canary "
                                     f"{live.canary.version} was rolled back")
        return result(UNCHANGED, f"{candidate.version} is already live at 100%")

    steps: list[StepDecision] = []
    if policy.mode == SHADOW:
        try:
            target.start_shadow(candidate)
            try:
                decision = analyse(0, *observe(0), policy)
            finally:
                target.stop_shadow()
        except Exception as exc:  # the stable version never stopped serving; say what broke
            return result(ABORTED, f"shadow: {type(exc).__name__}: {exc}", steps)
        steps.append(decision)
        if decision.passed:
            return result(SHADOW_PASSED, "shadow analysis passed; the stable version still serves 100%", steps)
        if decision.inconclusive:
            return result(INCONCLUSIVE, "shadow: " + "; ".join(decision.pending), steps)
        return result(SHADOW_FAILED, "; ".join(decision.reasons), steps)

    for percent in policy.steps:
        if percent == 100:
            break
        try:
            target.set_canary(candidate, percent)
            decision = _judge_step(percent, observe, analyse, policy, progress, target.name)
        except Exception as exc:
            # A canary that cannot start, or an observation that breaks, is no evidence against the
            # candidate: take it out of traffic, leave its standing alone, say what broke.
            target.rollback()
            return result(ABORTED, f"at {percent}%: {type(exc).__name__}: {exc}", steps)
        except BaseException:  # KeyboardInterrupt/SystemExit: leave the stable serving alone
            target.rollback()
            raise
        steps.append(decision)
        progress(f"{target.name}: canary {candidate.version} at {percent}%: {decision.verdict.upper()}"
                 + (": " + "; ".join(decision.reasons or decision.pending) if not decision.passed else ""))
        if decision.inconclusive:
            target.rollback()
            return result(INCONCLUSIVE, f"at {percent}% after {decision.windows} windows: "
                          + "; ".join(decision.pending), steps)
        if not decision.passed:
            target.rollback()
            return result(ROLLED_BACK, f"at {percent}%: " + "; ".join(decision.reasons), steps)
    target.promote(candidate)
    return result(PROMOTED, f"every step passed; {candidate.version} replaced {stable.version}", steps)


def _judge_step(percent: int, observe: Observer, analyse: Analyse, policy: RolloutPolicy,
                progress: Callable[[str], None], where: str) -> StepDecision:
    """Observe and analyse one step, extending the window while the evidence is inconclusive."""
    stable_stats, canary_stats = observe(percent)
    decision = analyse(percent, stable_stats, canary_stats, policy)
    windows = 1
    while decision.inconclusive and windows < policy.max_windows:
        progress(f"{where}: {percent}% inconclusive after {windows} window(s) ({'; '.join(decision.pending)}): "
                 "extending the window")
        more_stable, more_canary = observe(percent)
        stable_stats, canary_stats = stable_stats.merged(more_stable), canary_stats.merged(more_canary)
        decision = analyse(percent, stable_stats, canary_stats, policy)
        windows += 1
    decision.windows = windows
    return decision
