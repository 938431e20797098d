"""The rollout policy: how a canary is stepped and judged. One place for its defaults; the
pipeline config, the deploy component and DeployConfig read them from here."""

from __future__ import annotations

import dataclasses

SCRAPE_INTERVAL_S = 15.0
"""The metrics store's scrape interval (Prometheus' default is 15 s): each analysis window waits
this long so its last requests are counted."""

CANARY = "canary"
SHADOW = "shadow"
MODES = (CANARY, SHADOW)


@dataclasses.dataclass(frozen=True)
class RolloutPolicy:
    mode: str = CANARY
    steps: tuple[int, ...] = (10, 50, 100)
    requests_per_step: int = 400
    """Requests observed (sent, for replay observers) before each decision."""
    min_requests: int = 30
    """Fewest requests (answered or failed) the canary must get at a step for a decision; fewer is a breach."""
    max_error_rate: float = 0.01
    """Canary error rate bound (absolute)."""
    max_p99_latency_ratio: float = 1.5
    p99_latency_slack_ms: float = 25.0
    """A canary p99 within stable p99 × ratio + slack passes: sub-millisecond noise never fails one."""
    max_prediction_psi: float = 0.2
    """PSI of the canary's predictions against the stable's over the same traffic ("act" level)."""
    max_error_rate_increase: float = 0.005
    """The canary's error rate may exceed the stable's by at most this (relative bound; both apply)."""
    max_auc_drop: float = 0.05
    """Labelled traffic only: the canary's AUC may fall short of the stable's by this, plus the
    difference's sampling noise (2.33 standard errors: one-sided 99%)."""
    min_labelled: int = 100
    """Fewest labelled predictions (with both classes) each version needs for the AUC check."""
    max_windows: int = 4
    """Observation windows a step may take while its evidence is inconclusive; the figures
    accumulate over them (a 10% step of 400 requests gives the canary Bin(400, 0.1) requests:
    fewer than 30 with probability 3.6%, and after a second window fewer than 30 of 800 almost never)."""
    noise_quantile: float = 0.9999
    """Checks on sampled figures (prediction PSI, live AUC) allow for their sampling noise at this
    quantile, so a healthy canary breaches a check by chance about 1 - q of the time per step."""

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode must be one of {MODES}, got {self.mode!r}")
        steps = tuple(self.steps)
        if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)):
            problems.append(f"steps must increase strictly within (0, 100] and end at 100, got {list(steps)}")
        if self.requests_per_step < 1 or self.min_requests < 1:
            problems.append("requests_per_step and min_requests must be >= 1")
        if not 0 <= self.max_error_rate <= 1:
            problems.append(f"max_error_rate must be in [0, 1], got {self.max_error_rate}")
        if not 0 <= self.max_error_rate_increase <= 1:
            problems.append(f"max_error_rate_increase must be in [0, 1], got {self.max_error_rate_increase}")
        if self.p99_latency_slack_ms < 0 or self.max_prediction_psi <= 0:
            problems.append("p99_latency_slack_ms must be >= 0 and max_prediction_psi > 0")
        if not 0 <= self.max_auc_drop <= 1 or self.min_labelled < 2:
            problems.append(f"max_auc_drop must be in [0, 1] and min_labelled >= 2, got {self.max_auc_drop} / "
                            f"{self.min_labelled}")
        if self.max_windows < 1 or not 0.5 <= self.noise_quantile < 1:
            problems.append(f"max_windows must be >= 1 and noise_quantile in [0.5, 1), got {self.max_windows} / "
                            f"{self.noise_quantile}")
        if self.max_p99_latency_ratio < 1:
            problems.append(f"max_p99_latency_ratio must be >= 1, got {self.max_p99_latency_ratio}")
        if problems:
            raise ValueError("invalid rollout policy: " + "; ".join(problems))
        object.__setattr__(self, "steps", steps)
