"""Evaluate for multiclass (penguins' species) and regression (CPS1985's wage) labels: real TFMA runs
on stand-in SavedModels with the trainer's contract, their figures checked against numpy and
scikit-learn on the same predictions, each gate passing and failing, the reports and the KFP outputs.

Four TFMA runs are shared module-wide (a good candidate alone and a bad one against the good model as
champion, per kind); gate variants re-apply the gates to a real TFMA output with `bless`. Only the
bad runs compute TFMA's jackknife intervals (most of TFMA's time), and each kind's interval tests
read them; the good runs and the component's run judge point estimates (confidence_intervals=False).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from components.common import label_kinds, names
from components.common.errors import PipelineInputError
from components.common.gate_policy import GatePolicy
from components.conftest import FIXTURES
from components.evaluate import baseline as bl
from components.evaluate import evaluate as ev
from components.evaluate import gates as gt
from components.evaluate import tfma_metrics
from components.evaluate.blessing import read_blessing
from components.evaluate.tests import stand_in
from components.ingest.ingest import ingest, read_metadata, split_path

GATES = ["metric_floor", "no_regression", "fairness", "calibration", "baseline"]
PENGUIN_SLICES = ["island", "sex"]
# The multiclass stand-in zero-fills a row with missing measurements that the baseline's median
# imputation ranks right: the multinomial regression's macro AUC is 1.0, the stand-in's 0.98.
MULTICLASS_POLICY = {"baseline_auc_margin": 0.05}
# The runs whose tests check point estimates only skip TFMA's intervals.
POINT_ONLY = {"confidence_intervals": False}


def _ingest(tmp_path_factory, csv: str, label: str, slices: list[str]) -> str:
    out = str(tmp_path_factory.mktemp("examples"))
    ingest(str(FIXTURES / csv), out, label=label, key_column="rownames", slices=slices)
    return out


def _evaluate(examples_dir, tmp_path_factory, model_dir, label, slices, **kwargs):
    out = tmp_path_factory.mktemp("evaluate")
    blessing = ev.evaluate(examples_dir, model_dir, str(out / "evaluation"), str(out / "blessing"),
                           label=label, slices=slices, **kwargs)
    return blessing, str(out / "evaluation"), str(out / "blessing")


def _slice_values(records: list[bytes], column: str) -> np.ndarray:
    import tensorflow as tf

    values = []
    for record in records:
        feature = tf.train.Example.FromString(record).features.feature
        values.append(feature[column].bytes_list.value[0].decode() if column in feature else "")
    return np.array(values)


# ------------------------------------------------------------------------------------------------
# Multiclass: penguins


@pytest.fixture(scope="module")
def penguins(tmp_path_factory) -> str:
    return _ingest(tmp_path_factory, "penguins.csv", "species", PENGUIN_SLICES)


@pytest.fixture(scope="module")
def classes(penguins) -> list[str]:
    return read_metadata(penguins)["classes"]


@pytest.fixture(scope="module")
def softmax_models(penguins, classes, tmp_path_factory) -> dict[str, str]:
    return stand_in.build_multiclass_models(penguins, str(tmp_path_factory.mktemp("models")), len(classes))


@pytest.fixture(scope="module")
def multiclass_run(penguins, softmax_models, tmp_path_factory):
    return _evaluate(penguins, tmp_path_factory, softmax_models["good"], "species", PENGUIN_SLICES,
                     **MULTICLASS_POLICY, **POINT_ONLY)


@pytest.fixture(scope="module")
def multiclass_bad_run(penguins, softmax_models, tmp_path_factory):
    # With intervals for two models, the costliest TFMA run here: sliced by island alone (its tests
    # read no other slice; multiclass_run covers both columns).
    return _evaluate(penguins, tmp_path_factory, softmax_models["bad"], "species", ["island"],
                     baseline_model_dir=softmax_models["good"], baseline_version="v2", **MULTICLASS_POLICY)


@pytest.fixture(scope="module")
def multiclass_reference(penguins, softmax_models, classes):
    """The stand-in SavedModel run directly on the eval split: labels, [N, K] probabilities, slices."""
    records = stand_in.read_examples(split_path(penguins, names.EVAL))
    _, labels = stand_in.feature_matrix(records, [], "species")
    probabilities = stand_in.predict(os.path.join(softmax_models["good"], names.SAVED_MODEL_DIR), records,
                                     output="probabilities")
    assert probabilities.shape == (len(records), len(classes))
    return {"labels": labels, "p": probabilities.astype(np.float64),
            "island": _slice_values(records, "island")}


def top_class_ece(labels: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(correct[which == b].sum() - confidence[which == b].sum()) for b in range(bins)) / len(labels))


def test_multiclass_metrics_match_sklearn(multiclass_run, multiclass_reference, classes):
    from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
                                 roc_auc_score)

    blessing, evaluation_dir, _ = multiclass_run
    y, p = multiclass_reference["labels"], multiclass_reference["p"]
    predicted, k = p.argmax(axis=1), len(classes)
    m = blessing.metrics
    assert m["example_count"] == len(y)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=1e-6)
    assert m["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"), abs=1e-6)
    # Log-loss clips probabilities at 1e-7, as Keras and the binary log-loss do (scikit-learn clips at
    # float64's epsilon: one confidently wrong row weighs 36 there, 16 here).
    assert m["log_loss"] == pytest.approx(np.mean(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1))), abs=1e-6)
    assert m["brier_score"] == pytest.approx(np.mean(np.sum((p - np.eye(k)[y]) ** 2, axis=1)), abs=1e-6)
    assert m["expected_calibration_error"] == pytest.approx(top_class_ece(y, p), abs=1e-6)
    assert m["mean_confidence"] == pytest.approx(p.max(axis=1).mean(), abs=1e-6)
    # TFMA's AUC is computed over 10,000 equal-width threshold buckets: the exact AUC of the scores
    # quantised to those buckets (ties half), here where the wrongly confident row ties at ~0.
    bucketed = np.floor(p * 10000)
    per_class_auc = [roc_auc_score(y == c, bucketed[:, c]) for c in range(k)]
    assert m["macro_auc"] == pytest.approx(np.mean(per_class_auc), abs=1e-4)
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=5e-3)
    precision, recall, f1, _ = precision_recall_fscore_support(y, predicted, labels=list(range(k)))
    assert list(blessing.per_class) == classes
    for c, name in enumerate(classes):
        got = blessing.per_class[name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision[c], recall[c], f1[c]), abs=1e-6)
        assert got["auc"] == pytest.approx(per_class_auc[c], abs=1e-4)
    matrices = ev.multiclass_confusion_matrices(evaluation_dir, k)
    assert matrices["overall"] == confusion_matrix(y, predicted, labels=list(range(k))).tolist()
    for island in ("Biscoe", "Dream"):
        mask = multiclass_reference["island"] == island
        got = blessing.slices["island"][island]
        assert got["example_count"] == mask.sum()
        assert got["accuracy"] == pytest.approx(accuracy_score(y[mask], predicted[mask]), abs=1e-6)
        assert got["macro_f1"] == pytest.approx(f1_score(y[mask], predicted[mask], average="macro"), abs=1e-6)
        assert matrices[f"island={island}"] == confusion_matrix(y[mask], predicted[mask], labels=list(range(k))).tolist()
    # confidence_intervals=False: no figure and no gate has an interval.
    assert not any(blessing.intervals.values())
    assert all(g.lower is None and g.upper is None for g in blessing.gates)


def test_macro_auc_of_a_slice_counts_only_its_classes(multiclass_run, multiclass_reference):
    """Torgersen has Adelie penguins only: TFMA's macro average would count the absent classes as AUC
    0; the slice's macro AUC is undefined instead, and Biscoe's averages the classes it has."""
    from sklearn.metrics import roc_auc_score

    blessing, _, _ = multiclass_run
    y, p, island = multiclass_reference["labels"], multiclass_reference["p"], multiclass_reference["island"]
    assert set(y[island == "Torgersen"]) == {0}
    assert blessing.slices["island"]["Torgersen"]["macro_auc"] is None
    mask = island == "Biscoe"
    present = sorted(set(y[mask]))
    assert len(present) == 2  # no Chinstrap on Biscoe
    expected = np.mean([roc_auc_score(y[mask] == c, p[mask, c]) for c in present])
    assert blessing.slices["island"]["Biscoe"]["macro_auc"] == pytest.approx(expected, abs=2e-3)


def test_multiclass_good_model_passes_every_gate(multiclass_run, classes):
    blessing, evaluation_dir, blessing_dir = multiclass_run
    assert [g.name for g in blessing.gates] == GATES
    assert blessing.blessed, "\n".join(g.detail for g in blessing.gates)
    floor = blessing.gate("metric_floor")
    assert floor.value == pytest.approx(blessing.metrics["macro_auc"]) and floor.threshold == 0.7
    assert floor.detail.startswith("candidate macro AUC")
    assert blessing.gate("no_regression").verdict == "N/A"
    fairness = blessing.gate("fairness")  # the policy's false_negative_rate is binary's: accuracy instead
    assert "island: accuracy gap" in fairness.detail and blessing.fairness_metric == "accuracy"
    island = {v: x["accuracy"] for v, x in blessing.slices["island"].items() if x["example_count"] >= 20}
    assert fairness.value == pytest.approx(max(island.values()) - min(island.values()))
    calibration = blessing.gate("calibration")
    assert calibration.value == pytest.approx(blessing.metrics["expected_calibration_error"])
    assert calibration.threshold == 0.05 and "top-class confidence" in calibration.detail
    baseline = blessing.gate("baseline")
    best = max(blessing.simple_baselines.values(), key=lambda b: b["macro_auc"])
    assert best["name"] == "multinomial_logistic_regression" and blessing.simple_baselines["majority"]["macro_auc"] == 0.5
    assert baseline.value == pytest.approx(blessing.metrics["macro_auc"] - best["macro_auc"])
    record = json.loads(open(os.path.join(blessing_dir, names.BLESSING_FILE)).read())
    assert record["label_kind"] == "multiclass" and record["classes"] == classes
    assert set(record["per_class"]) == set(classes) and record["fairness_metric"] == "accuracy"
    assert read_blessing(blessing_dir).to_dict() == record
    import tensorflow_model_analysis as tfma

    assert tfma.load_validation_result(evaluation_dir).validation_ok  # thresholds on the overall slice only


def test_multiclass_bad_model_is_rejected(multiclass_bad_run):
    """Negated logits rank every class backwards: the floor, the champion and the simple models
    all reject it, and its confidence is wrong."""
    import tensorflow_model_analysis as tfma

    blessing, evaluation_dir, _ = multiclass_bad_run
    assert not blessing.blessed
    failed = {g.name for g in blessing.gates if not g.passed}
    assert {"metric_floor", "no_regression", "calibration", "baseline"} <= failed
    assert blessing.metrics["macro_auc"] < 0.1 and blessing.baseline_metrics["macro_auc"] > 0.9
    regression = blessing.gate("no_regression")
    assert regression.value == pytest.approx(blessing.metrics["macro_auc"] - blessing.baseline_metrics["macro_auc"],
                                             abs=1e-9)
    assert regression.lower < regression.value < regression.upper and "champion v2" in regression.detail
    assert "exceeds margin" in blessing.gate("baseline").detail
    assert not tfma.load_validation_result(evaluation_dir).validation_ok


def test_multiclass_intervals(multiclass_bad_run):
    """TFMA's jackknife intervals (the bad run computes them): every overall figure and the floor
    gate carry one, and a slice's macro AUC recomputed over the classes it has drops TFMA's interval,
    which was of the other figure (Biscoe has no Chinstrap)."""
    blessing, _, _ = multiclass_bad_run
    for key in ("macro_auc", "accuracy", "macro_f1", "expected_calibration_error"):
        interval = blessing.intervals["overall"][key]
        assert interval["lower"] <= blessing.metrics[key] <= interval["upper"], key
    floor = blessing.gate("metric_floor")
    assert floor.lower is not None and floor.lower <= floor.value <= floor.upper
    assert "macro_auc" not in blessing.intervals["island=Biscoe"] and "accuracy" in blessing.intervals["island=Biscoe"]


def test_multiclass_fairness_metric_and_bounds(multiclass_run, tmp_path, classes):
    blessing, evaluation_dir, _ = multiclass_run

    def rebless(**policy):
        return ev.bless(evaluation_dir, str(tmp_path / str(len(os.listdir(tmp_path)))), slices=PENGUIN_SLICES,
                        has_baseline=False, policy=GatePolicy(**policy), label_kind="multiclass", classes=classes)

    by_f1 = rebless(fairness_metric="macro_f1")
    gaps = []
    for column in PENGUIN_SLICES:
        values = [x["macro_f1"] for x in by_f1.slices[column].values() if x["example_count"] >= 20]
        gaps.append(max(values) - min(values))
    assert "island: macro_f1 gap" in by_f1.gate("fairness").detail and by_f1.fairness_metric == "macro_f1"
    assert by_f1.gate("fairness").value == pytest.approx(max(gaps))
    strict = rebless(fairness_max_gap=0.0)
    assert blessing.gate("fairness").value > 0 and not strict.gate("fairness").passed and not strict.blessed
    tight_ece = rebless(max_expected_calibration_error=1e-4)
    assert not tight_ece.gate("calibration").passed and "> 0.0001" in tight_ece.gate("calibration").detail
    high_floor = rebless(auc_floor=0.999)
    assert not high_floor.gate("metric_floor").passed and "< floor 0.999" in high_floor.gate("metric_floor").detail


def test_multiclass_reports(multiclass_run, classes):
    blessing, _, blessing_dir = multiclass_run
    report = open(os.path.join(blessing_dir, ev.FAIRNESS_REPORT_FILE)).read()
    assert f"Label kind: multiclass, classes {', '.join(classes)}" in report
    assert "| value | n | accuracy | macro-F1 | macro AUC | top-class ECE | in gate |" in report
    assert "## Per class (one-vs-rest" in report and f"| {classes[0]} | " in report
    assert f"macro AUC {blessing.metrics['macro_auc']:.4f}" in report
    assert "Simple baseline multinomial_logistic_regression (same splits): macro AUC" in report
    assert "- island=Torgersen:" in report  # 8 rows: skipped
    assert "decision threshold" not in report and "FNR" not in report
    page = open(os.path.join(blessing_dir, ev.FAIRNESS_HTML_FILE)).read()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "Confusion matrix per slice" in page and f"<th>predicted {classes[2]}</th>" in page
    assert "Slice island: accuracy gap" in page and "top-class ECE ≤ 0.05" in page
    assert "macro AUC change vs the best simple model" in page and "ROC curve" not in page


def test_multiclass_component_fills_the_kfp_outputs(penguins, softmax_models, classes, tmp_path):
    """The KFP wrapper: a K x K ClassificationMetrics with the class names, one per slice, the
    primary figures in Metrics; the champion is the candidate itself (change 0)."""
    blessing, outputs = _run_component(penguins, softmax_models["good"], tmp_path, "species", ["island"],
                                       baseline_auc_margin=0.05, **POINT_ONLY)
    assert blessing.label_kind == "multiclass" and blessing.gate("no_regression").value == pytest.approx(0.0, abs=1e-9)
    metrics = outputs[names.EVAL_METRICS].metadata
    for key in ("macro_auc", "accuracy", "macro_f1", "expected_calibration_error"):
        assert metrics[key] == pytest.approx(blessing.metrics[key])
    cm = outputs[names.CLASSIFICATION_METRICS].metadata["confusionMatrix"]
    assert [c["displayName"] for c in cm["annotationSpecs"]] == classes
    matrix = [row["row"] for row in cm["rows"]]
    assert len(matrix) == len(classes) and sum(map(sum, matrix)) == blessing.metrics["example_count"]
    assert sum(matrix[i][i] for i in range(len(classes))) / sum(map(sum, matrix)) == pytest.approx(
        blessing.metrics["accuracy"])
    sliced = {e["slice"]: e["sliceClassificationMetrics"] for e in outputs[names.SLICED_METRICS].metadata["evaluationSlices"]}
    assert set(sliced) == {"overall", "island=Biscoe", "island=Dream", "island=Torgersen"}
    meta = outputs[names.BLESSING].metadata
    assert meta["label_kind"] == "multiclass" and meta["classes"] == classes


def _run_component(examples_dir, model_dir, tmp_path, label, slices, **policy):
    from kfp import dsl

    from components.evaluate.component import evaluate as component

    registry_uri = str(tmp_path / "registry")
    stand_in.champion_registry(registry_uri, "m", "v1", model_dir)
    outputs = stand_in.component_outputs(tmp_path)
    defaults = GatePolicy()
    arguments = {name: getattr(defaults, name) for name in GatePolicy.field_names()} | policy
    component.python_func(examples=dsl.Dataset(uri=examples_dir), model=dsl.Model(uri=model_dir), label=label,
                          slices=slices, registry_uri=registry_uri, model_name="m", beam_args=[],
                          **arguments, **outputs)
    return read_blessing(str(tmp_path / "blessing")), outputs


# ------------------------------------------------------------------------------------------------
# Regression: CPS1985 wages


@pytest.fixture(scope="module")
def wages(tmp_path_factory) -> str:
    return _ingest(tmp_path_factory, "cps1985.csv", "wage", ["gender"])


@pytest.fixture(scope="module")
def linear_models(wages, tmp_path_factory) -> dict[str, str]:
    return stand_in.build_regression_models(wages, str(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def regression_run(wages, linear_models, tmp_path_factory):
    return _evaluate(wages, tmp_path_factory, linear_models["good"], "wage", ["gender"], **POINT_ONLY)


@pytest.fixture(scope="module")
def regression_bad_run(wages, linear_models, tmp_path_factory):
    return _evaluate(wages, tmp_path_factory, linear_models["bad"], "wage", ["gender"],
                     baseline_model_dir=linear_models["good"], baseline_version="v4")


@pytest.fixture(scope="module")
def regression_reference(wages, linear_models):
    records = stand_in.read_examples(split_path(wages, names.EVAL))
    _, labels = stand_in.feature_matrix(records, [], "wage", label_dtype=np.float64)
    values = stand_in.predict(os.path.join(linear_models["good"], names.SAVED_MODEL_DIR), records, output="value")
    return {"labels": labels, "values": values.astype(np.float64), "gender": _slice_values(records, "gender")}


def test_regression_metrics_match_sklearn(regression_run, regression_reference):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    blessing, _, _ = regression_run
    y, v = regression_reference["labels"], regression_reference["values"]
    m = blessing.metrics
    assert blessing.label_kind == "regression" and m["example_count"] == len(y)
    assert m["mean_squared_error"] == pytest.approx(mean_squared_error(y, v), rel=1e-6)
    assert m["root_mean_squared_error"] == pytest.approx(np.sqrt(mean_squared_error(y, v)), rel=1e-6)
    assert m["mean_absolute_error"] == pytest.approx(mean_absolute_error(y, v), rel=1e-6)
    assert m["r2"] == pytest.approx(r2_score(y, v), abs=1e-6)
    assert m["mean_label"] == pytest.approx(y.mean(), rel=1e-6)
    assert m["mean_prediction"] == pytest.approx(v.mean(), rel=1e-6)
    assert m["calibration"] == pytest.approx(v.mean() / y.mean(), rel=1e-6)
    overall_mae = mean_absolute_error(y, v)
    for gender in ("female", "male"):
        mask = regression_reference["gender"] == gender
        got = blessing.slices["gender"][gender]
        assert got["example_count"] == mask.sum()
        assert got["mean_absolute_error"] == pytest.approx(mean_absolute_error(y[mask], v[mask]), rel=1e-6)
        assert got["r2"] == pytest.approx(r2_score(y[mask], v[mask]), abs=1e-6)
        assert got["relative_mean_absolute_error"] == pytest.approx(mean_absolute_error(y[mask], v[mask]) / overall_mae,
                                                                    rel=1e-6)
    assert not any(blessing.intervals.values())  # confidence_intervals=False


def test_regression_good_model_passes_every_gate(regression_run):
    blessing, _, blessing_dir = regression_run
    assert [g.name for g in blessing.gates] == GATES
    assert blessing.blessed, "\n".join(g.detail for g in blessing.gates)
    floor = blessing.gate("metric_floor")
    assert floor.value == pytest.approx(blessing.metrics["r2"]) and floor.threshold == GatePolicy.r2_floor
    assert floor.detail.startswith("candidate R²")
    fairness = blessing.gate("fairness")
    female, male = (blessing.slices["gender"][g]["mean_absolute_error"] for g in ("female", "male"))
    assert fairness.value == pytest.approx(abs(female - male) / blessing.metrics["mean_absolute_error"])
    assert fairness.detail.startswith("gap of the per-slice MAE divided by the overall MAE")
    assert blessing.fairness_metric == "relative_mean_absolute_error"
    calibration = blessing.gate("calibration")
    assert calibration.value == pytest.approx(blessing.metrics["calibration"]) and "calibration of the mean" in calibration.detail
    baseline = blessing.gate("baseline")
    ridge, mean = blessing.simple_baselines["ridge_regression"], blessing.simple_baselines["mean"]
    assert mean["r2"] <= 0 < ridge["r2"]  # the train mean is no better than the eval mean
    assert baseline.value == pytest.approx(blessing.metrics["r2"] - ridge["r2"])
    assert "ridge_regression baseline" in baseline.detail
    record = json.loads(open(os.path.join(blessing_dir, names.BLESSING_FILE)).read())
    assert record["label_kind"] == "regression" and record["classes"] == [] and record["per_class"] == {}


def test_regression_bad_model_is_rejected(regression_bad_run, regression_run):
    blessing, _, _ = regression_bad_run
    good = regression_run[0]
    assert not blessing.blessed and blessing.metrics["r2"] < 0
    for name in ("metric_floor", "no_regression", "baseline"):
        assert not blessing.gate(name).passed, name
    assert blessing.baseline_metrics["r2"] == pytest.approx(good.metrics["r2"], abs=1e-9)
    regression = blessing.gate("no_regression")
    assert regression.value == pytest.approx(blessing.metrics["r2"] - good.metrics["r2"], abs=1e-9)
    assert regression.threshold == GatePolicy.max_r2_regression and regression.lower < regression.value


def test_regression_intervals(regression_bad_run):
    """TFMA's jackknife intervals (the bad run computes them) on the overall figures and the floor."""
    blessing, _, _ = regression_bad_run
    for key in ("r2", "mean_absolute_error", "calibration"):
        interval = blessing.intervals["overall"][key]
        assert interval["lower"] < blessing.metrics[key] < interval["upper"], key
    floor = blessing.gate("metric_floor")
    assert floor.lower < floor.value < floor.upper


def test_regression_gate_bounds(regression_run, tmp_path):
    blessing, evaluation_dir, _ = regression_run

    def rebless(**policy):
        return ev.bless(evaluation_dir, str(tmp_path / str(len(os.listdir(tmp_path)))), slices=["gender"],
                        has_baseline=False, policy=GatePolicy(**policy), label_kind="regression",
                        simple_baselines=blessing.simple_baselines)

    r2 = blessing.metrics["r2"]
    assert not rebless(r2_floor=r2 + 0.01).gate("metric_floor").passed
    assert rebless(r2_floor=r2 - 0.01).gate("metric_floor").passed
    assert r2 > blessing.simple_baselines["ridge_regression"]["r2"]
    assert rebless(baseline_r2_margin=0.0).gate("baseline").passed
    stronger = {"linear": {"name": "linear", "r2": r2 + 0.05}}
    beaten = ev.bless(evaluation_dir, str(tmp_path / "beaten"), slices=["gender"], has_baseline=False,
                      label_kind="regression", simple_baselines=stronger)
    assert not beaten.gate("baseline").passed and "vs linear baseline" in beaten.gate("baseline").detail
    narrow = rebless(calibration_max=blessing.metrics["calibration"] - 0.01)
    assert not narrow.gate("calibration").passed and "outside" in narrow.gate("calibration").detail
    in_wage_units = rebless(fairness_metric="mean_absolute_error")
    female, male = (blessing.slices["gender"][g]["mean_absolute_error"] for g in ("female", "male"))
    assert in_wage_units.gate("fairness").value == pytest.approx(abs(female - male))
    assert not rebless(fairness_max_gap=0.01).gate("fairness").passed


def test_regression_reports(regression_run):
    blessing, _, blessing_dir = regression_run
    report = open(os.path.join(blessing_dir, ev.FAIRNESS_REPORT_FILE)).read()
    assert "Label kind: regression" in report and "each slice's MAE divided by the overall MAE" in report
    assert "| value | n | MAE | MAE / overall MAE | RMSE | R² | mean label | mean prediction | in gate |" in report
    assert f"R² {blessing.metrics['r2']:.4f}, MSE {blessing.metrics['mean_squared_error']:.4f}" in report
    assert "Simple baseline ridge_regression (same splits): R²" in report
    page = open(os.path.join(blessing_dir, ev.FAIRNESS_HTML_FILE)).read()
    assert "Calibration of the mean is mean prediction / mean label" in page
    assert "Slice gender: MAE / overall MAE gap" in page and "ROC curve" not in page and "Confusion" not in page


def test_regression_component_logs_its_figures(wages, linear_models, tmp_path):
    """Metrics holds MSE, MAE and R²; no classification figures for a regression label."""
    blessing, outputs = _run_component(wages, linear_models["good"], tmp_path, "wage", ["gender"], **POINT_ONLY)
    metrics = outputs[names.EVAL_METRICS].metadata
    for key in ("mean_squared_error", "mean_absolute_error", "r2", "calibration"):
        assert metrics[key] == pytest.approx(blessing.metrics[key])
    assert blessing.blessed and blessing.gate("no_regression").value == pytest.approx(0.0, abs=1e-9)
    assert "confusionMatrix" not in outputs[names.CLASSIFICATION_METRICS].metadata
    assert outputs[names.BLESSING].metadata["label_kind"] == "regression"
    assert "R²" in (tmp_path / "report.md").read_text()


# ------------------------------------------------------------------------------------------------
# Without TFMA


def test_tfma_metric_sums_match_sklearn():
    """The combiners' outputs from their sums, on random data, against scikit-learn."""
    from sklearn.metrics import f1_score, log_loss, mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    v = y + rng.normal(size=200) * 0.5
    sums = sum(tfma_metrics._regression_statistics(np.array([a]), np.array([b])) for a, b in zip(y, v))
    figures = tfma_metrics.regression_figures(sums)
    assert figures["r2"] == pytest.approx(r2_score(y, v), abs=1e-9)
    assert figures["mean_squared_error"] == pytest.approx(mean_squared_error(y, v))
    assert figures["mean_absolute_error"] == pytest.approx(mean_absolute_error(y, v))
    labels = rng.integers(0, 3, size=300)
    p = stand_in.softmax(rng.normal(size=(300, 3)) + 2 * np.eye(3)[labels])
    statistics = tfma_metrics._multiclass_statistics(3)
    overall, per_class = tfma_metrics.multiclass_figures(sum(statistics(np.array([a]), b) for a, b in zip(labels, p)), 3)
    assert overall["macro_f1"] == pytest.approx(f1_score(labels, p.argmax(axis=1), average="macro"))
    assert overall["log_loss"] == pytest.approx(log_loss(labels, p), abs=1e-9)
    assert overall["expected_calibration_error"] == pytest.approx(top_class_ece(labels, p))
    assert per_class[1]["f1"] == pytest.approx(f1_score(labels, p.argmax(axis=1), average=None)[1])


def test_simple_baselines_of_the_other_kinds():
    import pandas as pd

    rng = np.random.default_rng(5)

    def frame(n):
        x = rng.normal(size=n)
        colour = rng.choice(["red", "blue"], size=n)
        return pd.DataFrame({"x": x, "colour": colour, "cls": np.digitize(x, [-0.5, 0.5]),
                             "y": 3 * x + np.where(colour == "red", 1.0, -1.0) + rng.normal(size=n) * 0.1})

    train, eval_frame = frame(400), frame(200)
    multi = bl.multiclass_baselines(train, eval_frame, "cls", ["x"], ["colour"], 3)
    assert multi["majority"].figures["macro_auc"] == 0.5 and multi["multinomial_logistic_regression"].figures["macro_auc"] > 0.95
    reg = bl.regression_baselines(train, eval_frame, "y", ["x"], ["colour"])
    assert reg["mean"].figures["r2"] <= 0.01 and reg["ridge_regression"].figures["r2"] > 0.99
    as_dicts = {k: b.to_dict() for k, b in reg.items()}
    assert bl.best_baseline(as_dicts, "regression")["name"] == "ridge_regression"
    assert bl.best_baseline({"logistic_regression": {"name": "logistic_regression", "auc": 0.4},
                             "majority": {"name": "majority", "auc": 0.5}}, "binary")["name"] == "logistic_regression"


def test_kind_resolution_and_policy_fields():
    assert ev.label_kind_of({}) == ("binary", [])  # an artifact from before label kinds
    assert ev.label_kind_of({"label_kind": "multiclass", "classes": ["a", "b", "c"]}) == ("multiclass", ["a", "b", "c"])
    with pytest.raises(PipelineInputError, match="class names"):
        ev.label_kind_of({"label_kind": "multiclass", "classes": []})
    policy = GatePolicy()
    assert ev.effective_fairness_metric(policy, "binary") == "false_negative_rate"
    assert ev.effective_fairness_metric(policy, "multiclass") == "accuracy"
    assert ev.effective_fairness_metric(policy, "regression") == "relative_mean_absolute_error"
    assert ev.effective_fairness_metric(GatePolicy(fairness_metric="macro_f1"), "multiclass") == "macro_f1"
    assert ev.primary_bounds(GatePolicy(r2_floor=0.2, max_r2_regression=0.03, baseline_r2_margin=0.04),
                             "regression") == (0.2, 0.03, 0.04)
    assert ev.primary_bounds(policy, "multiclass") == (policy.auc_floor, policy.max_auc_regression,
                                                       policy.baseline_auc_margin)
    with pytest.raises(PipelineInputError, match="r2_floor"):
        GatePolicy(r2_floor=1.5)
    from components.common.config import PipelineConfig

    assert {"r2_floor", "max_r2_regression", "baseline_r2_margin"} <= set(PipelineConfig.field_names())
    assert gt.PRIMARY_METRIC == {label_kinds.BINARY: "auc", label_kinds.MULTICLASS: "macro_auc",
                                 label_kinds.REGRESSION: "r2"}


def test_regression_calibration_is_not_applicable_around_a_zero_mean():
    gate = gt.regression_calibration_gate({"calibration": -3.0, "mean_label": -0.01, "mean_prediction": 0.03},
                                          gt.Interval(), (0.8, 1.25))
    assert gate.verdict == "N/A" and "mean label" in gate.detail
    ok = gt.regression_calibration_gate({"calibration": 1.1, "mean_label": 2.0, "mean_prediction": 2.2},
                                        gt.Interval(1.0, 1.3), (0.8, 1.25), rule="interval_bound")
    assert ok.verdict == "FAIL" and "interval outside" in ok.detail


def test_a_model_of_another_kind_or_classes_is_refused_before_tfma(penguins, softmax_models, classes, tmp_path):
    import shutil

    model_dir = str(tmp_path / "model")
    shutil.copytree(softmax_models["good"], model_dir)
    info = os.path.join(model_dir, names.MODEL_INFO_FILE)
    for record, message in (({"label_kind": "regression"}, "trained for a regression label"),
                            ({"label_kind": "multiclass", "classes": classes[::-1]}, "learned classes")):
        with open(info, "w") as f:
            json.dump(record, f)
        with pytest.raises(PipelineInputError, match=message):
            ev.evaluate(penguins, model_dir, str(tmp_path / "e"), str(tmp_path / "b"), label="species", slices=[])
        assert not os.path.exists(tmp_path / "e")
