"""Infra validation with the real model server (the serving environment, .venv-serving) on a
stand-in model version: a good model is served and agrees across V1 and V2; a model the server
cannot load is refused with the server's own log; the push refuses what infra validation refused."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from components.common import names
from serving import infra_validator
from serving.tests import stand_in

pytestmark = pytest.mark.skipif(not infra_validator.REPO_SERVING_PYTHON.exists(),
                                reason="needs the serving environment (make setup-serving)")


@pytest.fixture(scope="module")
def examples_dir(hmda_csv, tmp_path_factory) -> str:
    """An ingest-shaped examples artifact: eval/data.tfrecord.gz of raw tf.Examples (chist missing
    in every fifth row, as real data has gaps)."""
    import tensorflow as tf

    frame = pd.read_csv(hmda_csv).head(40)
    root = tmp_path_factory.mktemp("examples")
    os.makedirs(root / names.EVAL)
    with tf.io.TFRecordWriter(str(root / names.EVAL / names.EXAMPLES_FILE), options="GZIP") as writer:
        for i, row in frame.iterrows():
            feature = {"lvrat": tf.train.Feature(float_list=tf.train.FloatList(value=[row["lvrat"]])),
                       "selfemp": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["selfemp"].encode()]))}
            if i % 5:
                feature["chist"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row["chist"])]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return str(root)


def test_a_good_model_is_served_and_answers_v1_and_v2_alike(tmp_path, examples_dir):
    version_dir = stand_in.build_registry(str(tmp_path / "registry"))
    result = infra_validator.validate(version_dir, examples_dir, requests=20, work_dir=str(tmp_path))
    assert result.blessed, result.reason + result.server_log_tail
    assert result.rows == 20 and result.v1["requests"] == 20
    assert 0 < result.v1["p50_ms"] <= result.v1["p99_ms"]
    assert result.v2["rows"] == 16  # the rows with every feature present
    assert result.v2["max_abs_diff_vs_v1"] <= infra_validator.DEFAULT_AGREEMENT
    assert result.load_seconds > 0
    assert "passed" in infra_validator.report_markdown(result)


def test_a_model_the_server_cannot_load_is_refused_with_its_log(tmp_path, examples_dir):
    version_dir = stand_in.build_registry(str(tmp_path / "registry"))
    with open(os.path.join(version_dir, names.ONNX_FILE), "wb") as f:
        f.write(b"not an onnx model")
    result = infra_validator.validate(version_dir, examples_dir, requests=5, work_dir=str(tmp_path))
    assert not result.blessed
    assert "exited" in result.reason and result.v1 == {}
    assert result.server_log_tail  # the server's own words about why
    assert "FAILED" in infra_validator.report_markdown(result)


def test_push_refuses_a_model_that_failed_infra_validation(tmp_path):
    from components.push.push import push

    blessing_dir, infra_dir = tmp_path / "blessing", tmp_path / "infra"
    blessing_dir.mkdir()
    infra_dir.mkdir()
    (blessing_dir / names.BLESSING_FILE).write_text(json.dumps({"blessed": True, "gates": []}))
    (infra_dir / names.INFRA_BLESSING_FILE).write_text(json.dumps(
        {"blessed": False, "reason": "infra validation failed: the model server exited with 1"}))
    result = push(model_dir=str(tmp_path / "model"), transform_graph_dir="", schema_dir="", statistics_dir="",
                  blessing_dir=str(blessing_dir), examples_dir="", registry_uri=str(tmp_path / "registry"),
                  model_name="model", infra_blessing_dir=str(infra_dir))
    assert not result.pushed and "model server exited" in result.reason
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize("kind", [stand_in.MULTICLASS, stand_in.REGRESSION])
def test_multiclass_and_regression_models_are_served_and_agree(tmp_path, examples_dir, kind):
    version_dir = stand_in.build_registry(str(tmp_path / "registry"), kind=kind)
    result = infra_validator.validate(version_dir, examples_dir, requests=10, work_dir=str(tmp_path))
    assert result.blessed, result.reason + result.server_log_tail
    assert result.v1["requests"] == 10 and result.v2["rows"] == 8
    assert result.v2["max_abs_diff_vs_v1"] <= infra_validator.DEFAULT_AGREEMENT


def test_a_multiclass_model_answering_other_classes_than_it_names_is_refused(tmp_path, examples_dir):
    version_dir = stand_in.build_registry(str(tmp_path / "registry"), kind=stand_in.MULTICLASS)
    info_path = os.path.join(version_dir, names.MODEL_INFO_FILE)
    with open(info_path) as f:
        info = json.load(f)
    info["classes"].append("withdrawn")  # four classes named, three answered
    with open(info_path, "w") as f:
        json.dump(info, f)
    result = infra_validator.validate(version_dir, examples_dir, requests=3, work_dir=str(tmp_path))
    assert not result.blessed and "V1 request 1 of 3 answered 500" in result.reason


@pytest.mark.parametrize("metadata, good, bad", [
    ({}, [0.0, 0.3, 1.0], [1.2, -0.1, float("nan"), [0.3], True]),
    ({"label_kind": "binary"}, [0.5], [2.0]),
    ({"label_kind": "regression"}, [-3.5, 0, 1e6], [float("nan"), float("inf"), "1.0", [1.0], None]),
    ({"label_kind": "multiclass", "classes": ["a", "b", "c"]}, [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]],
     [[0.2, 0.3, 0.4], [0.5, 0.5], [1.2, -0.1, -0.1], [0.2, 0.3, float("nan")], 0.5]),
])
def test_answers_are_checked_per_label_kind(metadata, good, bad):
    valid = infra_validator.answer_check(metadata)
    assert all(valid(value) for value in good)
    assert not any(valid(value) for value in bad)


def test_unknown_kinds_or_missing_classes_are_refused():
    with pytest.raises(infra_validator.InfraValidationError, match="ordinal"):
        infra_validator.answer_check({"label_kind": "ordinal"})
    with pytest.raises(infra_validator.InfraValidationError, match="0 classes"):
        infra_validator.answer_check({"label_kind": "multiclass", "classes": []})
