"""How often a rollout is wrong, simulated: 1,000 healthy canaries behind a random splitter (as
Knative's is: each request goes to the canary with the step's probability) against broken ones.

Healthy: the canary answers like the stable (same prediction, latency and label distributions, no
errors). With the old rule (too few canary requests at a step is a breach) one healthy rollout in
28 was rolled back: P(Bin(400, 0.1) < 30) = 3.6%. Now too little evidence extends the window."""

from __future__ import annotations

import numpy as np
import pytest

from components.deploy import analysis
from components.deploy.rollout import PROMOTED, ROLLED_BACK, LiveState, RolloutPolicy, VersionStats, rollout
from components.deploy.tests.fakes import V1, V2, FakeTarget

ROWS_PER_REQUEST = 8
ROLLOUTS = 1000


class RandomSplitter:
    """observe(percent): `requests_per_step` requests, each to the canary with probability percent%.
    Labelled traffic (replayed eval rows): each row's label is drawn from its true probability."""

    def __init__(self, rng: np.random.Generator, requests: int, canary_error_rate: float = 0.0,
                 canary_scores=lambda p: p):
        self.rng, self.requests = rng, requests
        self.canary_error_rate, self.canary_scores = canary_error_rate, canary_scores

    def _version(self, name: str, requests: int, error_rate: float, scores) -> VersionStats:
        errors = int(self.rng.binomial(requests, error_rate))
        answered = requests - errors
        truth = self.rng.beta(2, 5, answered * ROWS_PER_REQUEST)
        labels = (self.rng.random(truth.size) < truth).astype(int)
        return VersionStats(name, requests=requests, errors=errors,
                            latencies_ms=self.rng.lognormal(np.log(8.0), 0.3, answered).tolist(),
                            predictions=np.clip(scores(truth), 0, 1).tolist(), labels=labels.tolist())

    def __call__(self, percent: int) -> tuple[VersionStats, VersionStats]:
        canary = int(self.rng.binomial(self.requests, percent / 100))
        return (self._version("stable", self.requests - canary, 0.0, lambda p: p),
                self._version("canary", canary, self.canary_error_rate, self.canary_scores))


def outcomes(policy: RolloutPolicy, seed: int, rollouts: int, **canary) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for _ in range(rollouts):
        result = rollout(FakeTarget(LiveState(stable=V1)), V2, policy, RandomSplitter(rng, policy.requests_per_step,
                         **canary), analysis.analyse, progress=lambda _: None)
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return counts


def test_healthy_canaries_are_almost_never_rolled_back():
    counts = outcomes(RolloutPolicy(), seed=0, rollouts=ROLLOUTS)
    assert counts.get(ROLLED_BACK, 0) == 0, counts  # < 1 in 1,000
    assert counts.get(PROMOTED, 0) >= ROLLOUTS * 0.99, counts


@pytest.mark.parametrize("broken", [
    {"canary_error_rate": 0.05},                        # fails 5% of requests
    {"canary_scores": lambda p: 1 - p},                 # inverted scores: labelled traffic shows it
    {"canary_scores": lambda p: p * 0.5 + 0.4},         # squeezed and shifted scores
])
def test_broken_canaries_are_rolled_back_every_time(broken):
    counts = outcomes(RolloutPolicy(), seed=1, rollouts=200, **broken)
    assert counts == {ROLLED_BACK: 200}, counts
