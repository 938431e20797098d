"""In-process tests: model directory resolution, backend choice, the prediction log writer."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid

import pytest

from serving import backends
from serving.model_server import RawFeatureModel, build_parser
from serving.prediction_log import PredictionLog, new_ids


def test_registry_root_resolves_to_champion(registry):
    resolved = backends.resolve_model_dir(str(registry["model_root"]))
    assert resolved.path == str(registry["version_dir"])
    assert resolved.version == registry["version"]


def test_version_dir_is_served_as_is(registry, tmp_path):
    assert backends.resolve_model_dir(str(registry["version_dir"])).version == registry["version"]
    copy = tmp_path / "vX"
    shutil.copytree(registry["version_dir"] / "saved_model", copy / "saved_model")
    assert backends.resolve_model_dir(str(copy)).version == "vX"  # no lineage.json: the dir name


def test_neither_version_nor_root_is_an_error(tmp_path):
    with pytest.raises(backends.ModelLoadError, match="CHAMPION.json"):
        backends.resolve_model_dir(str(tmp_path))


def test_dangling_champion_is_an_error(tmp_path):
    (tmp_path / "CHAMPION.json").write_text(json.dumps({"version": "v9", "path": "versions/v9"}))
    with pytest.raises(backends.ModelLoadError, match="versions/v9"):
        backends.resolve_model_dir(str(tmp_path))


def test_onnx_over_transformed_features_falls_back_to_saved_model(registry, tmp_path):
    version = tmp_path / "v2"
    shutil.copytree(registry["version_dir"], version)
    info = json.loads((version / "model_info.json").read_text())
    info["onnx"]["inputs"] = "transformed"
    (version / "model_info.json").write_text(json.dumps(info))
    with pytest.raises(backends.ModelLoadError, match="transformed"):
        backends.OnnxBackend(str(version), info)
    model = RawFeatureModel("m", str(version), backend="onnx")
    assert model.load()
    assert model.backend_name == "savedmodel"
    assert model.feature_types == {"lvrat": "float", "chist": "int", "selfemp": "string"}


def test_model_info_disagreeing_with_signature_is_an_error(registry, tmp_path):
    version = tmp_path / "v3"
    shutil.copytree(registry["version_dir"], version)
    info = json.loads((version / "model_info.json").read_text())
    info["raw_feature_types"]["chist"] = "float"
    with pytest.raises(backends.ModelLoadError, match="disagree"):
        backends.SavedModelBackend(str(version), info)


def test_prediction_log_close_drains_the_queue(tmp_path):
    path = tmp_path / "logs" / "p.jsonl"
    writer = PredictionLog(str(path))
    for start in range(0, 5000, 100):
        writer.log([{"prediction_id": str(i), "probability": i / 5000} for i in range(start, start + 100)])
    writer.close()
    writer.log([{"prediction_id": "after-close"}])  # ignored, not an error
    lines = path.read_text().splitlines()
    assert [json.loads(line)["prediction_id"] for line in lines] == [str(i) for i in range(5000)]
    assert writer.written == 5000 and writer.dropped == 0


def test_prediction_log_writes_utf8_json_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    writer = PredictionLog(str(path))
    record = {"features": {"city": "Zürich", "lvrat": 0.1 + 0.2, "chist": None}, "stamp": dt.date(2026, 12, 4)}
    writer.log([record])
    writer.close()
    assert json.loads(path.read_text(encoding="utf-8")) == {**record, "stamp": "2026-12-04"}  # default=str


def test_new_ids_are_distinct_version_4_uuids():
    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    for text in ids[:50]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert new_ids(1) != new_ids(1)


def test_prediction_log_drops_rather_than_blocks_when_full(tmp_path):
    writer = PredictionLog(str(tmp_path / "p.jsonl"), max_queue=10)
    writer._file.close()  # the writer thread now fails on every record; it must keep running
    writer.log([{"i": i} for i in range(10_000)])
    assert writer.dropped > 0
    writer.close()


def test_parser_accepts_kserve_standard_args():
    args = build_parser().parse_args([
        "--model_name=m", "--model_dir=/mnt/models", "--http_port=8080", "--grpc_port=9000",
        "--workers=1", "--max_threads=2", "--enable_docs_url=false", "--backend=onnx",
    ])
    assert (args.model_name, args.http_port, args.grpc_port, args.backend) == ("m", 8080, 9000, "onnx")
    assert args.enable_grpc is False  # the runtime exposes only the HTTP port
    assert args.prediction_log is None


def test_registry_constants_match_the_pipeline():
    names = pytest.importorskip("components.common.names")
    assert backends.CHAMPION_FILE == names.CHAMPION_FILE
    assert backends.SAVED_MODEL_DIR == names.SAVED_MODEL_DIR
    assert backends.ONNX_FILE == names.ONNX_FILE
    assert backends.MODEL_INFO_FILE == names.MODEL_INFO_FILE
    assert backends.LINEAGE_FILE == names.LINEAGE_FILE
