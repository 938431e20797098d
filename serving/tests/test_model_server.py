"""The model server, started for real on loopback, against the stand-in model's own outputs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import numpy as np
import pytest

from kserve import InferRequest
from kserve.errors import InvalidInput
from kserve.protocol.rest.v2_datamodels import InferenceRequest

from serving.model_server import RawFeatureModel
from serving.tests import stand_in
from serving.tests.conftest import MODEL, v2_inputs

GOOD = {"lvrat": 0.85, "chist": 2, "selfemp": "no"}
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"
MAX_BODY = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def expected(registry, hmda_rows) -> np.ndarray:
    """serving_default (serialized tf.Examples; a null feature is left out of the Example)."""
    return stand_in.expected_probabilities(str(registry["version_dir"] / "saved_model"), hmda_rows)


def assert_still_serving(server):
    response = server.post(V1, json={"instances": [GOOD]})
    assert response.status_code == 200, response.text
    assert 0.0 < response.json()["predictions"][0] < 1.0


def test_v1_predictions_equal_saved_model(server, registry, hmda_rows, expected):
    response = server.post(V1, json={"instances": hmda_rows})
    assert response.status_code == 200, response.text
    body = response.json()
    np.testing.assert_allclose(body["predictions"], expected, rtol=0, atol=1e-6)
    assert len(set(np.round(expected, 6))) > 5  # the rows really differ
    assert body["model_name"] == MODEL and body["model_version"] == registry["version"]
    assert len(set(body["prediction_ids"])) == len(hmda_rows)


def test_v2_predictions_equal_saved_model(server, registry, hmda_rows, expected):
    response = server.post(V2, json={"id": "req-v2", "inputs": v2_inputs(hmda_rows)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-v2" and body["model_name"] == MODEL
    assert body["model_version"] == registry["version"]
    (output,) = body["outputs"]
    assert output["name"] == "probability" and output["datatype"] == "FP32"
    assert output["shape"] == [len(hmda_rows)]
    np.testing.assert_allclose(output["data"], expected, rtol=0, atol=1e-6)


def test_v2_accepts_column_shape_n_by_1(server, hmda_rows, expected):
    inputs = v2_inputs(hmda_rows[:3])
    for tensor in inputs:
        tensor["shape"] = [3, 1]
        tensor["data"] = [[v] for v in tensor["data"]]
    response = server.post(V2, json={"inputs": inputs})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["outputs"][0]["data"], expected[:3], atol=1e-6)


@pytest.mark.parametrize("instances, words", [
    ([{"chist": 2, "selfemp": "no"}], ["missing", "lvrat", "instance 0"]),
    ([GOOD, {"lvrat": "high", "chist": 2, "selfemp": "no"}], ["lvrat", "number", "instance 1"]),
    ([{"lvrat": 0.8, "chist": 2.5, "selfemp": "no"}], ["chist", "integer"]),
    ([{"lvrat": 0.8, "chist": True, "selfemp": "no"}], ["chist", "integer"]),
    ([{"lvrat": 0.8, "chist": 2, "selfemp": 1}], ["selfemp", "string"]),
    ([], ["empty"]),
    ([[0.8, 2, "no"]], ["instance 0", "object"]),
])
def test_v1_bad_instances_are_400_naming_the_problem(server, instances, words):
    response = server.post(V1, json={"instances": instances})
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    assert_still_serving(server)


@pytest.mark.parametrize("body, words", [
    ({"rows": [GOOD]}, ['"instances"']),
    ({"instances": GOOD}, ['"instances"', "list"]),
    (b"{not json", ["Unrecognized request format"]),  # kserve's own JSON decoding
])
def test_v1_malformed_bodies_are_400(server, body, words):
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
    response = server.post(V1, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    assert_still_serving(server)


def _v2(rows=None, **changes):
    inputs = v2_inputs(rows or [GOOD, GOOD])
    for tensor in inputs:
        tensor.update(changes.get(tensor["name"], {}))
    return {"inputs": [t for t in inputs if t["name"] not in changes.get("drop", ())]}


@pytest.mark.parametrize("body, words", [
    (_v2(drop=("chist",)), ["missing", "chist"]),
    (_v2(lvrat={"datatype": "BYTES", "data": ["a", "b"]}), ["lvrat", "BYTES", "FP32"]),
    (_v2(chist={"datatype": "FP32"}), ["chist", "FP32", "INT64"]),
    (_v2(selfemp={"shape": [3], "data": ["no", "no", "yes"]}), ["different lengths", "selfemp"]),
    (_v2(lvrat={"shape": [2], "data": [0.5]}), ["lvrat", "shape", "1 values"]),
    (_v2(lvrat={"shape": [1, 2], "data": [[0.5, 0.6]]}), ["lvrat", "shape"]),
    (_v2(lvrat={"data": [0.5, "x"]}), ["lvrat", "row 1", "number"]),
    ({"inputs": []}, ["no inputs"]),
    (_v2(lvrat={"shape": [0], "data": []}, chist={"shape": [0], "data": []}, selfemp={"shape": [0], "data": []}),
     ["empty"]),
])
def test_v2_bad_inputs_are_400_naming_the_problem(server, body, words):
    response = server.post(V2, json=body)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    assert_still_serving(server)


def test_v2_request_without_inputs_is_4xx(server):
    response = server.post(V2, json={"instances": [GOOD]})
    assert response.status_code == 422, response.text
    assert "inputs" in response.text
    assert_still_serving(server)


def test_oversized_body_is_413(server):
    row = json.dumps(GOOD)
    big = ('{"instances": [' + ",".join([row] * (MAX_BODY // len(row) + 10)) + "]}").encode()
    assert len(big) > MAX_BODY
    response = server.post(V1, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert "too large" in response.json()["error"]
    assert_still_serving(server)


def test_oversized_chunked_body_is_413(server):
    chunk = b" " * (1024 * 1024)

    def body():  # no Content-Length: the limit is counted while reading
        yield b'{"instances": ['
        for _ in range(12):
            yield chunk
        yield b"]}"

    response = server.post(V1, content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert "too large" in response.json()["error"]
    assert_still_serving(server)


def test_predictions_are_logged_with_ids_and_version(server, registry):
    instances = [{"lvrat": 0.61, "chist": 1, "selfemp": "yes"}, {"lvrat": None, "chist": 4, "selfemp": "no"}]
    response = server.post(V1, json={"instances": instances}, headers={"x-request-id": "log-test-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    wanted = dict(zip(body["prediction_ids"], zip(instances, body["predictions"])))

    records = server.log_records(lambda r: r["prediction_id"] in wanted, n=2)
    assert len(records) == 2, server.prediction_log.read_text()[-2000:]
    for record in records:
        instance, probability = wanted[record["prediction_id"]]
        assert record["request_id"] == "log-test-1"
        assert record["model_name"] == MODEL and record["model_version"] == registry["version"]
        assert record["features"] == instance
        assert record["probability"] == probability
        stamp = dt.datetime.fromisoformat(record["timestamp"])
        assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 60


def test_synthetic_requests_are_answered_and_logged_as_synthetic(server):
    from serving.prediction_log import SYNTHETIC_FIELD, SYNTHETIC_TRAFFIC_HEADER

    response = server.post(V1, json={"instances": [GOOD]},
                           headers={"x-request-id": "warm-up-1", SYNTHETIC_TRAFFIC_HEADER: "warm-up"})
    assert response.status_code == 200, response.text
    records = server.log_records(lambda r: r["request_id"] == "warm-up-1", n=1)
    assert len(records) == 1 and records[0][SYNTHETIC_FIELD] is True
    # ordinary traffic carries no marker at all
    assert server.post(V1, json={"instances": [GOOD]}, headers={"x-request-id": "real-1"}).status_code == 200
    records = server.log_records(lambda r: r["request_id"] == "real-1", n=1)
    assert len(records) == 1 and SYNTHETIC_FIELD not in records[0]


def test_v2_predictions_are_logged_under_the_request_id(server):
    response = server.post(V2, json={"id": "log-test-v2", "inputs": v2_inputs([GOOD])})
    assert response.status_code == 200, response.text
    p = response.json()["outputs"][0]["data"][0]
    records = server.log_records(lambda r: r["request_id"] == "log-test-v2", n=1)
    assert len(records) == 1
    assert records[0]["features"] == GOOD and records[0]["probability"] == pytest.approx(p, abs=1e-7)


def test_metadata_and_health(server, registry):
    assert server.get("/v2/health/live").status_code == 200
    assert server.get("/v2/health/ready").json() == {"ready": True}
    assert server.get(f"/v2/models/{MODEL}/ready").json()["ready"] is True
    assert server.get(f"/v1/models/{MODEL}").json() == {"name": MODEL, "ready": True}
    metadata = server.get(f"/v2/models/{MODEL}").json()
    assert metadata["name"] == MODEL
    assert metadata["versions"] == [registry["version"]]
    assert metadata["platform"] == "tensorflow_savedmodel"
    assert metadata["inputs"] == [
        {"name": "lvrat", "datatype": "FP32", "shape": [-1]},
        {"name": "chist", "datatype": "INT64", "shape": [-1]},
        {"name": "selfemp", "datatype": "BYTES", "shape": [-1]},
    ]
    assert metadata["outputs"] == [{"name": "probability", "datatype": "FP32", "shape": [-1]}]
    assert metadata["label_kind"] == "binary" and metadata["classes"] == []  # no label_kind: binary
    assert server.get("/v2/models/other").status_code == 404


def test_onnx_backend_equals_saved_model(registry, hmda_rows, expected):
    """The ONNX Runtime backend, in-process (a second server would double the suite's start-up):
    the same request parsing and model path the HTTP endpoints call."""
    model = RawFeatureModel(MODEL, str(registry["version_dir"]))  # ONNX is the default backend
    assert model.load() and model.backend_name == "onnx"
    assert model._backend._session.get_session_options().intra_op_num_threads == 1
    assert model.version == registry["version"]  # from lineage.json in the version directory
    v1 = asyncio.run(model.predict({"instances": hmda_rows}))
    np.testing.assert_allclose(v1["predictions"], expected, rtol=0, atol=1e-5)
    request = InferRequest.from_inference_request(InferenceRequest(inputs=v2_inputs(hmda_rows)), MODEL)
    v2 = asyncio.run(model.predict(request))
    np.testing.assert_allclose(v2.outputs[0].data, expected, rtol=0, atol=1e-5)
    with pytest.raises(InvalidInput, match="chist"):
        asyncio.run(model.predict({"instances": [{"lvrat": 0.8, "selfemp": "no"}]}))
