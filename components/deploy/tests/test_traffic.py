"""Replayed traffic: the V1 transport, concurrent windows and the one (fail-safe) attribution."""

import asyncio
import json

import httpx
import pytest

from components.common import names
from components.deploy.rollout import VersionStats
from components.deploy.traffic import (Answer, Batch, ReplayConfig, ReplayRows, V1Client, attribute, send_window,
                                       timed)

URL = "http://model.test/v1/models/model:predict"


def batch(i: int, labels=(0, 1)) -> Batch:
    return Batch(f"r{i}", [{"x": i}, {"x": -i}], list(labels))


def answer(i: int, version: str, ok: bool = True) -> Answer:
    return Answer(f"r{i}", ok=ok, status=200 if ok else 503, latency_ms=float(i), version=version,
                  predictions=[0.2, 0.7] if ok else [])


def test_canary_answers_go_to_the_version_they_name_and_the_unplaceable_to_the_candidate():
    batches = [batch(i) for i in range(6)]
    results = [[answer(0, "v1")], [answer(1, "v2")], [answer(2, "v1")],
               [answer(3, "v-stray")],           # a version that is neither: the candidate's error
               [answer(4, "", ok=False)],        # failed: names nothing, the candidate's error
               [answer(5, "")]]                  # a 200 naming no version: the candidate's error
    stable, candidate = VersionStats("v1"), VersionStats("v2")
    attribute(batches, results, stable, candidate)
    assert (stable.requests, stable.errors, stable.latencies_ms) == (2, 0, [0.0, 2.0])
    assert (candidate.requests, candidate.errors, candidate.latencies_ms) == (4, 3, [1.0])
    assert stable.labels == [0, 1, 0, 1] and len(stable.predictions) == 4
    assert candidate.labels == [0, 1] and candidate.predictions == [0.2, 0.7]


def test_an_absent_stable_never_matches_an_answer_naming_no_version():
    stable, candidate = VersionStats(""), VersionStats("v2")
    attribute([batch(0)], [[answer(0, "")]], stable, candidate)
    assert (stable.requests, candidate.requests, candidate.errors) == (0, 1, 1)


def test_shadow_answers_are_the_stables_first_and_the_candidates_second():
    batches = [batch(i) for i in range(3)]
    results = [[answer(0, "v1"), answer(0, "v2")],
               [answer(1, "", ok=False), answer(1, "v2")],    # the stable's own error
               [answer(2, "v1"), answer(2, "v1")]]            # the shadow answered as another version
    stable, candidate = VersionStats("v1"), VersionStats("v2")
    attribute(batches, results, stable, candidate, shadow=True)
    assert (stable.requests, stable.errors) == (3, 1)
    assert (candidate.requests, candidate.errors) == (3, 1)
    assert candidate.labels == [0, 1, 0, 1] and len(candidate.predictions) == 4


def test_labels_stay_aligned_with_predictions_after_an_unlabelled_answer():
    stable, candidate = VersionStats("v1"), VersionStats("v2")
    attribute([Batch("a", [{}, {}], None), batch(1)], [[answer(0, "v2")], [answer(1, "v2")]], stable, candidate)
    # The first answer had no labels: later labels would misalign, so none are kept.
    assert candidate.labels == [] and len(candidate.predictions) == 4


def test_the_v1_client_sends_our_headers_and_reads_the_answer():
    seen: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        rows = json.loads(request.content)["instances"]
        return httpx.Response(200, json={"predictions": [0.5] * len(rows), "model_version": "v7"})

    config = ReplayConfig(rows_per_request=2, concurrency=3)
    batches = ReplayRows([{"x": i} for i in range(5)], config).take(9)
    with V1Client(config, httpx.MockTransport(serve)) as client:
        results = send_window(batches, [client.sender(URL, {"Host": "model.example"})], config.concurrency)
    assert [r[0].request_id for r in results] == [b.request_id for b in batches], "answers in batch order"
    assert all(r[0].ok and r[0].version == "v7" and r[0].predictions == [0.5, 0.5] for r in results)
    assert sorted(r.headers["x-request-id"] for r in seen) == sorted(b.request_id for b in batches)
    assert all(r.headers[names.SYNTHETIC_TRAFFIC_HEADER] == "replay" and r.headers["host"] == "model.example"
               for r in seen)


@pytest.mark.parametrize("serve", [
    lambda request: httpx.Response(503, text="upstream connect error"),
    lambda request: httpx.Response(200, text="not json"),
    lambda request: httpx.Response(200, json={"predictions": ["x"]}),
])
def test_a_failed_or_unreadable_answer_is_not_ok_and_keeps_no_predictions(serve):
    config = ReplayConfig(rows_per_request=1, concurrency=1)
    with V1Client(config, httpx.MockTransport(serve)) as client:
        got = client.sender(URL)(batch(0))
    assert not got.ok and got.predictions == [] and got.latency_ms >= 0


def test_a_timeout_is_a_failed_answer_not_an_exception():
    def serve(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with V1Client(ReplayConfig(), httpx.MockTransport(serve)) as client:
        assert client.sender(URL)(batch(0)).ok is False
    assert timed("r", lambda a: 1 / 0).ok is False


def test_a_window_can_be_sent_from_inside_a_running_event_loop_as_in_a_notebook():
    def serve(request):
        return httpx.Response(200, json={"predictions": [0.1], "model_version": "v1"})

    async def notebook_cell():  # a Jupyter kernel runs cells inside its event loop
        with V1Client(ReplayConfig(), httpx.MockTransport(serve)) as client:
            return send_window([batch(0)], [client.sender(URL)], 1)

    assert asyncio.run(notebook_cell())[0][0].ok
