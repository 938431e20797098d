"""Cloud Monitoring as the Vertex target's metrics provider. No Monitoring API can run here: the
client is an autospec'd monitoring_v3.MetricServiceClient answering real monitoring_v3.TimeSeries
protos (the metric and resource types and labels Vertex AI exports), so a field or enum that does
not exist cannot appear. What is checked: the requests it sends (filters, window, aggregation),
its reading of counts and latency histograms, and its wiring into the Vertex target's observer."""

from __future__ import annotations

from unittest import mock

import pytest
from google.api import distribution_pb2
from google.cloud import monitoring_v3

from components.deploy import cloud_monitoring as cm
from components.deploy import deploy
from components.deploy.prometheus import ServedMetricsObserver
from components.deploy.tests.test_vertex import CANARY_ID, ROWS, STABLE_ID, V1, V2, make, shaped_endpoint

ENDPOINT_ID = "4321098765432109876"
NOW = 1_764_000_000
# Vertex's latency buckets are exponential; these are made up but of the same kind.
BUCKETS = distribution_pb2.Distribution.BucketOptions(
    exponential_buckets=distribution_pb2.Distribution.BucketOptions.Exponential(
        num_finite_buckets=10, growth_factor=2.0, scale=1.0))


def series(metric: str, deployed_model_id: str, value: dict, **labels) -> monitoring_v3.TimeSeries:
    kind = monitoring_v3.TimeSeries
    return kind(metric={"type": metric, "labels": {"deployed_model_id": deployed_model_id, **labels}},
                resource={"type": cm.RESOURCE_TYPE,
                          "labels": {"endpoint_id": ENDPOINT_ID, "location": "us-central1",
                                     "resource_container": "projects/123"}},
                metric_kind="DELTA", value_type="DISTRIBUTION" if "distribution_value" in value else "INT64",
                points=[{"interval": {"start_time": {"seconds": NOW - 300}, "end_time": {"seconds": NOW}},
                         "value": value}])


def latency(counts: list[int]) -> dict:
    return {"distribution_value": distribution_pb2.Distribution(count=sum(counts), bucket_options=BUCKETS,
                                                                bucket_counts=counts)}


class FakeMonitoring:
    """What Cloud Monitoring would answer for one endpoint: per deployed model, requests by response
    code on two replicas, and a latency histogram per replica."""

    def __init__(self, served: dict[str, dict]):
        self.served = served
        self.requests: list[monitoring_v3.ListTimeSeriesRequest] = []
        self.client = mock.create_autospec(monitoring_v3.MetricServiceClient, instance=True)
        self.client.list_time_series.side_effect = self.list_time_series

    def list_time_series(self, request):
        self.requests.append(request)
        deployed = request.filter.split('deployed_model_id = "')[1].split('"')[0]
        figures = self.served.get(deployed)
        if figures is None:
            return []
        if cm.LATENCIES in request.filter:
            return [series(cm.LATENCIES, deployed, latency(c)) for c in figures["latency_counts"]]
        codes = {"500": figures["errors"]} if "5.." in request.filter else {"200": figures["ok"], "500": figures["errors"]}
        return [series(cm.RESPONSE_COUNT, deployed, {"int64_value": n // 2 + (n % 2) * (replica == 0)},
                       response_code=code)
                for code, n in codes.items() for replica in (0, 1)]


def test_histogram_quantile_interpolates_inside_the_bucket_like_prometheus():
    explicit = distribution_pb2.Distribution.BucketOptions(
        explicit_buckets=distribution_pb2.Distribution.BucketOptions.Explicit(bounds=[0, 10, 20, 50, 100]))
    bounds = cm.bucket_bounds(explicit, 6)
    assert bounds[0][0] == float("-inf") and bounds[-1] == (100, float("inf"))
    # 100 answers: rank 99 falls in [50, 100), which holds answers 99 and 100
    assert cm.histogram_quantile(0.99, bounds, [0, 50, 40, 8, 2, 0]) == pytest.approx(75.0)
    assert cm.histogram_quantile(0.99, bounds, [0, 0, 0, 0, 0, 3]) == 100  # overflow: its lower bound
    assert cm.histogram_quantile(0.99, bounds, [0, 0, 0, 0, 0, 0]) is None
    # exponential: edges 1, 2, 4, ..., 1024; a truncated bucket_counts (trailing zeros left out) reads alike
    assert cm.bucket_bounds(BUCKETS, 12)[1:3] == [(1.0, 2.0), (2.0, 4.0)]
    assert cm.histogram_quantile(0.5, cm.bucket_bounds(BUCKETS, 4), [0, 0, 10, 10]) == pytest.approx(4.0)


def test_figures_per_deployed_model_from_the_monitoring_api():
    fake = FakeMonitoring({CANARY_ID: {"ok": 97, "errors": 3,
                                       "latency_counts": [[0, 0, 0, 0, 40, 9, 1], [0, 0, 0, 0, 45, 5]]}})
    provider = cm.CloudMonitoringProvider("my-project", ENDPOINT_ID, client=fake.client, clock=lambda: NOW + 0.7)
    figures = provider.figures(CANARY_ID, window_s=300)
    assert (figures.requests, figures.errors, figures.error_rate) == (100, 3, 0.03)
    # 100 latencies summed over the replicas: rank 99 is the 99th of [16, 32) → 16 + 16 * (99 - 85) / 14
    assert figures.p99_ms == pytest.approx(16 + 16 * (99 - 85) / 14)
    assert figures.revision == CANARY_ID and figures.window_s == 300
    assert figures.source == f"cloud monitoring projects/my-project endpoint {ENDPOINT_ID}"
    assert len(fake.requests) == 3
    for request in fake.requests:
        assert request.name == "projects/my-project"
        assert f'resource.labels.endpoint_id = "{ENDPOINT_ID}"' in request.filter
        assert f'metric.labels.deployed_model_id = "{CANARY_ID}"' in request.filter
        assert request.interval.end_time.timestamp() == NOW
        assert request.interval.end_time.timestamp() - request.interval.start_time.timestamp() == 300
        assert request.aggregation.alignment_period.total_seconds() == 300
        assert request.aggregation.per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_DELTA
        assert request.aggregation.cross_series_reducer == monitoring_v3.Aggregation.Reducer.REDUCE_SUM
    nothing = provider.figures("never-deployed", window_s=300)
    assert (nothing.requests, nothing.errors, nothing.p99_ms, nothing.error_rate) == (0, 0, None, None)


def test_an_api_failure_is_an_error_not_a_zero():
    client = mock.create_autospec(monitoring_v3.MetricServiceClient, instance=True)
    client.list_time_series.side_effect = PermissionError("403 monitoring.timeSeries.list denied")
    provider = cm.CloudMonitoringProvider("my-project", ENDPOINT_ID, client=client)
    with pytest.raises(cm.CloudMonitoringError, match="403 monitoring.timeSeries.list denied"):
        provider.figures(CANARY_ID, window_s=300)


def test_the_vertex_observer_judges_each_deployed_models_served_traffic(monkeypatch):
    """vertex_cloud_monitoring: the replay observer wrapped so each window carries what the stable
    and the canary DeployedModels served, found by their ids on the endpoint."""
    _, target = make(shaped_endpoint())  # V1 at 90% (STABLE_ID), V2 at 10% (CANARY_ID)
    assert (target.deployed_model_id(V1.version), target.deployed_model_id(V2.version)) == (STABLE_ID, CANARY_ID)
    assert target.deployed_model_id("v-not-deployed") == ""
    fake = FakeMonitoring({STABLE_ID: {"ok": 900, "errors": 0, "latency_counts": [[0, 0, 0, 900]]},
                           CANARY_ID: {"ok": 60, "errors": 40, "latency_counts": [[0, 0, 0, 100]]}})
    monkeypatch.setattr(deploy, "load_replay", lambda *args: (ROWS, None))
    config = deploy.DeployConfig(target="vertex", registry_uri="gs://r", vertex_project="my-project",
                                 vertex_region="us-central1", data="gs://r/eval.csv", requests_per_step=20,
                                 vertex_cloud_monitoring=True, scrape_interval_s=0.01)
    observer = deploy.build_observer(config, target, V2, lambda: V1.version, lambda line: None,
                                     monitoring_client=fake.client)
    assert isinstance(observer, ServedMetricsObserver)
    stable, canary = observer(10)
    assert (stable.served["requests"], stable.served["errors"]) == (900, 0)
    assert (canary.served["requests"], canary.served["errors"]) == (100, 40)
    assert canary.served["source"].startswith("cloud monitoring projects/my-project endpoint ")
    assert not deploy.DeployConfig(target="none").vertex_cloud_monitoring  # opt-in: it needs a role
    plain = deploy.build_observer(deploy.DeployConfig(target="vertex", registry_uri="gs://r", vertex_project="p",
                                                      vertex_region="r", data="gs://r/eval.csv"),
                                  target, V2, lambda: V1.version, lambda line: None)
    assert not isinstance(plain, ServedMetricsObserver)
