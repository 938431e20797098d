"""A real Prometheus (Debian's `prometheus`, on loopback; `make test` installs it) scrapes the
local splitter, and the provider's PromQL reads each revision's requests, errors and p99 back."""

from __future__ import annotations

import threading
import time

import pytest

from components.common import names
from components.deploy import analysis, local_prometheus
from components.deploy.local import Backend, Routes, Splitter, free_port
from components.deploy.local_prometheus import LocalPrometheus
from components.deploy.prometheus import PrometheusError, ServedMetricsObserver, queries
from components.deploy.rollout import PROMOTED, ROLLED_BACK, LiveState, ModelRef, RolloutPolicy, VersionStats, rollout
from components.deploy.tests.fakes import BASE, V1, V2, FakeTarget
from components.deploy.tests.test_splitter import FakeBackends, backends, post, splitter  # noqa: F401 - fixtures

SCRAPE_S = 1


@pytest.fixture
def prometheus(tmp_path, splitter):
    assert local_prometheus.binary(), "no prometheus binary: `make prometheus` installs Debian's package"
    server = LocalPrometheus(f"127.0.0.1:{splitter.port}", tmp_path / "prometheus", free_port(),
                             scrape_interval_s=SCRAPE_S).start()
    try:
        yield server.wait_ready(timeout_s=30)
    finally:
        server.stop()


def wait_scrapes(n: int = 2) -> None:
    time.sleep(n * SCRAPE_S + 0.5)


def test_per_revision_figures_from_a_real_prometheus(splitter, backends, prometheus):  # noqa: F811
    dead = Backend(key="dead-key", version="v9", url=f"http://127.0.0.1:{free_port()}")
    splitter.set_routes(Routes(stable=backends.backend("v1"), canary=dead, percent=50))
    # Series exist (and are scraped at their starting value) before the measured traffic.
    while not {post(splitter.url, f"w{i}")[0] for i in range(20)} >= {200, 502}:
        pass
    wait_scrapes()
    statuses = [post(splitter.url, f"p{i}")[0] for i in range(200)]
    wait_scrapes()
    stable, canary = prometheus.figures("v1", window_s=30), prometheus.figures("v9", window_s=30)
    # increase() extrapolates to the window's edges: counts are close, not exact.
    assert stable.requests == pytest.approx(statuses.count(200), rel=0.5)
    assert canary.requests == pytest.approx(statuses.count(502), rel=0.5)
    assert stable.error_rate == 0 and canary.error_rate == pytest.approx(1.0, abs=0.01)
    assert stable.p99_ms is not None and 0 < stable.p99_ms <= 1000
    assert stable.source == f"prometheus {prometheus.url}"
    nothing = prometheus.figures("never-deployed", window_s=30)
    assert (nothing.requests, nothing.error_rate, nothing.p99_ms) == (0.0, None, None)


def test_a_broken_query_is_an_error_not_a_zero(prometheus):
    with pytest.raises(PrometheusError):
        prometheus.query("sum(")
    assert set(queries("r", 60)) == {"requests", "errors", "p99_ms"}


class SplitterTarget(FakeTarget):
    """A rollout Target whose traffic moves on the real splitter (versions are backend names)."""

    def __init__(self, splitter: Splitter, fake, stable: ModelRef):
        super().__init__(LiveState(stable=stable))
        self.splitter, self.fake = splitter, fake
        self._route()

    def _backend(self, model: ModelRef | None) -> Backend | None:
        return None if model is None else Backend(key=model.version, version=model.version,
                                                  url=f"http://127.0.0.1:{self.fake.ports[model.version]}")

    def _route(self) -> None:
        self.splitter.set_routes(Routes(stable=self._backend(self.state.stable), canary=self._backend(self.state.canary),
                                        percent=self.state.canary_percent))

    def set_canary(self, model, percent):
        super().set_canary(model, percent)
        self._route()

    def promote(self, model):
        super().promote(model)
        self._route()

    def rollback(self):
        super().rollback()
        self._route()


def replay_observer(splitter: Splitter, requests: int):
    """Replayed (marked) requests through the splitter, figures per version from its records."""
    counter = iter(range(10**6))

    def observe(percent: int) -> tuple[VersionStats, VersionStats]:
        target_live = observe.target.live()
        ids = {f"replay-{next(counter)}" for _ in range(requests)}
        for request_id in ids:
            post(splitter.url, request_id, {names.SYNTHETIC_TRAFFIC_HEADER: "replay"})
        stats = {}
        for model in (target_live.stable, target_live.canary):
            mine = [r for r in splitter.records(ids) if r.version == model.version]
            stats[model.version] = VersionStats(model.version, requests=len(mine), errors=sum(not r.ok for r in mine),
                                                latencies_ms=[r.latency_ms for r in mine if r.ok],
                                                predictions=BASE[: 8 * len(mine)].tolist())
        return stats[target_live.stable.version], stats[target_live.canary.version]

    return observe


@pytest.mark.parametrize(("fail_unmarked", "outcome"), [(frozenset(), PROMOTED), (frozenset({V2.version}), ROLLED_BACK)])
def test_a_canary_broken_only_on_users_traffic_is_rolled_back(splitter, prometheus, fail_unmarked, outcome):
    fake = FakeBackends({V1.version: 0.3, V2.version: 0.3}, fail_unmarked=fail_unmarked)
    users_done = threading.Event()

    def users() -> None:  # unmarked traffic, as users send it
        n = 0
        while not users_done.is_set():
            post(splitter.url, f"user-{n}")
            n += 1
            time.sleep(0.01)

    thread = threading.Thread(target=users, daemon=True)
    try:
        target = SplitterTarget(splitter, fake, V1)
        thread.start()
        inner = replay_observer(splitter, requests=80)
        inner.target = target
        observer = ServedMetricsObserver(inner, prometheus, scrape_interval_s=SCRAPE_S + 1)
        policy = RolloutPolicy(steps=(50, 100), requests_per_step=80, min_requests=20, max_windows=2)
        result = rollout(target, V2, policy, observer, analysis.analyse, lambda line: None)
    finally:
        users_done.set()
        thread.join(10)
        fake.close()
    assert result.outcome == outcome, result.reason
    step = result.steps[0]
    assert step.figures["served_source"] == f"prometheus {prometheus.url}"
    assert step.figures["errors_canary"] == 0  # the replayed requests alone see nothing wrong
    served_check = next(c for c in step.checks if c["check"] == analysis.CHECK_SERVED_ERRORS)
    if outcome == ROLLED_BACK:
        assert served_check["passed"] is False and served_check["value"] > 0.2
        assert any("served traffic" in reason for reason in step.reasons)
        assert target.state.canary is None and target.state.stable == V1
    else:
        assert served_check["passed"] is True and step.figures["served_errors_canary"] == 0
