"""Per-revision figures from Prometheus: what each revision served over an analysis window, read
from Knative queue-proxy's metrics on a cluster and from the local splitter's /metrics
(components/deploy/revision_metrics.py, the same names and labels) here.

Only the HTTP query API (`/api/v1/query`) is used, so any Prometheus-compatible store answers
(Prometheus, Thanos, Google Managed Prometheus's frontend)."""

from __future__ import annotations

import dataclasses
import json
import math
import urllib.parse
import urllib.request

from components.deploy.revision_metrics import COUNT, LATENCIES


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
