"""Train for each label kind: TFX's penguins (three species) and CPS1985 wages (a regression
target), from ingest through transform to the exported SavedModel and its ONNX twin."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common import label_kinds, names
from components.ingest.ingest import ingest, read_split_frame, split_path
from components.train import calibration
from components.train import train as T
from components.transform.tests.shared import TEST_BEAM_ARGS
from components.transform.transform import run_transform

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"
CASES = {
    "multiclass": {"data": "penguins.csv", "label": "species", "slices": ["island"]},
    "regression": {"data": "cps1985.csv", "label": "wage", "slices": ["gender"]},
}


def _train(kind: str, tmp_path_factory) -> dict:
    case = CASES[kind]
    root = tmp_path_factory.mktemp(kind)
    examples, graph, transformed, model = (str(root / d) for d in ("examples", "graph", "transformed", "model"))
    ingest(str(FIXTURES / case["data"]), examples, label=case["label"], key_column="rownames", slices=case["slices"])
    run_transform(examples, graph, transformed, beam_args=TEST_BEAM_ARGS, temp_dir=str(root / "tmp"))
    info = T.train(transformed, graph, examples, model, epochs=40, seed=42, hidden_units=[16], learning_rate=0.01,
                   linear_path=True, l2_regularization=0.001)
    return {"kind": kind, "examples": examples, "model": model, "info": info, **case}


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> dict:
    return _train("multiclass", tmp_path_factory)


@pytest.fixture(scope="module")
def regression(tmp_path_factory) -> dict:
    return _train("regression", tmp_path_factory)


def _eval_answers(trained) -> tuple[np.ndarray, pd.DataFrame]:
    import tensorflow as tf

    loaded = tf.saved_model.load(os.path.join(trained["model"], names.SAVED_MODEL_DIR))
    records = [r.numpy() for r in tf.data.TFRecordDataset(split_path(trained["examples"], names.EVAL),
                                                        compression_type="GZIP")]
    out = loaded.signatures[T.SERVING_DEFAULT](examples=tf.constant(records))
    assert list(out) == [label_kinds.output_name(trained["kind"])]
    return next(iter(out.values())).numpy(), read_split_frame(trained["examples"], names.EVAL)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_model_info_names_the_kind(kind, request):
    trained = request.getfixturevalue(kind)
    info = json.loads(Path(trained["model"], names.MODEL_INFO_FILE).read_text())
    output = label_kinds.output_name(trained["kind"])
    assert info["label_kind"] == trained["kind"] and info["output"] == output == info["onnx"]["output"]
    assert info["signatures"][T.SERVING_RAW]["outputs"] == [output]
    assert info["onnx"]["max_abs_diff"] <= info["onnx"]["tolerance"]  # every output of every eval row
    if trained["kind"] == "multiclass":
        assert info["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
        assert info["calibration"]["method"] == calibration.METHOD_TEMPERATURE
        assert info["calibration"]["after"]["log_loss"] <= info["calibration"]["before"]["log_loss"] + 1e-9
        assert info["decision_threshold"] is None
    else:
        # CPS1985's validation split is too small to fit a slope on: auto leaves the values as they are
        assert info["classes"] == [] and info["calibration"]["method"] == calibration.METHOD_NONE
        assert info["calibration"]["after"] == info["calibration"]["before"]
        assert "eval_rmse" in info["final_metrics"]


def test_multiclass_answers_are_class_probabilities(multiclass):
    probabilities, frame = _eval_answers(multiclass)
    assert probabilities.shape == (len(frame), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The species are separable by bill and flipper sizes: far above the majority class's ~0.44
    accuracy = float(np.mean(probabilities.argmax(axis=1) == frame["species"].to_numpy()))
    assert accuracy >= 0.9, accuracy


def test_regression_answers_are_values_beating_the_mean(regression):
    values, frame = _eval_answers(regression)
    assert values.shape == (len(frame), 1)
    y = frame["wage"].to_numpy()
    r2 = 1 - np.sum((y - values[:, 0]) ** 2) / np.sum((y - y.mean()) ** 2)
    # education, experience, occupation and union membership explain part of the wage
    assert r2 > 0.1, r2
    assert abs(values.mean() - y.mean()) < 0.3 * y.std()  # in the label's units, not standardised


def test_temperature_scaling_recovers_an_overconfident_models_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2
    labels = np.array([rng.choice(3, p=p) for p in calibration.softmax(true_logits)])
    fitted = calibration.fit_softmax(true_logits * 3, labels, "auto", [0.0, 0.0, 0.0])  # 3x overconfident
    assert fitted.temperature == pytest.approx(3.0, rel=0.1)
    sharp = calibration.fit_softmax(true_logits / 3, labels, "auto", [0.0] * 3)  # underconfident: T < 1
    assert sharp.temperature == pytest.approx(1 / 3, rel=0.1)
    few = calibration.fit_softmax(true_logits[:200] / 3, labels[:200], "auto", [0.0] * 3)
    assert few.temperature == pytest.approx(1.0, abs=1e-3)  # too few rows to sharpen
    with pytest.raises(ValueError, match="isotonic calibration needs a binary label"):
        calibration.fit_softmax(true_logits, labels, "isotonic", [0.0] * 3)


def test_linear_recalibration_removes_bias_and_spread():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, size=2000)
    values = 0.5 * (y + rng.normal(0, 1, size=2000)) + 4  # shrunk and biased
    fitted = calibration.fit_linear(values, y, "auto")
    assert fitted.method == calibration.METHOD_LINEAR
    after, before = calibration.regression_summary(fitted.apply(values), y), calibration.regression_summary(values, y)
    assert after["calibration"] == pytest.approx(1.0, abs=1e-9) and after["r2"] > before["r2"]
    assert calibration.fit_linear(values[:200], y[:200], "auto").method == calibration.METHOD_NONE
    assert calibration.fit_linear(values[:200], y[:200], "platt").method == calibration.METHOD_LINEAR
