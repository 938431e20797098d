"""Multiclass and regression versions (serving/tests/stand_in.py) behind the real model server:
V1 and V2 answers, the metadata and the prediction log per label kind; the ONNX backend in-process."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from kserve import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest

from serving import backends
from serving.model_server import RawFeatureModel
from serving.tests import stand_in
from serving.tests.conftest import MODEL, Server, v2_inputs

V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"
KINDS = (stand_in.MULTICLASS, stand_in.REGRESSION)


@pytest.fixture(scope="module", params=KINDS)
def kind_version(request, tmp_path_factory) -> dict:
    kind = request.param
    version_dir = stand_in.build_registry(str(tmp_path_factory.mktemp(f"registry-{kind}")), MODEL,
                                          version=f"v20250101T000000Z-{kind}", kind=kind)
    return {"kind": kind, "version_dir": version_dir, "output": stand_in.OUTPUT_NAMES[kind]}


@pytest.fixture(scope="module")
def kind_server(kind_version, tmp_path_factory):
    started = Server(kind_version["version_dir"], tmp_path_factory.mktemp("server"), kind_version["kind"],
                     "--backend=savedmodel")
    try:
        yield started.wait_ready()
    finally:
        assert started.stop() == 0, started.logs()[-4000:]


@pytest.fixture(scope="module")
def expected(kind_version, hmda_rows) -> np.ndarray:
    return stand_in.expected_probabilities(f"{kind_version['version_dir']}/saved_model", hmda_rows,
                                           kind_version["output"])


def test_v1_answers_the_kinds_prediction(kind_server, kind_version, hmda_rows, expected):
    response = kind_server.post(V1, json={"instances": hmda_rows})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    np.testing.assert_allclose(predictions, expected, rtol=1e-6, atol=1e-5)
    if kind_version["kind"] == stand_in.MULTICLASS:
        assert all(isinstance(p, list) and len(p) == len(stand_in.CLASSES) for p in predictions)
        np.testing.assert_allclose(np.sum(predictions, axis=1), 1.0, atol=1e-5)
        assert len(set(np.argmax(predictions, axis=1))) > 1  # the rows fall in different classes
    else:
        assert all(isinstance(p, float) for p in predictions)
        assert min(predictions) < 0 or max(predictions) > 1  # values, not probabilities


def test_v2_output_is_named_and_shaped_by_the_kind(kind_server, kind_version, hmda_rows, expected):
    response = kind_server.post(V2, json={"id": "kind-v2", "inputs": v2_inputs(hmda_rows)})
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["name"] == kind_version["output"] and output["datatype"] == "FP32"
    assert output["shape"] == list(expected.shape)
    np.testing.assert_allclose(np.reshape(output["data"], output["shape"]), expected, rtol=1e-6, atol=1e-5)


def test_metadata_names_the_kind_its_output_and_classes(kind_server, kind_version):
    metadata = kind_server.get(f"/v2/models/{MODEL}").json()
    kind = kind_version["kind"]
    assert metadata["label_kind"] == kind
    shape = [-1, len(stand_in.CLASSES)] if kind == stand_in.MULTICLASS else [-1]
    assert metadata["outputs"] == [{"name": kind_version["output"], "datatype": "FP32", "shape": shape}]
    assert metadata["classes"] == (list(stand_in.CLASSES) if kind == stand_in.MULTICLASS else [])


def test_the_log_records_the_kinds_prediction(kind_server, kind_version, hmda_rows):
    response = kind_server.post(V1, json={"instances": hmda_rows[:4]}, headers={"x-request-id": "kind-log"})
    body = response.json()
    wanted = dict(zip(body["prediction_ids"], body["predictions"]))
    records = kind_server.log_records(lambda r: r["request_id"] == "kind-log", n=4)
    assert len(records) == 4
    for record in records:
        prediction = wanted[record["prediction_id"]]
        assert "probability" not in record
        if kind_version["kind"] == stand_in.MULTICLASS:
            assert record["probabilities"] == prediction
            assert record["predicted_class"] == int(np.argmax(prediction))
        else:
            assert record["value"] == prediction


def test_onnx_backend_answers_as_the_saved_model(kind_version, hmda_rows, expected):
    model = RawFeatureModel(MODEL, kind_version["version_dir"])  # ONNX is the default backend
    assert model.load() and model.backend_name == "onnx"
    assert model.output.kind == kind_version["kind"] and model.output.name == kind_version["output"]
    v1 = asyncio.run(model.predict({"instances": hmda_rows}))
    np.testing.assert_allclose(v1["predictions"], expected, rtol=1e-5, atol=1e-4)
    request = InferRequest.from_inference_request(InferenceRequest(inputs=v2_inputs(hmda_rows)), MODEL)
    v2 = asyncio.run(model.predict(request))
    assert v2.outputs[0].name == kind_version["output"] and v2.outputs[0].shape == list(expected.shape)


def test_a_model_without_its_kinds_output_is_refused(kind_version):
    info = backends.read_model_info(kind_version["version_dir"])
    with pytest.raises(backends.ModelLoadError, match="no output 'scores'"):
        backends.SavedModelBackend(kind_version["version_dir"], {**info, "output": "scores"})


def test_output_spec_reads_model_info():
    assert backends.output_spec({}) == backends.OutputSpec("binary", "probability", ())  # old versions
    spec = backends.output_spec({"label_kind": "multiclass", "classes": ["a", "b", "c"], "output": "probabilities"})
    assert spec.width == 3 and spec.classes == ("a", "b", "c")
    assert backends.output_spec({"label_kind": "regression", "classes": []}).name == "value"
    with pytest.raises(backends.ModelLoadError, match="label_kind"):
        backends.output_spec({"label_kind": "ordinal"})
    with pytest.raises(backends.ModelLoadError, match="classes"):
        backends.output_spec({"label_kind": "multiclass", "classes": ["only"]})


def test_the_log_sink_writes_the_kinds_prediction(kind_server, kind_version, hmda_rows):
    """KServe's payload-logger events of this server's V1 and V2 answers become the same records
    as its own prediction log (V1 floats need --label_kind regression; V2 names its output)."""
    from serving import log_sink
    from serving.prediction_log import prediction_fields
    from serving.tests.test_log_sink import kserve_events

    kind, rows = kind_version["kind"], hmda_rows[:3]
    v1 = kind_server.post(V1, json={"instances": rows}).json()
    v2 = kind_server.post(V2, json={"inputs": v2_inputs(rows)}).json()
    wanted = [prediction_fields(kind, p) for p in v1["predictions"]]
    sink_kind = "regression" if kind == stand_in.REGRESSION else "binary"  # multiclass rows say so themselves
    for request, answer in (({"instances": rows}, v1), ({"inputs": v2_inputs(rows)}, v2)):
        records = log_sink.join(*kserve_events(request, answer), label_kind=sink_kind)
        for record, fields in zip(records, wanted, strict=True):
            assert {k: record.get(k) for k in fields} == fields  # the same float32 answers, V1 or V2
            assert "probability" not in record
