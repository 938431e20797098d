"""Per-revision figures from Prometheus: what each revision served over an analysis window, read
from Knative queue-proxy's metrics on a cluster and from the local splitter's /metrics
(components/deploy/revision_metrics.py, the same names and labels) here.

Only the HTTP query API (`/api/v1/query`) is used, so any Prometheus-compatible store answers
(Prometheus, Thanos, Google Managed Prometheus's frontend)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
import urllib.parse
import urllib.request

from components.deploy.revision_metrics import COUNT, LATENCIES
from components.deploy.rollout import Observer, VersionStats


class PrometheusError(RuntimeError):
    """The query API failed or answered something other than a vector."""


@dataclasses.dataclass(frozen=True)
class RevisionFigures:
    revision: str
    requests: float
    errors: float
    p99_ms: float | None
    """None when the revision served nothing in the window."""
    window_s: int
    source: str

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def queries(revision: str, window_s: int) -> dict[str, str]:
    """The PromQL behind RevisionFigures (also what a reviewer can paste into Prometheus)."""
    selector = f'revision_name="{revision}"'
    window = f"[{int(window_s)}s]"
    return {
        "requests": f"sum(increase({COUNT}{{{selector}}}{window}))",
        "errors": f'sum(increase({COUNT}{{{selector},response_code_class="5xx"}}{window}))',
        "p99_ms": f"histogram_quantile(0.99, sum by (le) (rate({LATENCIES}_bucket{{{selector}}}{window})))",
    }


class PrometheusProvider:
    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, promql: str) -> float | None:
        """A scalar from an instant query: the single sample's value, None for an empty vector."""
        request = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"query failed at {self.url}: {exc} ({promql})") from exc
        if body.get("status") != "success" or body["data"]["resultType"] != "vector":
            raise PrometheusError(f"unexpected answer from {self.url} for {promql}: {body}")
        result = body["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def figures(self, revision: str, window_s: int) -> RevisionFigures:
        values = {name: self.query(q) for name, q in queries(revision, window_s).items()}
        return RevisionFigures(revision=revision, requests=values["requests"] or 0.0, errors=values["errors"] or 0.0,
                               p99_ms=values["p99_ms"], window_s=window_s, source=f"prometheus {self.url}")


class ServedMetricsObserver:
    """An `rollout.Observer` around another (the replay): after each window it adds what each
    revision served since its step began, users' traffic included, from Prometheus
    (`VersionStats.served`), which `analysis.analyse` judges beside the replayed answers. The
    query covers the whole step (windows accumulate) plus one scrape interval, after waiting that
    interval so the window's last requests are scraped. `revision_of` maps a version to its
    revision label (identity for the local splitter; KServe names revisions <isvc>-predictor-NNNNN)."""

    def __init__(self, inner: Observer, provider: PrometheusProvider, scrape_interval_s: float,
                 revision_of: Callable[[str], str] = lambda version: version,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.inner, self.provider, self.scrape_interval_s = inner, provider, scrape_interval_s
        self.revision_of, self.clock, self.sleep = revision_of, clock, sleep
        self._percent: int | None = None
        self._step_started = 0.0

    def __call__(self, percent: int) -> tuple[VersionStats, VersionStats]:
        if percent != self._percent:
            self._percent, self._step_started = percent, self.clock()
        stable, canary = self.inner(percent)
        self.sleep(self.scrape_interval_s)
        window_s = math.ceil(self.clock() - self._step_started + self.scrape_interval_s)
        for stats in (stable, canary):
            stats.served = dataclasses.asdict(self.provider.figures(self.revision_of(stats.version), window_s))
        return stable, canary
