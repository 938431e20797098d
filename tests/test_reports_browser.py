"""What a reviewer sees in the KFP UI, checked in headless Chromium.

Each report comes from a real component run on the committed HMDA sample (the KFP components
called as plain functions, as their own tests do): validate_data on data whose eval split drifts
(lvrat), evaluate with stand-in models against a registry champion, push of the blessed model, a
canary rollout rolled back at its second step (the rollout loop with a scripted target), and the
drift monitor on a prediction log whose lvrat shifted.
The pages are rendered offline; the key figures must be in the rendered DOM and the page must
request nothing over the network. Without Chromium these tests fail ("run `make browser`"),
unless SKIP_BROWSER_TESTS=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pandas as pd
import pytest

from components.common import html_report as hr
from components.common import names
from tests import browser

BEAM_ARGS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
THRESHOLD = 0.15  # decision threshold near the fixture's base rate, as in evaluate's tests
CHAMPION = "v1"


def require_chromium() -> str:
    path = browser.chromium_path()
    if path is None:
        if os.environ.get("SKIP_BROWSER_TESTS") == "1":
            pytest.skip("chromium not installed and SKIP_BROWSER_TESTS=1")
        pytest.fail(f"chromium is not installed: {browser.INSTALL_HINT} (or set SKIP_BROWSER_TESTS=1 to skip)",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_chromium()


def _render(chromium, html_path, tmp_path):
    page = open(html_path, encoding="utf-8").read()
    assert browser.external_references(page) == []
    png = tmp_path / (os.path.basename(str(html_path)) + ".png")
    rendered = browser.render(html_path, screenshot=png)
    assert rendered.page_requests == [], rendered.page_requests
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == browser.WINDOW_SIZE
        # not a blank page: a white page has one colour
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10
    return rendered


# --------------------------------------------------------------------------------------------------
# Component runs


@pytest.fixture(scope="module")
def validation(hmda_csv, tmp_path_factory):
    """validate_data on train = the first 600 rows, eval = the other 200 with lvrat shifted."""
    from kfp import dsl

    from components.common.errors import DataValidationError
    from components.ingest.ingest import ingest
    from components.validate_data.component import validate_data

    tmp = tmp_path_factory.mktemp("validation")
    frame = pd.read_csv(hmda_csv)
    frame.iloc[:600].to_csv(tmp / "train.csv", index=False)
    frame.iloc[600:].assign(lvrat=lambda d: d["lvrat"] * 3 + 2).to_csv(tmp / "eval.csv", index=False)
    ingest(str(tmp / "train.csv"), str(tmp / "examples"), label="deny", key_column="rownames", slices=["afam"],
           eval_data_uri=str(tmp / "eval.csv"))
    outputs = {
        names.STATISTICS: dsl.Artifact(uri=str(tmp / names.STATISTICS)),
        names.SCHEMA: dsl.Artifact(uri=str(tmp / names.SCHEMA)),
        names.ANOMALIES: dsl.Artifact(uri=str(tmp / names.ANOMALIES)),
        names.VALIDATION_REPORT: dsl.Markdown(uri=str(tmp / "report.md")),
        names.VALIDATION_HTML: dsl.HTML(uri=str(tmp / "validation.html")),
    }
    with pytest.raises(DataValidationError, match=r"lvrat \(skew\)"):
        validate_data.python_func(
            examples=dsl.Dataset(uri=str(tmp / "examples")), schema_uri="", registry_uri="", model_name="model",
            skew_jensen_shannon_threshold=0.01, skew_linf_threshold=0.1, drift_jensen_shannon_threshold=0.01,
            drift_linf_threshold=0.1, data_noise_quantile=0.999, beam_args=BEAM_ARGS, **outputs,
        )
    return outputs


@pytest.fixture(scope="module")
def evaluation(examples_dir, tmp_path_factory):
    """evaluate: the stand-in "good" model against a registry whose champion is the "weak" one."""
    from kfp import dsl

    from components.evaluate.component import evaluate
    from components.evaluate.blessing import read_blessing
    from components.evaluate.tests import stand_in
    from components.push import registry

    tmp = tmp_path_factory.mktemp("evaluation")
    models = stand_in.build_models(examples_dir, str(tmp / "models"))
    registry_uri = str(tmp / "registry")
    version_dir = os.path.join(registry.model_root(registry_uri, "hmda"), names.REGISTRY_VERSIONS_DIR, CHAMPION)
    shutil.copytree(os.path.join(models["weak"], names.SAVED_MODEL_DIR),
                    os.path.join(version_dir, names.SAVED_MODEL_DIR))
    with open(registry.champion_pointer_uri(registry_uri, "hmda"), "w") as f:
        json.dump({"version": CHAMPION, "path": f"{names.REGISTRY_VERSIONS_DIR}/{CHAMPION}"}, f)
    outputs = {
        names.EVALUATION: dsl.Artifact(uri=str(tmp / names.EVALUATION)),
        names.BLESSING: dsl.Artifact(uri=str(tmp / names.BLESSING)),
        names.EVAL_METRICS: dsl.Metrics(uri=str(tmp / "metrics")),
        names.FAIRNESS_REPORT: dsl.Markdown(uri=str(tmp / "fairness.md")),
        names.CLASSIFICATION_METRICS: dsl.ClassificationMetrics(uri=str(tmp / "cm")),
        names.FAIRNESS_HTML: dsl.HTML(uri=str(tmp / "fairness.html")),
        names.SLICED_METRICS: dsl.SlicedClassificationMetrics(uri=str(tmp / "sliced")),
    }
    evaluate.python_func(
        examples=dsl.Dataset(uri=examples_dir), model=dsl.Model(uri=models["good"]), label="deny",
        slices=["afam", "phist"], registry_uri=registry_uri, model_name="hmda", auc_floor=0.7,
        max_auc_regression=0.01, fairness_metric="false_negative_rate", fairness_max_gap=0.25,
        decision_threshold=THRESHOLD, min_slice_examples=20, fairness_require_assessment=True,
        calibration_min=0.8, calibration_max=1.25, max_expected_calibration_error=0.05, baseline_auc_margin=0.01,
        gate_rule="point_estimate", beam_args=[], **outputs,
    )
    return {"outputs": outputs, "blessing": read_blessing(str(tmp / names.BLESSING)), "models": models,
            "registry_uri": registry_uri}


@pytest.fixture(scope="module")
def pushed(evaluation, validation, examples_dir, tmp_path_factory):
    """push of the blessed model into the evaluation's registry (parent champion v1).

    Schema and statistics come from the validation run (its train split is clean HMDA rows); the
    transform graph is a stand-in directory: push only copies and hashes it.
    """
    from kfp import dsl

    from components.push.component import push

    tmp = tmp_path_factory.mktemp("push")
    (tmp / "transform_graph" / "transform_fn").mkdir(parents=True)
    (tmp / "transform_graph" / "transform_fn" / "saved_model.pb").write_bytes(b"stand-in")
    outputs = {names.PUSHED_MODEL: dsl.Model(uri=str(tmp / names.PUSHED_MODEL)),
               names.PUSH_REPORT: dsl.Markdown(uri=str(tmp / "push_report.md")),
               names.MODEL_CARD: dsl.Markdown(uri=str(tmp / "model_card.md"))}
    (tmp / names.INFRA_BLESSING).mkdir()
    (tmp / names.INFRA_BLESSING / names.INFRA_BLESSING_FILE).write_text(json.dumps({"blessed": True, "reason": "served"}))
    push.python_func(
        model=dsl.Model(uri=evaluation["models"]["good"]),
        transform_graph=dsl.Artifact(uri=str(tmp / "transform_graph")),
        schema=validation[names.SCHEMA], statistics=validation[names.STATISTICS],
        blessing=evaluation["outputs"][names.BLESSING], examples=dsl.Dataset(uri=examples_dir),
        infra_blessing=dsl.Artifact(uri=str(tmp / names.INFRA_BLESSING)),
        registry_uri=evaluation["registry_uri"], model_name="hmda", code_version="0123abc", **outputs,
    )
    result = json.loads((tmp / names.PUSHED_MODEL / names.PUSH_RESULT_FILE).read_text())
    page = tmp / "push_report.html"
    page.write_text(browser.markdown_page((tmp / "push_report.md").read_text(), "Push"), encoding="utf-8")
    return {"result": result, "page": str(page)}


# --------------------------------------------------------------------------------------------------
# The pages in the browser


def test_validation_report_renders_anomalies_and_train_eval_figures(chromium, validation, tmp_path):
    import tensorflow_data_validation as tfdv

    text = _render(chromium, validation[names.VALIDATION_HTML].path, tmp_path).text
    assert "FAILED" in text and "Anomalies (" in text
    rows = re.search(r"rows per split train (\d+), validation (\d+), eval 200", text)  # validation from train.csv
    assert rows and int(rows[1]) + int(rows[2]) == 600
    report = json.load(open(os.path.join(validation[names.ANOMALIES].path, names.REPORT_JSON_FILE)))
    lvrat = next(d for d in report["distances"] if d["feature"] == "lvrat" and d["check"] == "skew")
    assert lvrat["anomalous"]
    assert f"skew JS {lvrat['value']:.3g} > max(bound {lvrat['bound']:g}, noise {lvrat['noise']:.3g})" in text
    # the figures of every split, from the statistics files
    lows, highs = [], []
    for split in names.SPLITS:
        stats = tfdv.load_stats_binary(os.path.join(validation[names.STATISTICS].path, split, names.STATS_FILE))
        numeric = tfdv.get_feature_stats(stats.datasets[0], tfdv.FeaturePath(["lvrat"])).num_stats
        assert f" {hr.fmt(numeric.mean)} " in text and f" {hr.fmt(numeric.std_dev)} " in text, split
        lows.append(numeric.min)
        highs.append(numeric.max)
    # lvrat's histograms (inline SVG): one panel label per split (cut to 6 characters) and their shared x range
    assert f" {' '.join(s[:6] for s in names.SPLITS)} {min(lows):.4g} {max(highs):.4g} " in text
    for feature in ("afam", "pirat", "hirat", "chist", "insurance"):
        assert feature in text


def test_fairness_report_renders_gates_slices_and_champion(chromium, evaluation, tmp_path):
    blessing = evaluation["blessing"]
    assert blessing.blessed and blessing.baseline_version == CHAMPION
    text = _render(chromium, evaluation["outputs"][names.FAIRNESS_HTML].path, tmp_path).text
    assert "BLESSED all gates passed" in text
    for gate in blessing.gates:
        value = "—" if gate.value is None else hr.fmt(gate.value)
        assert f"{gate.name} PASS {value} " in text, gate.name
    assert f"champion {CHAMPION}" in text and f"champion {CHAMPION} (overall)" in text
    afam = blessing.slices["afam"]
    for value in ("yes", "no"):
        n = int(afam[value]["example_count"])
        assert f"afam={value} {n} {hr.fmt(afam[value]['auc'])} " in text
    low = min(afam["yes"]["false_negative_rate"], afam["no"]["false_negative_rate"])
    assert f"bound min + 0.25 = {hr.fmt(low + 0.25)}" in text
    assert "phist=yes" in text and "skipped:" in text
    # per-slice confusion matrices: the same figures as the SlicedClassificationMetrics output
    sliced = evaluation["outputs"][names.SLICED_METRICS].metadata["evaluationSlices"]
    assert {e["slice"] for e in sliced} >= {"overall", "afam=yes", "afam=no", "phist=yes", "phist=no"}
    for entry in sliced:
        (tn, fp), (fn, tp) = [row["row"] for row in entry["sliceClassificationMetrics"]["confusionMatrix"]["rows"]]
        cells = " ".join(hr.fmt(n) for n in (tn + fp + fn + tp, tn, fp, fn, tp))
        assert f"{entry['slice']} {cells} " in text


def test_push_summary_renders_verdict_gates_and_lineage(chromium, pushed, evaluation, examples_dir, tmp_path):
    result = pushed["result"]
    assert result["pushed"] and result["previous_champion"] == CHAMPION
    text = _render(chromium, pushed["page"], tmp_path).text
    assert f"Push: BLESSED, published {result['version']}" in text
    for gate in evaluation["blessing"].gates:
        assert f"{gate.name} PASS" in text
    metadata = json.load(open(os.path.join(examples_dir, names.EXAMPLES_METADATA_FILE)))
    assert f"data sha256 {metadata['data_sha256']}" in text
    assert f"parent champion {CHAMPION}" in text and "code version 0123abc" in text
    assert f"model version {result['version']}" in text
    assert "Package versions" in text and "tensorflow" in text


def test_canary_analysis_renders_each_step_its_checks_and_the_rollback(chromium, tmp_path):
    from components.deploy import deploy as dep
    from components.deploy.rollout import ROLLED_BACK
    from components.deploy.tests.fakes import FakeTarget, ScriptedObserver
    from components.deploy.tests.test_deploy import local_config, make_registry

    a, b = "v20250101T000000Z-a", "v20250102T000000Z-b"
    registry = make_registry(tmp_path, [a, b], champion=b, previous=a)
    result = dep.run_deploy(local_config(registry, tmp_path), progress=lambda _: None, target=FakeTarget(),
                            observer=ScriptedObserver({50: {"shift": 0.4}}))
    assert result.outcome == ROLLED_BACK and [s.passed for s in result.steps] == [True, False]
    text = _render(chromium, tmp_path / "deploy" / names.REPORT_HTML_FILE, tmp_path).text
    assert f"{ROLLED_BACK} {result.reason}" in text
    for step, verdict in zip(result.steps, ("pass", "breach")):
        f = step.figures
        assert (f"{step.percent}% {f['requests_stable']} / {f['requests_canary']} " in text), step.percent
        # unlabelled traffic: no live AUC figures, and no bound printed for them
        assert f"{f['prediction_psi']:.3f} (≤ {f['psi_bound']:.3f}) — — {verdict}" in text, step.percent
        for check in step.checks:
            assert f"{step.percent}% {check['check']} " in text
    assert "Prediction PSI by step" in text


def test_drift_report_renders_the_decision_and_the_shifted_feature(chromium, tmp_path):
    from components.monitor import config as mcfg
    from components.monitor import monitor as mon
    from components.monitor import report
    from components.monitor.tests import helpers as h

    records = []
    for i, row in enumerate(h.sample_rows(h.hmda_rows(), 2000, seed=1)):
        row["lvrat"] = row["lvrat"] * 1.3 if row["lvrat"] is not None else None
        records.append(h.log_record(i, row, h.probability(row)))
    log = h.write_log(tmp_path / "predictions.jsonl", records)
    result = mon.run_monitor(mcfg.MonitorConfig(log_uri=str(log), registry_uri=h.make_registry(tmp_path / "r")))
    assert result.decision == mcfg.ACT and result.triggered[0] == "lvrat"
    page = tmp_path / "drift.html"
    page.write_text(report.report_html(result))
    text = _render(chromium, page, tmp_path).text
    assert "Decision: ACT" in text and f"{result.counts.used} predictions" in text
    lvrat_psi = next(r for r in result.rows if r.feature == "lvrat" and r.statistic == "psi")
    assert f"lvrat numeric psi {hr.fmt(lvrat_psi.value)}" in text


# --------------------------------------------------------------------------------------------------
# The checks themselves


def test_a_remote_resource_is_caught_statically_and_in_the_browser(chromium, tmp_path):
    page = tmp_path / "remote.html"
    page.write_text('<!DOCTYPE html><html><head><style>body{background:url("https://example.invalid/bg.png")}'
                    '</style></head><body><p>x</p><img src="https://example.invalid/a.png"></body></html>')
    assert browser.external_references(page.read_text()) == [
        "https://example.invalid/a.png", "https://example.invalid/bg.png"]
    rendered = browser.render(page)
    assert "https://example.invalid/a.png" in rendered.page_requests
    assert rendered.text == "x"


def test_missing_chromium_fails_with_the_install_hint_unless_skipping(monkeypatch):
    monkeypatch.setattr(browser, "chromium_path", lambda: None)
    monkeypatch.delenv("SKIP_BROWSER_TESTS", raising=False)
    with pytest.raises(pytest.fail.Exception, match="run `make browser`"):
        require_chromium()
    monkeypatch.setenv("SKIP_BROWSER_TESTS", "1")
    with pytest.raises(pytest.skip.Exception):
        require_chromium()
    with pytest.raises(browser.BrowserMissing, match="make browser"):
        browser.render("nowhere.html")
