"""Evaluate: real TFMA runs (Beam DirectRunner/FnApiRunner) on the HMDA fixture's eval split.

Three TFMA runs are shared module-wide: a good candidate alone, an inverted (bad) candidate against
the good model as champion, and a weak candidate against the good champion. Gate variants that only
change the fairness policy re-apply the gates to a real TFMA output with `bless`. The bad run and
the component's run skip TFMA's jackknife intervals (confidence_intervals=False: most of TFMA's
time), as their tests judge point estimates only; the good and weak runs keep them for the tests of
the recorded intervals, the fairness gap's interval and the interval_bound rule.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from components.common import names
from components.common.errors import PipelineInputError
from components.evaluate import evaluate as ev
from components.evaluate.blessing import read_blessing
from components.evaluate.tests import stand_in
from components.ingest.ingest import split_path

SLICES = ["afam", "phist"]  # phist=yes has ~10 eval rows: below min_slice_examples=20
THRESHOLD = 0.15  # near the base rate (~0.11): both error rates informative, FNR gap 0.2
METRIC_KEYS = {
    "auc", "accuracy", "precision", "recall", "calibration", "example_count",
    "false_positive_rate", "false_negative_rate", "brier_score", "log_loss", "expected_calibration_error",
}
GATES = ["metric_floor", "no_regression", "fairness", "calibration", "baseline"]


@pytest.fixture(scope="module")
def models(examples_dir, tmp_path_factory) -> dict[str, str]:
    return stand_in.build_models(examples_dir, str(tmp_path_factory.mktemp("models")))


def _run(examples_dir, tmp_path_factory, model_dir, **kwargs):
    out = tmp_path_factory.mktemp("evaluate")
    blessing = ev.evaluate(
        examples_dir,
        model_dir,
        str(out / "evaluation"),
        str(out / "blessing"),
        label="deny",
        slices=SLICES,
        decision_threshold=THRESHOLD,
        **kwargs,
    )
    return blessing, str(out / "evaluation"), str(out / "blessing")


@pytest.fixture(scope="module")
def good_run(examples_dir, models, tmp_path_factory):
    return _run(examples_dir, tmp_path_factory, models["good"])


@pytest.fixture(scope="module")
def bad_vs_champion_run(examples_dir, models, tmp_path_factory):
    return _run(
        examples_dir, tmp_path_factory, models["bad"],
        baseline_model_dir=os.path.join(models["good"], names.SAVED_MODEL_DIR), baseline_version="v7",
        confidence_intervals=False,
    )


@pytest.fixture(scope="module")
def weak_vs_champion_run(examples_dir, models, tmp_path_factory):
    # The floor is lowered so only the regression against the champion can fail.
    return _run(
        examples_dir, tmp_path_factory, models["weak"], auc_floor=0.55,
        baseline_model_dir=models["good"], baseline_version="v7",
    )


@pytest.fixture(scope="module")
def reference(examples_dir, models):
    """Independent reference: the SavedModel run directly on the eval split, metrics in numpy."""
    records = stand_in.read_examples(split_path(examples_dir, names.EVAL))
    _, labels = stand_in.feature_matrix(records, [], "deny")
    import tensorflow as tf

    afam = np.array([
        tf.train.Example.FromString(r).features.feature["afam"].bytes_list.value[0].decode()
        for r in records
    ])
    phist = np.array([
        tf.train.Example.FromString(r).features.feature["phist"].bytes_list.value[0].decode()
        for r in records
    ])
    scores = stand_in.predict(os.path.join(models["good"], names.SAVED_MODEL_DIR), records)
    return {"labels": labels, "scores": scores, "afam": afam, "phist": phist}


def numpy_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic, ties counted one half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def numpy_rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = scores > threshold
    tp = np.sum(predicted & (labels == 1))
    fn = np.sum(~predicted & (labels == 1))
    fp = np.sum(predicted & (labels == 0))
    tn = np.sum(~predicted & (labels == 0))
    return {
        "false_negative_rate": fn / (fn + tp),
        "false_positive_rate": fp / (fp + tn),
        "accuracy": (tp + tn) / len(labels),
    }


# ------------------------------------------------------------------------------------------------
# Good model, no champion


def test_good_model_is_blessed_with_all_gates(good_run):
    blessing, _, blessing_dir = good_run
    assert [g.name for g in blessing.gates] == GATES
    assert all(g.passed for g in blessing.gates), "\n".join(g.detail for g in blessing.gates)
    assert blessing.blessed is True
    floor = blessing.gate("metric_floor")
    assert floor.threshold == 0.7 and floor.value == pytest.approx(blessing.metrics["auc"])
    assert floor.rule == "point_estimate" and floor.n == blessing.metrics["example_count"]
    assert floor.lower < floor.value < floor.upper  # TFMA's jackknife interval
    regression = blessing.gate("no_regression")
    assert regression.verdict == "N/A" and regression.detail.startswith("not applicable: no champion")
    assert blessing.baseline_metrics is None and blessing.baseline_version is None
    assert set(blessing.slices["afam"]) == {"yes", "no"}
    counts = [blessing.slices["afam"][v]["example_count"] for v in ("yes", "no")]
    assert sum(counts) == blessing.metrics["example_count"] and min(counts) >= 20
    assert blessing.evaluation_seconds > 0


def test_blessing_json_has_the_contract_shape(good_run):
    blessing, _, blessing_dir = good_run
    with open(os.path.join(blessing_dir, names.BLESSING_FILE)) as f:
        record = json.load(f)
    assert set(record) == {
        "blessed", "gates", "metrics", "baseline_metrics", "baseline_version", "slices",
        "skipped_slices", "evaluation_seconds", "intervals", "simple_baselines", "calibration_curves",
        "decision_threshold", "bias_metrics",
    }
    assert record == json.loads(json.dumps(blessing.to_dict()))
    assert record["blessed"] is True
    for gate in record["gates"]:
        assert set(gate) == {"name", "passed", "applicable", "value", "lower", "upper", "n", "rule",
                             "threshold", "detail"}
        assert isinstance(gate["passed"], bool) and isinstance(gate["threshold"], float)
    assert METRIC_KEYS <= set(record["metrics"])
    assert METRIC_KEYS <= set(record["slices"]["afam"]["yes"])
    assert read_blessing(blessing_dir).to_dict() == record


def test_metrics_match_an_independent_numpy_computation(good_run, reference):
    blessing, _, _ = good_run
    labels, scores = reference["labels"], reference["scores"]
    assert blessing.metrics["example_count"] == len(labels)
    assert blessing.metrics["auc"] == pytest.approx(numpy_auc(scores, labels), abs=1e-2)
    rates = numpy_rates(scores, labels, THRESHOLD)
    for key, value in rates.items():
        assert blessing.metrics[key] == pytest.approx(value, abs=1e-2), key
    assert blessing.metrics["mean_label"] == pytest.approx(labels.mean(), abs=1e-6)
    assert blessing.metrics["calibration"] == pytest.approx(scores.mean() / labels.mean(), abs=1e-2)
    from components.train import calibration

    expected = calibration.summary(scores, labels)  # the figures train reports on validation
    for key in ("brier_score", "log_loss", "expected_calibration_error"):
        assert blessing.metrics[key] == pytest.approx(expected[key], abs=1e-4), key
    for value in ("yes", "no"):
        mask = reference["afam"] == value
        got = blessing.slices["afam"][value]
        assert got["example_count"] == mask.sum()
        assert got["auc"] == pytest.approx(numpy_auc(scores[mask], labels[mask]), abs=1e-2)
        expected = numpy_rates(scores[mask], labels[mask], THRESHOLD)
        assert got["false_negative_rate"] == pytest.approx(expected["false_negative_rate"], abs=1e-2)
        assert got["false_positive_rate"] == pytest.approx(expected["false_positive_rate"], abs=1e-2)


def test_small_slice_is_skipped_and_listed(good_run, reference):
    blessing, _, _ = good_run
    n_yes = int((reference["phist"] == "yes").sum())
    assert 0 < n_yes < 20  # the fixture property this test relies on
    skipped = {s["slice"]: s for s in blessing.skipped_slices}
    assert "phist=yes" in skipped
    assert skipped["phist=yes"]["example_count"] == n_yes
    assert "min_slice_examples 20" in skipped["phist=yes"]["reason"]
    # Still reported per slice, only left out of the fairness comparison.
    assert blessing.slices["phist"]["yes"]["example_count"] == n_yes
    assert "phist: fewer than 2 slice values eligible" in blessing.gate("fairness").detail
    assert "afam=yes" not in skipped and "afam=no" not in skipped


def test_tfma_outputs_load(good_run):
    import tensorflow_model_analysis as tfma

    _, evaluation_dir, _ = good_run
    result = tfma.load_eval_result(evaluation_dir)
    slice_names = {key for key, _ in result.slicing_metrics}
    assert () in slice_names and (("afam", "yes"),) in slice_names
    assert tfma.load_validation_result(evaluation_dir).validation_ok


def test_fairness_report_markdown(good_run):
    blessing, _, blessing_dir = good_run
    with open(os.path.join(blessing_dir, ev.FAIRNESS_REPORT_FILE)) as f:
        report = f.read()
    assert "| value | n | AUC | FPR | FNR | accuracy | in gate |" in report
    assert "<= 0.25" in report  # the bound
    afam = blessing.slices["afam"]
    gap = abs(afam["yes"]["false_negative_rate"] - afam["no"]["false_negative_rate"])
    assert f"## Slice `afam`: false_negative_rate gap {gap:.4f}" in report
    for name in ("metric_floor", "fairness", "calibration", "baseline"):
        assert f"- **{name}**: PASS" in report
    assert "- **no_regression**: N/A" in report
    assert "Simple baseline logistic_regression (same splits): AUC" in report
    assert "- phist=yes:" in report


def test_fairness_html_has_gates_slices_and_per_slice_confusion(good_run):
    blessing, evaluation_dir, blessing_dir = good_run
    page = open(os.path.join(blessing_dir, ev.FAIRNESS_HTML_FILE)).read()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "BLESSED" in page and "No champion in the registry" in page
    for gate in blessing.gates:
        assert f"<td>{gate.name}</td>" in page
    afam = blessing.slices["afam"]
    gap = abs(afam["yes"]["false_negative_rate"] - afam["no"]["false_negative_rate"])
    assert f"Slice afam: FNR gap {gap:.4f} ≤ 0.25" in page
    # the bound line: lowest FNR + the allowed gap, drawn in the bar chart
    bound = min(afam["yes"]["false_negative_rate"], afam["no"]["false_negative_rate"]) + 0.25
    assert f"bound min + 0.25 = {bound:.4f}</text>" in page
    assert "skipped: " in page and "phist=yes" in page  # the small slice, shown and marked
    curves = ev.classification_curves(evaluation_dir, THRESHOLD)
    assert list(curves)[:1] == ["overall"] and {"afam=yes", "afam=no", "phist=yes", "phist=no"} <= set(curves)
    (tn, fp), (fn, tp) = curves["afam=yes"]["confusion_matrix"]
    assert tn + fp + fn + tp == afam["yes"]["example_count"]
    assert f"<td>afam=yes</td><td class=\"num\">{tn + fp + fn + tp}</td><td class=\"num\">{tn}</td>" in page


def test_fairness_html_compares_with_the_champion(bad_vs_champion_run):
    blessing, _, blessing_dir = bad_vs_champion_run
    page = open(os.path.join(blessing_dir, ev.FAIRNESS_HTML_FILE)).read()
    assert "NOT BLESSED" in page and "failed gates: metric_floor, no_regression" in page
    assert "<th>champion v7</th>" in page and "champion v7 (overall)" in page  # table and ROC legend
    change = blessing.metrics["auc"] - blessing.baseline_metrics["auc"]
    assert f"{change:+.4f}" in page


def test_tight_fairness_bound_fails_and_names_the_gap(good_run, tmp_path):
    blessing, evaluation_dir, _ = good_run
    afam = blessing.slices["afam"]
    gap = abs(afam["yes"]["false_negative_rate"] - afam["no"]["false_negative_rate"])
    assert gap > 0
    strict = ev.bless(
        evaluation_dir, str(tmp_path), slices=SLICES, has_baseline=False,
        policy=ev.GatePolicy(fairness_max_gap=0.0, decision_threshold=THRESHOLD),
    )
    fairness = strict.gate("fairness")
    assert fairness.passed is False and strict.blessed is False
    assert fairness.value == pytest.approx(gap) and fairness.threshold == 0.0
    assert f"afam: false_negative_rate gap {gap:.4f}" in fairness.detail and "> 0" in fairness.detail
    assert strict.gate("metric_floor").passed and strict.gate("no_regression").passed
    assert json.loads((tmp_path / names.BLESSING_FILE).read_text())["blessed"] is False
    assert "- **fairness**: FAIL" in (tmp_path / ev.FAIRNESS_REPORT_FILE).read_text()


def test_fairness_metric_is_configurable(good_run, tmp_path):
    blessing, evaluation_dir, _ = good_run
    afam = blessing.slices["afam"]
    gap = abs(afam["yes"]["auc"] - afam["no"]["auc"])
    by_auc = ev.bless(evaluation_dir, str(tmp_path), slices=["afam"], has_baseline=False,
                      policy=ev.GatePolicy(fairness_metric="auc", fairness_max_gap=gap / 2,
                                           decision_threshold=THRESHOLD))
    assert by_auc.gate("fairness").value == pytest.approx(gap)
    assert by_auc.gate("fairness").passed is False


def test_min_slice_examples_above_a_slice_skips_it(good_run, tmp_path):
    blessing, evaluation_dir, _ = good_run
    n_yes = int(blessing.slices["afam"]["yes"]["example_count"])
    relaxed = ev.bless(
        evaluation_dir, str(tmp_path), slices=["afam"], has_baseline=False,
        policy=ev.GatePolicy(fairness_max_gap=0.0, min_slice_examples=n_yes + 1, decision_threshold=THRESHOLD),
    )
    skipped = {s["slice"]: s for s in relaxed.skipped_slices}
    assert skipped["afam=yes"]["example_count"] == n_yes
    assert f"{n_yes} examples < min_slice_examples {n_yes + 1}" == skipped["afam=yes"]["reason"]
    fairness = relaxed.gate("fairness")
    # One eligible value left: no gap to compare. An unmeasured gap is not a small one: fail closed.
    assert fairness.value is None and not fairness.passed and fairness.applicable and not relaxed.blessed
    assert fairness.detail.startswith("not assessed, failed closed (fairness_require_assessment)")
    lenient = ev.bless(
        evaluation_dir, str(tmp_path / "lenient"), slices=["afam"], has_baseline=False,
        policy=ev.GatePolicy(fairness_max_gap=0.0, min_slice_examples=n_yes + 1, fairness_require_assessment=False,
                             decision_threshold=THRESHOLD),
    )
    assert lenient.gate("fairness").passed and "fairness_require_assessment is off" in lenient.gate("fairness").detail


def test_no_slice_column_makes_the_fairness_gate_not_applicable(good_run, tmp_path):
    _, evaluation_dir, _ = good_run
    blessing = ev.bless(evaluation_dir, str(tmp_path), slices=[], has_baseline=False,
                        policy=ev.GatePolicy(decision_threshold=THRESHOLD))
    fairness = blessing.gate("fairness")
    assert not fairness.applicable and fairness.verdict == "N/A" and fairness.detail.startswith("not applicable")
    assert blessing.to_dict()["gates"][GATES.index("fairness")]["applicable"] is False
    assert "**fairness**: N/A" in (tmp_path / ev.FAIRNESS_REPORT_FILE).read_text()


def test_fairness_gap_interval_and_the_interval_rule(good_run, tmp_path):
    """The gap's interval comes from the two slice values' standard errors; interval_bound judges
    its upper end, so a bound between the gap and that end passes on the point estimate only."""
    blessing, evaluation_dir, _ = good_run
    fairness = blessing.gate("fairness")
    assert fairness.lower < fairness.value < fairness.upper
    assert fairness.n == sum(blessing.slices["afam"][v]["example_count"] for v in ("yes", "no"))
    bound = (fairness.value + fairness.upper) / 2
    by_point = ev.bless(evaluation_dir, str(tmp_path / "p"), slices=["afam"], has_baseline=False,
                        policy=ev.GatePolicy(fairness_max_gap=bound, decision_threshold=THRESHOLD))
    by_interval = ev.bless(evaluation_dir, str(tmp_path / "i"), slices=["afam"], has_baseline=False,
                           policy=ev.GatePolicy(fairness_max_gap=bound, decision_threshold=THRESHOLD,
                                                gate_rule="interval_bound"))
    assert by_point.gate("fairness").passed and not by_interval.gate("fairness").passed
    assert by_interval.gate("fairness").rule == "interval_bound" and "interval bound" in by_interval.gate("fairness").detail
    floor = by_interval.gate("metric_floor")
    assert floor.passed == (floor.lower >= 0.7) and "interval bound" in floor.detail


def test_calibration_gate_band_and_ece(good_run, tmp_path):
    """The stand-in is a logistic fit on these rows: calibrated (mean prediction = positive rate).
    A band that excludes 1.0 is refused; a tiny ECE bound fails the gate and says so."""
    blessing, evaluation_dir, blessing_dir = good_run
    gate = blessing.gate("calibration")
    assert gate.passed and gate.value == pytest.approx(1.0, abs=0.05)
    assert "expected calibration error" in gate.detail
    strict = ev.bless(evaluation_dir, str(tmp_path), slices=["afam"], has_baseline=False,
                      policy=ev.GatePolicy(max_expected_calibration_error=1e-6, decision_threshold=THRESHOLD))
    assert not strict.gate("calibration").passed and not strict.blessed
    assert "> 1e-06" in strict.gate("calibration").detail
    with pytest.raises(PipelineInputError, match="calibration band"):
        ev.GatePolicy(calibration_min=1.1)
    curve = blessing.calibration_curves["overall"]
    assert sum(n for _, _, n in curve) == blessing.metrics["example_count"]
    assert "mean predicted probability" in open(os.path.join(blessing_dir, ev.FAIRNESS_HTML_FILE)).read()


def test_baseline_gate_compares_with_a_logistic_regression_on_the_same_splits(good_run, weak_vs_champion_run):
    """The good stand-in (fitted on the eval rows) beats a logistic regression fitted on train; the
    weak one (three features) does not, by more than the margin."""
    good, _, _ = good_run
    weak, _, _ = weak_vs_champion_run
    lr = good.simple_baselines["logistic_regression"]
    assert good.simple_baselines["majority"]["auc"] == 0.5 and 0.5 < lr["auc"] < 1
    assert good.gate("baseline").passed
    assert good.gate("baseline").value == pytest.approx(good.metrics["auc"] - lr["auc"])
    gate = weak.gate("baseline")
    assert gate.passed == (weak.metrics["auc"] >= lr["auc"] - 0.01)
    assert "logistic_regression baseline" in gate.detail
    # unpaired interval of the change: the candidate's jackknife se and the baseline's DeLong se
    good_gate = good.gate("baseline")
    se_candidate = good.intervals["overall"]["auc"]["standard_error"]
    half = 1.959964 * (se_candidate ** 2 + lr["auc_standard_error"] ** 2) ** 0.5
    assert good_gate.lower == pytest.approx(good_gate.value - half) and good_gate.upper == pytest.approx(good_gate.value + half)


def test_bias_metrics_match_fairlearn(good_run, reference):
    """Accuracy, recall, specificity and positive-proportion differences per afam value equal
    Fairlearn's MetricFrame on the same predictions (the stand-in SavedModel run directly)."""
    from fairlearn.metrics import MetricFrame, selection_rate
    from sklearn.metrics import accuracy_score, recall_score

    blessing, _, blessing_dir = good_run
    labels, predicted = reference["labels"].astype(int), (reference["scores"] > THRESHOLD).astype(int)

    def specificity(y, p):
        return recall_score(y, p, pos_label=0)

    frame = MetricFrame(metrics={"accuracy": accuracy_score, "recall": recall_score, "specificity": specificity,
                                 "positive_proportion": selection_rate},
                        y_true=labels, y_pred=predicted, sensitive_features=reference["afam"])
    ours = blessing.bias_metrics["afam"]
    expected = frame.difference(method="between_groups")
    for metric in ("accuracy", "recall", "specificity", "positive_proportion"):
        assert ours["difference"][metric] == pytest.approx(expected[metric], abs=1e-9), metric
        for value in ("yes", "no"):
            assert ours["by_value"][value][metric] == pytest.approx(frame.by_group[metric][value], abs=1e-9)
    assert "Bias metrics at threshold" in open(os.path.join(blessing_dir, ev.FAIRNESS_REPORT_FILE)).read()


# ------------------------------------------------------------------------------------------------
# Champions


def test_bad_model_fails_the_metric_floor(bad_vs_champion_run):
    import tensorflow_model_analysis as tfma

    blessing, evaluation_dir, blessing_dir = bad_vs_champion_run
    floor = blessing.gate("metric_floor")
    assert floor.passed is False and floor.value < 0.5
    assert "< floor 0.7" in floor.detail
    assert blessing.blessed is False
    # One TFMA pass computed the champion's metrics too.
    assert blessing.baseline_version == "v7"
    assert blessing.baseline_metrics["auc"] > 0.7
    assert blessing.baseline_metrics["auc"] == pytest.approx(1 - floor.value, abs=1e-2)
    assert blessing.gate("no_regression").passed is False
    assert not tfma.load_validation_result(evaluation_dir).validation_ok
    record = json.loads(open(os.path.join(blessing_dir, names.BLESSING_FILE)).read())
    assert record["blessed"] is False and record["baseline_version"] == "v7"


def test_confidence_intervals_off_records_point_estimates_only(bad_vs_champion_run):
    """TFMA computed no interval: no gate records one, TFMA's thresholds judged the point estimates,
    and the report says so."""
    blessing, _, blessing_dir = bad_vs_champion_run
    assert all(g.lower is None and g.upper is None for g in blessing.gates)
    assert all(g["lower"] is None and g["upper"] is None for g in blessing.to_dict()["gates"])
    assert not any(blessing.intervals.values())
    assert "value threshold (on the point estimate) failed" in blessing.gate("metric_floor").detail
    assert "change threshold (on the point estimate) failed" in blessing.gate("no_regression").detail
    assert "no intervals were computed (confidence_intervals off)" in \
        open(os.path.join(blessing_dir, ev.FAIRNESS_REPORT_FILE)).read()


def test_regression_against_a_better_champion_fails(weak_vs_champion_run, good_run):
    blessing, _, _ = weak_vs_champion_run
    good_auc = good_run[0].metrics["auc"]
    assert blessing.gate("metric_floor").passed  # floor 0.55
    regression = blessing.gate("no_regression")
    assert regression.passed is False and blessing.blessed is False
    assert blessing.baseline_metrics["auc"] == pytest.approx(good_auc, abs=1e-6)
    assert regression.value == pytest.approx(blessing.metrics["auc"] - good_auc, abs=1e-9)
    assert regression.value < -0.01 and regression.threshold == 0.01
    assert regression.lower < regression.value < regression.upper  # TFMA's interval of the AUC diff
    assert "champion v7" in regression.detail and "change threshold (on its interval's bound) failed" in regression.detail


# ------------------------------------------------------------------------------------------------
# Input errors (raised before any Beam work)


def test_missing_label_is_an_input_error(examples_dir, models, tmp_path):
    with pytest.raises(PipelineInputError, match="label 'nope'"):
        ev.evaluate(examples_dir, models["good"], str(tmp_path / "e"), str(tmp_path / "b"),
                    label="nope", slices=["afam"])


def test_missing_slice_is_an_input_error(examples_dir, models, tmp_path):
    with pytest.raises(PipelineInputError, match="slice 'race'"):
        ev.evaluate(examples_dir, models["good"], str(tmp_path / "e"), str(tmp_path / "b"),
                    label="deny", slices=["afam", "race"])


def test_missing_model_dir_is_a_clear_error(examples_dir, tmp_path):
    missing = str(tmp_path / "no-model")
    with pytest.raises(PipelineInputError, match=f"model directory {missing} does not exist"):
        ev.evaluate(examples_dir, missing, str(tmp_path / "e"), str(tmp_path / "b"),
                    label="deny", slices=["afam"])
    os.makedirs(missing)
    with pytest.raises(PipelineInputError, match="holds no SavedModel"):
        ev.evaluate(examples_dir, missing, str(tmp_path / "e"), str(tmp_path / "b"),
                    label="deny", slices=["afam"])


def test_missing_champion_model_is_a_clear_error(examples_dir, models, tmp_path):
    with pytest.raises(PipelineInputError, match="baseline"):
        ev.evaluate(examples_dir, models["good"], str(tmp_path / "e"), str(tmp_path / "b"),
                    label="deny", slices=["afam"], baseline_model_dir=str(tmp_path / "gone"))


def test_model_threshold_needs_a_model_that_recorded_one(examples_dir, models, tmp_path):
    """decision_threshold 0 means the one train chose on validation; a model without model_info.json
    (the stand-ins) cannot supply it."""
    with pytest.raises(PipelineInputError, match="records no decision threshold"):
        ev.evaluate(examples_dir, models["good"], str(tmp_path / "e"), str(tmp_path / "b"),
                    label="deny", slices=["afam"], decision_threshold=0.0)


def test_interval_rule_without_intervals_is_an_input_error(examples_dir, models, tmp_path):
    """interval_bound judges by the intervals that confidence_intervals=False turns off."""
    with pytest.raises(PipelineInputError, match="interval_bound judges by TFMA's intervals"):
        ev.evaluate(examples_dir, models["good"], str(tmp_path / "e"), str(tmp_path / "b"), label="deny",
                    slices=["afam"], decision_threshold=THRESHOLD, gate_rule="interval_bound",
                    confidence_intervals=False)
    assert not os.path.exists(tmp_path / "e")


def test_default_beam_args_pin_the_local_runner():
    assert ev.effective_beam_args(None) == list(ev.FAST_DIRECT_BEAM_ARGS)
    assert ev.effective_beam_args([]) == list(ev.FAST_DIRECT_BEAM_ARGS)
    assert ev.effective_beam_args(["--runner=DataflowRunner"]) == ["--runner=DataflowRunner"]


# ------------------------------------------------------------------------------------------------
# KFP component


def test_component_interface_uses_the_shared_names():
    from components.evaluate.component import evaluate as component

    spec = component.component_spec
    assert {names.EXAMPLES, names.MODEL} <= set(spec.inputs)
    assert {names.EVALUATION, names.BLESSING, names.EVAL_METRICS, names.FAIRNESS_REPORT,
            names.CLASSIFICATION_METRICS, names.FAIRNESS_HTML, names.SLICED_METRICS} == set(spec.outputs)
    assert spec.outputs[names.SLICED_METRICS].type == "system.SlicedClassificationMetrics@0.0.1"
    assert spec.outputs[names.FAIRNESS_HTML].type == "system.HTML@0.0.1"
    for parameter in ("label", "slices", "registry_uri", "model_name", "auc_floor",
                      "max_auc_regression", "fairness_metric", "fairness_max_gap",
                      "decision_threshold", "min_slice_examples", "calibration_min", "calibration_max",
                      "max_expected_calibration_error", "baseline_auc_margin", "gate_rule", "beam_args"):
        assert parameter in spec.inputs
    # The optional policy parameters default to GatePolicy's (their defaults are written there too).
    for parameter in ("r2_floor", "max_r2_regression", "baseline_r2_margin", "confidence_intervals"):
        assert spec.inputs[parameter].default == getattr(ev.GatePolicy, parameter), parameter


def test_component_runs_against_the_registry_champion(examples_dir, models, tmp_path):
    """The KFP wrapper finds the champion via the registry and fills all its outputs."""
    from kfp import dsl

    from components.evaluate.component import evaluate as component

    registry_uri = str(tmp_path / "registry")
    stand_in.champion_registry(registry_uri, "hmda", "v3", models["good"])
    outputs = stand_in.component_outputs(tmp_path)
    component.python_func(
        examples=dsl.Dataset(uri=examples_dir), model=dsl.Model(uri=models["good"]),
        label="deny", slices=["afam"], registry_uri=registry_uri, model_name="hmda",
        auc_floor=0.7, max_auc_regression=0.01, fairness_metric="false_negative_rate",
        fairness_max_gap=0.25, decision_threshold=THRESHOLD, min_slice_examples=20, fairness_require_assessment=True,
        calibration_min=0.8, calibration_max=1.25, max_expected_calibration_error=0.05, baseline_auc_margin=0.01,
        gate_rule="point_estimate", confidence_intervals=False, beam_args=[],
        **outputs,
    )
    blessing = read_blessing(str(tmp_path / "blessing"))
    # Same model as the champion: change 0, within the allowed drop.
    assert blessing.baseline_version == "v3" and blessing.blessed
    assert blessing.gate("no_regression").value == pytest.approx(0.0, abs=1e-9)
    meta = outputs[names.BLESSING].metadata
    assert meta["blessed"] is True and meta["baseline_version"] == "v3"
    assert [g["name"] for g in meta["gates"]] == GATES
    assert all(g["lower"] is None for g in meta["gates"])  # confidence_intervals=False reached TFMA
    assert outputs[names.EVAL_METRICS].metadata["auc"] == pytest.approx(blessing.metrics["auc"])
    assert "| value | n | AUC | FPR | FNR | accuracy | in gate |" in (tmp_path / "report.md").read_text()
    cm = outputs[names.CLASSIFICATION_METRICS].metadata
    matrix = [row["row"] for row in cm["confusionMatrix"]["rows"]]
    assert sum(map(sum, matrix)) == blessing.metrics["example_count"]
    tn, fp = matrix[0]
    assert fp / (fp + tn) == pytest.approx(blessing.metrics["false_positive_rate"], abs=1e-6)
    roc = cm["confidenceMetrics"]
    assert len(roc) >= 20 and {"falsePositiveRate", "recall", "confidenceThreshold"} <= set(roc[0])
    # One ClassificationMetrics per slice, in the schema of kfp's SlicedClassificationMetrics
    sliced = {e["slice"]: e["sliceClassificationMetrics"]
              for e in outputs[names.SLICED_METRICS].metadata["evaluationSlices"]}
    assert set(sliced) == {"overall", "afam=yes", "afam=no"}
    assert sliced["overall"] == cm
    for value in ("yes", "no"):
        per_slice = sliced[f"afam={value}"]
        (tn, fp), (fn, tp) = [row["row"] for row in per_slice["confusionMatrix"]["rows"]]
        assert tn + fp + fn + tp == blessing.slices["afam"][value]["example_count"]
        assert fn / (fn + tp) == pytest.approx(blessing.slices["afam"][value]["false_negative_rate"], abs=1e-6)
        assert [r["confidenceThreshold"] for r in per_slice["confidenceMetrics"]] == \
            [r["confidenceThreshold"] for r in roc]
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "champion v3" in page
    assert outputs[names.FAIRNESS_HTML].metadata["blessed"] is True
