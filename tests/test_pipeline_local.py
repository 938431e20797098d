"""The whole pipeline on this machine with kfp.local: real data, real TFDV/TFT/Keras/TFMA, real registry."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from components.common import names
from components.common.config import PipelineConfig
from components.push import registry
from pipelines import run_local

from tests.tiny_fixture import LOOSE_GATES

pytestmark = pytest.mark.e2e

FAST = {"epochs": 8, **LOOSE_GATES}  # the 800-row fixture: see tests/tiny_fixture.py


def _config(data, out, **kwargs) -> PipelineConfig:
    return PipelineConfig(data_uri=str(data), registry_uri=os.path.join(out, "registry"), **(FAST | kwargs))


@pytest.fixture(scope="module")
def first_run(notebook_01_run):
    """The session's one run of notebook 01 (tests/conftest.py) is this module's first run: run_local.run
    on the fixture with the loosened gates, as _config builds it (2 epochs instead of 8). Its OUT is
    only read here; `summary` is what run_local.run returned in the notebook's kernel."""
    return str(notebook_01_run.out), notebook_01_run.returned


def test_pipeline_produces_a_blessed_model_with_summary(first_run):
    out, summary = first_run
    assert summary["status"] == names.STATUS_BLESSED, summary.get("error") or summary["gates"]
    on_disk = json.load(open(os.path.join(out, "run_summary.json")))
    assert on_disk == summary
    assert 0.5 < summary["metrics"]["auc"] <= 1.0
    assert set(summary["slices"]["afam"]) == {"yes", "no"}
    assert {g["name"] for g in summary["gates"]} == {"metric_floor", "no_regression", "fairness", "calibration",
                                                      "baseline"}
    assert all({"lower", "upper", "n", "rule"} <= set(g) for g in summary["gates"])
    assert summary["gates"][0]["lower"] < summary["metrics"]["auc"] < summary["gates"][0]["upper"]
    assert summary["calibration"]["method"] == "platt" and 0 < summary["decision_threshold"] < 1
    assert summary["decision_threshold"] == summary["calibration"]["decision_threshold"]
    assert set(summary["simple_baselines"]) == {"logistic_regression", "majority"}
    assert set(summary["bias_metrics"]["afam"]) == {"accuracy", "recall", "specificity", "positive_proportion"}
    assert set(summary["timings_s"]) == set(run_local.TASK_ORDER)
    champion = registry.read_champion(os.path.join(out, "registry"), "model")
    assert summary["model_uri"] == champion.uri
    lineage = json.load(open(summary["lineage"]))
    assert lineage["model_version"] == champion.version and lineage["metrics"]["auc"] == summary["metrics"]["auc"]
    assert lineage["data"]["sha256"] and lineage["artifacts_sha256"]["onnx"]


@pytest.mark.slow
def test_second_run_is_judged_against_the_champion(first_run, notebook_01_run, hmda_csv, tmp_path):
    """Slow (a whole second pipeline run). The default suite covers a run judged against a live
    champion in tests/test_notebooks.py::test_03_serves_the_champion_of_01_then_drift_triggers_retraining_and_a_canary:
    the retraining's run_local.run names notebook 01's champion as its baseline_version and its
    no_regression gate has a value."""
    _, first = first_run
    assert first["status"] == names.STATUS_BLESSED
    out = str(notebook_01_run.copy_out(tmp_path / "out"))  # the shared run stays as it was
    champion = registry.read_champion(os.path.join(out, "registry"), "model").version
    second = run_local.run(_config(hmda_csv, out, seed=7), out)
    assert second["baseline_version"] == champion
    regression = next(g for g in second["gates"] if g["name"] == "no_regression")
    assert "no champion" not in regression["detail"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns=["deny"]), "missing label 'deny'"),
        (lambda d: d.assign(chist=d["chist"].astype(object).where(d.index % 40 != 0, "seven")), "column 'chist'"),
        (lambda d: d.assign(deny="no"), "single class"),
        (lambda d: d.iloc[0:0], "no data rows"),
    ],
    ids=["missing-column", "wrong-type", "single-class", "empty"],
)
def test_bad_input_fails_validation_and_pushes_nothing(hmda_csv, tmp_path, mutate, message):
    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(hmda_csv)).to_csv(bad, index=False)
    summary = run_local.run(_config(bad, str(tmp_path)), str(tmp_path))
    assert summary["status"] == names.STATUS_FAILED_VALIDATION
    assert summary["failed_task"] == names.INGEST_TASK and message in summary["error"]
    assert summary["model_uri"] is None and not os.path.exists(tmp_path / "registry")


def test_drifted_eval_file_fails_validation_naming_the_feature(hmda_csv, tmp_path):
    frame = pd.read_csv(hmda_csv)
    train_csv, eval_csv = tmp_path / "train.csv", tmp_path / "eval.csv"
    frame.iloc[:600].to_csv(train_csv, index=False)
    frame.iloc[600:].assign(lvrat=lambda d: d["lvrat"] * 3 + 2).to_csv(eval_csv, index=False)
    summary = run_local.run(_config(train_csv, str(tmp_path), eval_data_uri=str(eval_csv)), str(tmp_path))
    assert summary["status"] == names.STATUS_FAILED_VALIDATION and summary["failed_task"] == names.VALIDATE_TASK
    assert "lvrat" in summary["error"]
    assert any(a["feature"] == "lvrat" for a in summary["validation"]["anomalies"])
    assert not os.path.exists(tmp_path / "registry")
