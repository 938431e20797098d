"""Train end to end on the HMDA sample: SavedModel signatures, ONNX parity, model_info.json."""

from __future__ import annotations

import os

import numpy as np
import pytest

from components.common import names
from components.common.config import PipelineConfig
from components.common.errors import PipelineInputError
from components.common.failures import FAILURE_FILE
from components.train import heads
from components.train import train as T
from components.transform.transform import feature_types_from_metadata
from components.ingest.ingest import read_metadata, split_path

EPOCHS = 3
DEFAULTS = PipelineConfig()
# The pipeline's model (wide & deep, L2, no class weights), for fewer epochs.
MODEL = {"learning_rate": DEFAULTS.learning_rate, "hidden_units": DEFAULTS.hidden_units,
         "l2_regularization": DEFAULTS.l2_regularization, "linear_path": DEFAULTS.linear_path,
         "class_weighting": DEFAULTS.class_weighting}


@pytest.fixture(scope="module")
def trained(transformed, tmp_path_factory) -> dict:
    model_dir = str(tmp_path_factory.mktemp("model"))
    info = T.train(
        transformed["transformed_examples_dir"], transformed["transform_graph_dir"],
        transformed["examples_dir"], model_dir, epochs=EPOCHS, seed=42, **MODEL,
    )
    return {"model_dir": model_dir, "info": info, **transformed}


@pytest.fixture(scope="module")
def loaded(trained):
    import tensorflow as tf

    return tf.saved_model.load(os.path.join(trained["model_dir"], names.SAVED_MODEL_DIR))


@pytest.fixture(scope="module")
def eval_records(trained) -> list[bytes]:
    import tensorflow as tf

    path = split_path(trained["examples_dir"], names.EVAL)
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def test_class_weights_balance_the_classes():
    weights = heads.class_weights(heads.Head("binary", ("0", "1")), {"0": 900, "1": 100})
    assert weights[0] * 900 == pytest.approx(weights[1] * 100)
    assert weights[1] == pytest.approx(5.0)
    with pytest.raises(ValueError):
        heads.class_weights(heads.Head("binary", ("0", "1")), {"0": 10})
    three = heads.class_weights(heads.Head("multiclass", ("a", "b", "c")), {"0": 60, "1": 30, "2": 10})
    assert [three[c] * n for c, n in enumerate((60, 30, 10))] == pytest.approx([100 / 3] * 3)


def test_artifacts_written(trained):
    model_dir = trained["model_dir"]
    for name in (names.SAVED_MODEL_DIR, names.ONNX_FILE, names.MODEL_INFO_FILE):
        assert os.path.exists(os.path.join(model_dir, name)), name
    assert os.path.exists(os.path.join(model_dir, names.SAVED_MODEL_DIR, "saved_model.pb"))


def test_model_info(trained):
    from components.common import io as fio

    info = fio.read_json(os.path.join(trained["model_dir"], names.MODEL_INFO_FILE))
    assert info["strategy"] == T.KIND_DEFAULT or info["strategy"] == T.KIND_MIRRORED
    assert 1 <= info["epochs_run"] <= EPOCHS
    assert len(info["history"]["loss"]) == info["epochs_run"]
    assert len(info["history"]["val_auc"]) == info["epochs_run"]
    assert info["train_seconds"] > 0
    assert info["label"] == "deny"
    assert info["parameters"] == {
        "epochs": EPOCHS, "batch_size": DEFAULTS.batch_size, "seed": 42, **MODEL,
        "accelerator_type": "", "accelerator_count": 0, "tpu_address": "", "multi_worker": False,
        "calibration_method": "auto", "numeric_buckets": False, "dropout": 0.0, "tuning_trials": 0,
    }
    assert info["tuning"] is None
    assert info["class_weights"] is None
    assert {"train_auc", "validation_auc", "eval_auc"} <= set(info["final_metrics"])
    calibration = info["calibration"]
    # the fixture's validation split is small: auto picks Platt, fitted there and only there
    assert calibration["method"] == "platt" and calibration["fitted_on"] == "validation"
    assert calibration["rows"] == read_metadata(trained["examples_dir"])["row_counts"]["validation"]
    assert calibration["prior_shift"] == 0  # no class weights
    assert calibration["after"]["calibration"] == pytest.approx(1, abs=0.05)  # Platt fits the mean
    assert 0 < info["decision_threshold"] == calibration["decision_threshold"] < 0.5
    assert info["raw_feature_types"]["pirat"] == "float"
    assert info["onnx"]["tolerance"] == T.ONNX_TOLERANCE
    assert info["onnx"]["opset"] >= 13
    assert info["onnx"]["rows_checked"] == read_metadata(trained["examples_dir"])["row_counts"]["eval"]
    assert 0.0 <= info["onnx"]["max_abs_diff"] <= T.ONNX_TOLERANCE
    assert "raw_export_error" not in info["onnx"]  # no fallback on the normal path
    assert info["onnx"] == trained["info"]["onnx"]
    assert not os.path.exists(os.path.join(trained["model_dir"], FAILURE_FILE))


def test_learns_hmda(trained):
    final = trained["info"]["final_metrics"]
    # The fixture's eval split is small (179 rows, 20 positives): single features reach only
    # 0.55-0.65 AUC there and a 3-epoch model 0.57-0.70 depending on the seed.
    assert final["eval_auc"] > 0.6
    assert final["train_auc"] > 0.7


def test_eval_auc_of_exported_model(trained, loaded, eval_records):
    """AUC recomputed from serving_default outputs (rank statistic), independent of Keras."""
    import tensorflow as tf
    from scipy.stats import rankdata

    p = loaded.signatures[T.SERVING_DEFAULT](examples=tf.constant(eval_records))[T.PROBABILITY].numpy()[:, 0]
    y = np.array([tf.train.Example.FromString(r).features.feature["deny"].int64_list.value[0]
                  for r in eval_records])
    ranks = rankdata(p)
    n1, n0 = y.sum(), len(y) - y.sum()
    auc = (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert auc > 0.6
    assert auc == pytest.approx(trained["info"]["final_metrics"]["eval_auc"], abs=0.02)


def test_signatures(loaded):
    assert {T.SERVING_DEFAULT, T.SERVING_RAW, T.TRANSFORM_FEATURES} <= set(loaded.signatures)
    serving = loaded.signatures[T.SERVING_DEFAULT]
    (spec,) = serving.structured_input_signature[1].values()
    assert spec.name == T.EXAMPLES_INPUT and spec.shape.as_list() == [None]
    assert list(serving.structured_outputs) == [T.PROBABILITY]


def test_serving_default_on_raw_examples(loaded, eval_records):
    import tensorflow as tf

    probabilities = loaded.signatures[T.SERVING_DEFAULT](examples=tf.constant(eval_records))[T.PROBABILITY]
    assert probabilities.shape == (len(eval_records), 1)
    assert probabilities.dtype == tf.float32
    p = probabilities.numpy()
    assert np.all((p >= 0) & (p <= 1))
    assert p.std() > 1e-3  # not a constant


def test_serving_default_without_label_and_with_missing_features(loaded, eval_records):
    import tensorflow as tf

    example = tf.train.Example.FromString(eval_records[0])
    del example.features.feature["deny"]
    del example.features.feature["pirat"]
    del example.features.feature["insurance"]
    empty = tf.train.Example()
    out = loaded.signatures[T.SERVING_DEFAULT](
        examples=tf.constant([example.SerializeToString(), empty.SerializeToString()])
    )[T.PROBABILITY].numpy()
    assert out.shape == (2, 1) and np.all(np.isfinite(out))


def test_serving_raw_agrees_with_serving_default(trained, loaded, eval_records):
    import tensorflow as tf

    types = feature_types_from_metadata(read_metadata(trained["examples_dir"]))
    records, raw = T._read_raw_columns(trained["examples_dir"], types)
    raw_fn = loaded.signatures[T.SERVING_RAW]
    assert set(raw_fn.structured_input_signature[1]) == set(types)
    got = raw_fn(**{c: tf.constant(v) for c, v in raw.items()})[T.PROBABILITY].numpy()
    expected = loaded.signatures[T.SERVING_DEFAULT](examples=tf.constant(records))[T.PROBABILITY].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_serving_raw_missing_values_match_absent_features(loaded):
    """NaN / INT_MISSING / "__missing__" give the same result as a tf.Example without them."""
    import tensorflow as tf

    raw = {
        "pirat": [np.nan], "hirat": [0.25], "lvrat": [np.nan], "chist": [T.INT_MISSING],
        "mhist": [2], "phist": [T.STRING_MISSING], "unemp": [3.1], "selfemp": ["no"],
        "insurance": [T.STRING_MISSING], "condomin": ["no"], "single": ["yes"], "hschool": ["yes"],
    }
    example = tf.train.Example()
    f = example.features.feature
    f["hirat"].float_list.value.append(0.25)
    f["mhist"].int64_list.value.append(2)
    f["unemp"].float_list.value.append(3.1)
    for column, value in (("selfemp", b"no"), ("condomin", b"no"), ("single", b"yes"), ("hschool", b"yes")):
        f[column].bytes_list.value.append(value)
    dtypes = {c: (tf.string if isinstance(v[0], str) else tf.int64 if isinstance(v[0], int) else tf.float32)
              for c, v in raw.items()}
    got = loaded.signatures[T.SERVING_RAW](**{c: tf.constant(v, dtypes[c]) for c, v in raw.items()})
    expected = loaded.signatures[T.SERVING_DEFAULT](examples=tf.constant([example.SerializeToString()]))
    np.testing.assert_allclose(got[T.PROBABILITY].numpy(), expected[T.PROBABILITY].numpy(), atol=1e-6)


def test_transform_features_signature(trained, loaded, eval_records):
    import tensorflow as tf
    import tensorflow_transform as tft

    out = loaded.signatures[T.TRANSFORM_FEATURES](examples=tf.constant(eval_records[:5]))
    spec = tft.TFTransformOutput(trained["transform_graph_dir"]).transformed_feature_spec()
    # the model's inputs: every transformed feature but the label and (numeric_buckets off) the deciles
    assert set(out) == {f for f in spec if f != "deny" and not f.endswith("_bucket")}
    assert out["pirat"].shape == (5,)


def test_onnx_parity(trained, eval_records):
    """Re-run the parity check independently: onnxruntime vs the SavedModel on the eval split."""
    import onnx

    onnx_path = os.path.join(trained["model_dir"], names.ONNX_FILE)
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model)
    info = trained["info"]["onnx"]
    assert info["inputs"] in ("raw", "transformed")
    types = feature_types_from_metadata(read_metadata(trained["examples_dir"]))
    parity = T.check_onnx_parity(
        onnx_path, os.path.join(trained["model_dir"], names.SAVED_MODEL_DIR),
        trained["examples_dir"], types, info["inputs"],
    )
    assert parity["rows_checked"] == len(eval_records)
    assert parity["max_abs_diff"] <= T.ONNX_TOLERANCE
    if info["inputs"] == "raw":
        assert {i.name for i in model.graph.input} == set(types)


def test_onnx_raw_export(trained):
    """The whole raw-feature path (z-scores, buckets, vocabulary lookups) converts to ONNX."""
    info = trained["info"]["onnx"]
    assert info["inputs"] == "raw", info.get("raw_export_error")


class _PerturbedSession:
    """An onnxruntime session whose answers are off by `offset`: a converted model that disagrees."""

    def __init__(self, real_session_class, offset: float):
        self._real, self._offset = real_session_class, offset

    def __call__(self, *args, **kwargs):
        session = self._real(*args, **kwargs)
        run, offset = session.run, self._offset

        class Session:
            get_inputs, get_outputs = session.get_inputs, session.get_outputs

            def run(self, output_names, feeds):
                return [np.asarray(o) + offset for o in run(output_names, feeds)]

        return Session()


def _perturb_onnx(monkeypatch, offset: float) -> None:
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "InferenceSession", _PerturbedSession(onnxruntime.InferenceSession, offset))


def _parity(trained, inputs: str) -> dict:
    types = feature_types_from_metadata(read_metadata(trained["examples_dir"]))
    return T.check_onnx_parity(
        os.path.join(trained["model_dir"], names.ONNX_FILE), os.path.join(trained["model_dir"], names.SAVED_MODEL_DIR),
        trained["examples_dir"], types, inputs,
    )


def test_onnx_parity_failure_raises_with_the_figures(trained, eval_records, monkeypatch):
    """An ONNX model answering 0.01 off the SavedModel fails the check; the error names the figures."""
    inputs = trained["info"]["onnx"]["inputs"]
    _perturb_onnx(monkeypatch, 0.01)
    with pytest.raises(T.OnnxParityError) as caught:
        _parity(trained, inputs)
    error = caught.value
    assert error.max_abs_diff == pytest.approx(0.01, abs=T.ONNX_TOLERANCE)
    assert error.tolerance == T.ONNX_TOLERANCE
    assert error.rows_checked == len(eval_records)
    assert error.onnx_inputs == inputs
    message = str(error)
    for figure in ("0.01", f"tolerance {T.ONNX_TOLERANCE:g}", f"over {len(eval_records)} eval rows",
                   f"({inputs}-feature ONNX form)", "worst eval row"):
        assert figure in message, (figure, message)


def test_onnx_parity_within_tolerance_passes(trained, monkeypatch):
    """A difference below the tolerance is reported, not raised: the check compares, it does not just crash."""
    inputs = trained["info"]["onnx"]["inputs"]
    _perturb_onnx(monkeypatch, T.ONNX_TOLERANCE / 10)
    parity = _parity(trained, inputs)
    assert parity["max_abs_diff"] == pytest.approx(T.ONNX_TOLERANCE / 10, abs=T.ONNX_TOLERANCE / 20)
    assert parity["max_abs_diff"] <= parity["tolerance"] == T.ONNX_TOLERANCE


def test_unconverted_ops_are_a_conversion_error(tmp_path):
    """tf2onnx only logs TF ops it has no handler for and leaves them in the graph: that is not a model."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("StringToHashBucketFast", ["s"], ["h"], num_buckets=10)], "g",
        [helper.make_tensor_value_info("s", TensorProto.STRING, [None])],
        [helper.make_tensor_value_info("h", TensorProto.INT64, [None])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", T.ONNX_OPSET)])
    path = tmp_path / "model.onnx"
    with pytest.raises(T.OnnxConversionError, match="StringToHashBucketFast") as caught:
        T._checked_write_onnx(proto, str(path), "raw")
    assert caught.value.onnx_inputs == "raw"
    assert not path.exists()


def test_tuning_trains_the_setting_it_chose_on_validation_and_records_every_trial(transformed, tmp_path):
    from components.train import tuning

    info = T.train(transformed["transformed_examples_dir"], transformed["transform_graph_dir"],
                   transformed["examples_dir"], str(tmp_path / "model"), epochs=2, seed=42, tuning_trials=2, **MODEL)
    record = info["tuning"]
    assert [t["trial"] for t in record["trials"]][0] == tuning.DEFAULT_TRIAL and len(record["trials"]) == 3
    assert record["default"]["hidden_units"] == DEFAULTS.hidden_units
    best = min(record["trials"], key=lambda t: t["val_loss"])
    assert record["chosen"]["trial"] == best["trial"]
    # The model trained is the chosen trial's: its parameters and its history.
    chosen = {k: record["chosen"][k] for k in ("hidden_units", "learning_rate", "dropout")}
    assert {k: info["parameters"][k] for k in chosen} == chosen
    assert min(info["history"]["val_loss"]) == pytest.approx(best["val_loss"])
    assert info["epochs_run"] == best["epochs_run"]


def test_tuning_with_multi_worker_is_refused_before_any_work(transformed, tmp_path):
    with pytest.raises(PipelineInputError, match="one worker"):
        T.train(transformed["transformed_examples_dir"], transformed["transform_graph_dir"],
                transformed["examples_dir"], str(tmp_path / "model"), tuning_trials=2, multi_worker=True)


def test_parity_failure_fails_training_and_leaves_no_model_info(transformed, tmp_path, monkeypatch):
    """No fallback on a parity failure of the raw form, no model_info.json (not even an earlier one),
    no ONNX file that disagrees; FAILURE.json carries the figures for the run summary."""
    from components.common import io as fio

    model_dir = str(tmp_path / "model")
    os.makedirs(model_dir)
    fio.write_json_atomic(os.path.join(model_dir, names.MODEL_INFO_FILE), {"stale": True})
    fallback = []
    monkeypatch.setattr(T, "export_onnx_transformed", lambda *a, **k: fallback.append(a))
    _perturb_onnx(monkeypatch, 0.01)
    with pytest.raises(T.OnnxParityError) as caught:
        T.train(transformed["transformed_examples_dir"], transformed["transform_graph_dir"],
                transformed["examples_dir"], model_dir, epochs=1, seed=42)
    assert caught.value.onnx_inputs == "raw" and not fallback
    assert caught.value.max_abs_diff == pytest.approx(0.01, abs=T.ONNX_TOLERANCE)
    assert not os.path.exists(os.path.join(model_dir, names.MODEL_INFO_FILE))
    assert not os.path.exists(os.path.join(model_dir, names.ONNX_FILE))
    failure = fio.read_json(os.path.join(model_dir, FAILURE_FILE))
    assert failure["error_type"] == "OnnxParityError"
    assert "max |SavedModel - ONNX| = 0.01" in failure["message"] and "eval rows" in failure["message"]


def test_conversion_error_falls_back_and_records_the_reason(transformed, tmp_path, monkeypatch):
    """tf2onnx failing on the raw-feature graph: the model over transformed features, parity-checked,
    with the reason in model_info.json."""
    import onnx
    import tf2onnx

    from components.common import io as fio

    convert_common = tf2onnx.convert._convert_common  # from_keras (the fallback) converts through it too

    def cannot_convert_raw(*args, **kwargs):
        if kwargs.get("name") == "serving_raw":
            raise ValueError("make_sure failure: no ONNX form for op UpperBound (stand-in)")
        return convert_common(*args, **kwargs)

    monkeypatch.setattr(tf2onnx.convert, "_convert_common", cannot_convert_raw)
    model_dir = str(tmp_path / "model")
    # also the other model form: a plain network (no linear path) trained with class weights
    info = T.train(transformed["transformed_examples_dir"], transformed["transform_graph_dir"],
                   transformed["examples_dir"], model_dir, epochs=1, seed=42, class_weighting=True)
    calibration = info["calibration"]
    assert info["class_weights"]["1"] > 1 > info["class_weights"]["0"]
    assert calibration["prior_shift"] < 0  # the positive class was up-weighted, undone before Platt
    assert calibration["before"]["calibration"] > 1.5  # inflated by the class weights
    assert abs(calibration["after"]["calibration"] - 1) < abs(calibration["before"]["calibration"] - 1)
    onnx_info = info["onnx"]
    assert onnx_info["inputs"] == "transformed"
    assert onnx_info["raw_export_error"] == "ValueError: make_sure failure: no ONNX form for op UpperBound (stand-in)"
    assert 0.0 <= onnx_info["max_abs_diff"] <= onnx_info["tolerance"] == T.ONNX_TOLERANCE
    assert onnx_info["rows_checked"] == read_metadata(transformed["examples_dir"])["row_counts"]["eval"]
    assert fio.read_json(os.path.join(model_dir, names.MODEL_INFO_FILE))["onnx"] == onnx_info
    model = onnx.load(os.path.join(model_dir, names.ONNX_FILE))
    assert {i.name for i in model.graph.input} == set(info["signatures"][T.TRANSFORM_FEATURES]["outputs"])


def test_component_interface():
    from components.train.component import train

    spec = train.component_spec
    assert set(spec.outputs) == {names.MODEL, names.TRAINING_METRICS}
    assert {names.TRANSFORMED_EXAMPLES, names.TRANSFORM_GRAPH, names.EXAMPLES} <= set(spec.inputs)
    assert spec.implementation.container.image.endswith(":" + __import__(
        "components.common.images", fromlist=["package_version"]).package_version())


@pytest.mark.gpu
def test_mirrored_strategy_on_gpu(transformed, tmp_path):
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU visible")
    info = T.train(
        transformed["transformed_examples_dir"], transformed["transform_graph_dir"],
        transformed["examples_dir"], str(tmp_path / "model"), epochs=2,
        accelerator_type="nvidia.com/gpu", accelerator_count=1,
    )
    assert info["strategy"] == T.KIND_MIRRORED
    assert any("GPU" in d.upper() for d in info["devices"])
    assert info["onnx"]["max_abs_diff"] <= T.ONNX_TOLERANCE
