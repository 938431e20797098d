"""Per-deployed-model figures from Cloud Monitoring on Vertex AI: what each DeployedModel of an
endpoint served over an analysis window, users' traffic included. Vertex's counterpart of the
Knative queue-proxy metrics that prometheus.py reads on KServe; the same RevisionFigures come out,
so analysis.analyse judges them alike.

Metrics (monitored resource `aiplatform.googleapis.com/Endpoint`, resource label `endpoint_id`,
metric label `deployed_model_id`):
  prediction/online/response_count        DELTA INT64 per `response_code`: requests, 5xx
  prediction/online/prediction_latencies  DELTA DISTRIBUTION (ms): p99 from the summed histogram
Vertex samples them every 60 s and a sample can take up to 180 s more to be readable, so a window
here is minutes, not seconds: DeployConfig.scrape_interval_s (how long each window waits for its
last requests) should be at least 240 on this provider. The caller needs monitoring.timeSeries.list
(roles/monitoring.viewer) in the endpoint's project.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from components.deploy.prometheus import RevisionFigures

PREFIX = "aiplatform.googleapis.com/prediction/online/"
RESPONSE_COUNT = PREFIX + "response_count"
LATENCIES = PREFIX + "prediction_latencies"
RESOURCE_TYPE = "aiplatform.googleapis.com/Endpoint"


class CloudMonitoringError(RuntimeError):
    """The Monitoring API failed or answered series this provider cannot read."""


def filters(endpoint_id: str, deployed_model_id: str) -> dict[str, str]:
    """The time-series filters behind RevisionFigures (also what a reviewer can paste into the
    Metrics Explorer)."""
    scope = (f'resource.type = "{RESOURCE_TYPE}" AND resource.labels.endpoint_id = "{endpoint_id}" '
             f'AND metric.labels.deployed_model_id = "{deployed_model_id}"')
    return {
        "requests": f'metric.type = "{RESPONSE_COUNT}" AND {scope}',
        "errors": f'metric.type = "{RESPONSE_COUNT}" AND {scope} '
                  'AND metric.labels.response_code = monitoring.regex.full_match("5..")',
        "latencies": f'metric.type = "{LATENCIES}" AND {scope}',
    }


def bucket_bounds(options: Any, n: int) -> list[tuple[float, float]]:
    """(lower, upper) of each of a Distribution's n buckets (underflow and overflow included)."""
    kind = options.WhichOneof("options")
    if kind == "explicit_buckets" and options.explicit_buckets.bounds:
        edges = list(options.explicit_buckets.bounds)
    elif kind == "exponential_buckets":
        e = options.exponential_buckets
        edges = [e.scale * e.growth_factor ** i for i in range(e.num_finite_buckets + 1)]
    elif kind == "linear_buckets":
        lin = options.linear_buckets
        edges = [lin.offset + lin.width * i for i in range(lin.num_finite_buckets + 1)]
    else:
        raise CloudMonitoringError(f"a latency distribution without bucket bounds ({kind})")
    bounds = [(-math.inf, edges[0]), *zip(edges[:-1], edges[1:]), (edges[-1], math.inf)]
    return bounds[:n]


def histogram_quantile(q: float, bounds: list[tuple[float, float]], counts: list[int]) -> float | None:
    """Prometheus' histogram_quantile: linear inside the bucket holding rank q * total; the
    overflow bucket answers its lower bound, the underflow bucket its upper bound."""
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen = q * total, 0.0
    for (lower, upper), count in zip(bounds, counts):
        if count and seen + count >= rank:
            if math.isinf(upper):
                return lower
            if math.isinf(lower):
                return upper
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return bounds[len(counts) - 1][0]


class CloudMonitoringProvider:
    """`figures(deployed_model_id, window_s)` for one endpoint, from monitoring_v3's
    MetricServiceClient (`client`: tests pass an autospec'd one)."""

    def __init__(self, project: str, endpoint_id: str, client: Any = None,
                 clock: Callable[[], float] = time.time):
        self.project, self.endpoint_id, self.clock = project, endpoint_id, clock
        if client is None:
            from google.cloud import monitoring_v3

            client = monitoring_v3.MetricServiceClient()
        self.client = client

    @property
    def source(self) -> str:
        return f"cloud monitoring projects/{self.project} endpoint {self.endpoint_id}"

    def _series(self, filter_: str, window_s: int) -> list:
        from google.cloud import monitoring_v3

        end = self.clock()
        interval = monitoring_v3.TimeInterval(end_time={"seconds": int(end)},
                                              start_time={"seconds": int(end) - int(window_s)})
        # One point per series over the whole window, summed across replicas (and response codes).
        aggregation = monitoring_v3.Aggregation(
            alignment_period={"seconds": int(window_s)},
            per_series_aligner=monitoring_v3.Aggregation.Aligner.ALIGN_DELTA,
            cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
        )
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.project}", filter=filter_, interval=interval, aggregation=aggregation,
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL)
        try:
            return list(self.client.list_time_series(request=request))
        except Exception as exc:  # noqa: BLE001 - google.api_core errors and transport failures alike
            raise CloudMonitoringError(f"listing time series in projects/{self.project} failed: {exc} "
                                       f"({filter_})") from exc

    def _count(self, filter_: str, window_s: int) -> float:
        return float(sum(p.value.int64_value or p.value.double_value
                         for s in self._series(filter_, window_s) for p in s.points))

    def _p99(self, filter_: str, window_s: int) -> float | None:
        """p99 of the window's latency histograms summed over the series (replicas). bucket_counts
        may leave trailing zero buckets out, so they are summed padded."""
        options, counts = None, []
        for series in self._series(filter_, window_s):
            for point in series.points:
                dist = point.value.distribution_value
                if not dist.count:
                    continue
                if options is None:
                    options = dist.bucket_options
                elif dist.bucket_options != options:
                    raise CloudMonitoringError("latency distributions with different buckets in one window")
                these = list(dist.bucket_counts)
                width = max(len(counts), len(these))
                counts = [a + b for a, b in zip(counts + [0] * (width - len(counts)), these + [0] * (width - len(these)))]
        if options is None:
            return None
        return histogram_quantile(0.99, bucket_bounds(options, len(counts)), counts)

    def figures(self, deployed_model_id: str, window_s: int) -> RevisionFigures:
        queries = filters(self.endpoint_id, deployed_model_id)
        return RevisionFigures(revision=deployed_model_id, requests=self._count(queries["requests"], window_s),
                               errors=self._count(queries["errors"], window_s),
                               p99_ms=self._p99(queries["latencies"], window_s), window_s=window_s,
                               source=self.source)
