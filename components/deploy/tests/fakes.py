"""A fake rollout Target and scripted observers: the rollout loop and run_deploy without processes."""

from __future__ import annotations

import dataclasses

import numpy as np

from components.deploy.rollout import LiveState, ModelRef, VersionStats

V1 = ModelRef("model", "v20250101T000000Z-a", "/registry/model/versions/v20250101T000000Z-a")
V2 = ModelRef("model", "v20250102T000000Z-b", "/registry/model/versions/v20250102T000000Z-b")
BASE = np.random.default_rng(3).beta(2, 5, size=4000)


class FakeTarget:
    """Keeps a LiveState in memory like a real target would, and the calls made to it."""

    name = "fake"

    def __init__(self, live: LiveState | None = None, fail_on: str = ""):
        self.state = live or LiveState()
        self.calls: list[tuple] = []
        self.fail_on = fail_on
        self.closed = False

    def _call(self, *call) -> None:
        self.calls.append(call)
        if call[0] == self.fail_on:
            raise RuntimeError(f"{call[0]} failed: model server exited with 1")

    def live(self) -> LiveState:
        return self.state

    def deploy(self, model: ModelRef) -> None:
        self._call("deploy", model.version)
        self.state = LiveState(stable=model, shadow=self.state.shadow)

    def set_canary(self, model: ModelRef, percent: int) -> None:
        self._call("set_canary", model.version, percent)
        self.state = dataclasses.replace(self.state, canary=model, canary_percent=percent)

    def promote(self, model: ModelRef) -> None:
        self._call("promote", model.version)
        self.state = LiveState(stable=model, shadow=self.state.shadow)

    def rollback(self) -> None:
        self._call("rollback")
        self.state = dataclasses.replace(self.state, canary=None, canary_percent=0)

    def start_shadow(self, model: ModelRef) -> None:
        self._call("start_shadow", model.version)
        self.state = dataclasses.replace(self.state, shadow=model)

    def stop_shadow(self) -> None:
        self._call("stop_shadow")
        self.state = dataclasses.replace(self.state, shadow=None)

    def close(self) -> None:
        self.closed = True


def window(percent: int, total: int = 400, canary_errors: int = 0, shift: float = 0.0,
           canary_latency: float = 10.0) -> tuple[VersionStats, VersionStats]:
    """Figures of one window of `total` requests split at `percent` (0: all mirrored to a shadow)."""
    n_canary = total if percent == 0 else total * percent // 100
    n_stable = total if percent == 0 else total - n_canary
    stable = VersionStats("stable", requests=n_stable, latencies_ms=[10.0] * n_stable,
                          predictions=BASE[: n_stable * 8].tolist())
    answered = n_canary - canary_errors
    canary = VersionStats("canary", requests=n_canary, errors=canary_errors,
                          latencies_ms=[canary_latency] * answered,
                          predictions=np.clip(BASE[-answered * 8:] + shift, 0, 1).tolist() if answered else [])
    return stable, canary


class ScriptedObserver:
    """observe(percent) → window(percent, **script.get(percent, {})); records the percents asked."""

    def __init__(self, script: dict[int, dict] | None = None, raises: dict[int, BaseException] | None = None):
        self.script = script or {}
        self.raises = raises or {}
        self.asked: list[int] = []

    def __call__(self, percent: int) -> tuple[VersionStats, VersionStats]:
        self.asked.append(percent)
        if percent in self.raises:
            raise self.raises[percent]
        return window(percent, **self.script.get(percent, {}))
