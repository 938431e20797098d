"""V1 predict's fast path (serving/v1_fast_path.py) against kserve's own path, on real servers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from serving.tests import stand_in
from serving.tests.conftest import MODEL, Server

GOOD = {"lvrat": 0.85, "chist": 2, "selfemp": "no"}
V1 = f"/v1/models/{MODEL}:predict"
PREDICT_COUNT = re.compile(r'^request_predict_seconds_count\{model_name="%s"\} ([0-9.e+]+)$' % MODEL, re.M)


@pytest.fixture(scope="module")
def expected(registry, hmda_rows) -> np.ndarray:
    return stand_in.expected_probabilities(str(registry["version_dir"] / "saved_model"), hmda_rows)


@pytest.fixture(scope="module")
def kserve_path_server(registry, tmp_path_factory):
    """The same model with kserve's per-request latency lines and access log on: V1 predict then
    takes kserve's own path."""
    started = Server(str(registry["model_root"]), tmp_path_factory.mktemp("kserve-path"), "kserve-path",
                     "--backend=savedmodel", "--enable_latency_logging=true", "--enable_access_log=true")
    try:
        yield started.wait_ready()
    finally:
        assert started.stop() == 0, started.logs()[-4000:]


def _predict_count(server) -> float:
    match = PREDICT_COUNT.search(server.get("/metrics").text)
    return float(match.group(1)) if match else 0.0


def test_both_paths_answer_alike(server, kserve_path_server, hmda_rows, expected):
    for each in (server, kserve_path_server):
        response = each.post(V1, json={"instances": hmda_rows})
        assert response.status_code == 200, response.text
        body = response.json()
        np.testing.assert_allclose(body["predictions"], expected, rtol=0, atol=1e-6)
        assert len(set(body["prediction_ids"])) == len(hmda_rows)
        assert set(body) == {"predictions", "prediction_ids", "model_name", "model_version"}
        bad = each.post(V1, json={"instances": [{"lvrat": 0.8, "selfemp": "no"}]})
        assert bad.status_code == 400 and "chist" in bad.json()["error"], bad.text


def test_large_requests_are_answered_off_the_event_loop(server, hmda_rows, expected):
    """More rows than INLINE_MAX_ROWS go to the executor: the same answers."""
    from serving.model_server import INLINE_MAX_ROWS

    repeats = INLINE_MAX_ROWS // len(hmda_rows) + 2
    response = server.post(V1, json={"instances": hmda_rows * repeats})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], np.tile(expected, repeats), rtol=0, atol=1e-6)


def test_cloudevents_take_kserve_path(server):
    plain = server.post(V1, json={"instances": [GOOD]}).json()["predictions"]
    binary = server.post(V1, json={"instances": [GOOD]},
                         headers={"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "test", "ce-type": "test"})
    assert binary.status_code == 200, binary.text
    assert binary.headers["ce-type"] == "io.kserve.inference.response"  # kserve answers with an event
    assert binary.json()["predictions"] == plain
    structured = server.post(V1, json={"specversion": "1.0", "id": "e-2", "source": "test", "type": "test",
                                       "time": "2026-01-01T00:00:00Z", "data": {"instances": [GOOD]}})
    assert structured.status_code == 200, structured.text
    assert structured.json()["predictions"] == plain


def test_fast_path_counts_in_kserve_predict_histogram(server):
    before = _predict_count(server)
    for _ in range(3):
        assert server.post(V1, json={"instances": [GOOD]}).status_code == 200
    assert _predict_count(server) == before + 3


def test_per_request_log_lines_are_opt_in(server, kserve_path_server):
    for each in (server, kserve_path_server):
        assert each.post(V1, json={"instances": [GOOD]}, headers={"x-request-id": "log-lines-1"}).status_code == 200
    quiet, chatty = server.logs(), kserve_path_server.logs()
    assert "POST /v1/models" not in quiet and "kserve.trace" not in quiet
    assert "POST /v1/models" in chatty  # uvicorn's access log
    assert "kserve.trace" in chatty and "predict" in chatty  # kserve's timing lines
