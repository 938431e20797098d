"""The notebooks run end to end (nbclient, a real kernel) on the local path; a failing cell fails.

Each notebook has one cell tagged `parameters`; tests replace it (as papermill would) so the
notebooks run on the committed fixture in seconds rather than on the full dataset
(tests/notebook_run.py). Notebook 01 runs once per session (tests/conftest.py: `notebook_01_run`);
notebook 03 continues from a copy of its OUT, as the notebooks are meant to be used (01 trains
the champion, 03 serves it); the slow variant runs notebook 03 from an empty OUT.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from components.common import names

from tests.notebook_run import NOTEBOOK_01_PARAMETERS, NOTEBOOKS, execute, run_notebook_01, text_of


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_are_stripped_and_parameterised(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name}: strip outputs"
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


def test_expected_notebooks_exist():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} >= {
        "01_compile_and_run_locally.ipynb", "02_submit_to_kubeflow_or_vertex.ipynb",
        "03_canary_rollout_and_monitoring.ipynb"}


def test_02_compiles_and_skips_submission_without_endpoints(tmp_path):
    notebook = execute("02_submit_to_kubeflow_or_vertex.ipynb", {
        "KFP_HOST": "", "KFP_NAMESPACE": "", "VERTEX_PROJECT": "", "VERTEX_LOCATION": "us-central1",
        "VERTEX_PIPELINE_ROOT": "", "VERTEX_SERVICE_ACCOUNT": "", "DATA": "gs://b/hmda.csv",
        "REGISTRY": "gs://b/registry", "ACCELERATOR_TYPE": "nvidia.com/gpu", "ACCELERATOR_COUNT": 1,
        "VERTEX_MACHINE_TYPE": "g2-standard-8", "VERTEX_ACCELERATOR_TYPE": "NVIDIA_L4", "VERTEX_ACCELERATOR_COUNT": 1,
        "OUT": str(tmp_path)})
    text = text_of(notebook)
    assert "skipped: set KFP_HOST" in text and "skipped: set VERTEX_PROJECT" in text
    assert (tmp_path / "training_pipeline.yaml").stat().st_size > 10_000
    vertex = (tmp_path / "training_pipeline_vertex.yaml").read_text()
    assert "---" not in vertex and "NVIDIA_L4" in vertex and "g2-standard-8" in vertex


@pytest.mark.e2e
@pytest.mark.parametrize("runner", ["subprocess", pytest.param("docker", marks=pytest.mark.containers)])
def test_01_runs_the_pipeline_and_shows_reports(request, tmp_path, runner):
    # subprocess: the session's shared run (tests/conftest.py); docker: its own run in the images.
    run = request.getfixturevalue("notebook_01_run") if runner == "subprocess" else run_notebook_01(tmp_path, runner)
    assert run.summary["runner"] == runner
    assert "800 rows" in run.text
    assert "status: blessed" in run.text  # run_local's printed summary
    assert "fairness" in run.text and "metric_floor" in run.text  # the gates table
    assert list((run.out / "registry" / "model" / "versions").iterdir())


def check_03(notebook, out, summary) -> None:
    """What notebook 03 must have done, whichever OUT it started from."""
    text = text_of(notebook)
    # The champion went live first, then the shifted traffic made the monitor act on the shifted column.
    assert "first_deploy" in text
    assert summary["monitor"]["decision"] == "act" and summary["monitor"]["retrain"] is True
    assert "lvrat" in summary["monitor"]["triggered"]
    assert "decision: act" in text and "Drift" in text
    # Retraining ran on the newer data and was judged against the champion that was live.
    training = summary["training"]
    assert training["data"].endswith("newer.csv")
    no_regression = next(g for g in training["gates"] if g["name"] == "no_regression")
    assert no_regression["value"] is not None and training["baseline_version"] == summary["monitor"]["model_version"]
    # Blessed: its canary ran against the live champion; not blessed: nothing was deployed.
    deployed = training["deploy"]
    if training["status"] == "blessed":
        assert deployed["stable_version"] == summary["monitor"]["model_version"]
        assert deployed["outcome"] in ("promoted", "rolled_back") and "canary:" in text
    else:
        assert deployed["outcome"] == "not_deployed"


def training_runs(out) -> set[str]:
    """The training pipeline's run directories under OUT (the monitor's own task runs excluded)."""
    return {str(run) for run in (out / "pipeline_root").iterdir() if (run / names.INGEST_TASK).is_dir()}


NOTEBOOK_03_PARAMETERS = {**NOTEBOOK_01_PARAMETERS, "SHIFT_COLUMN": "lvrat", "SHIFT_FACTOR": 1.3, "REQUESTS": 150}


@pytest.mark.e2e
def test_03_serves_the_champion_of_01_then_drift_triggers_retraining_and_a_canary(notebook_01_run, tmp_path):
    """Notebook 03 on a copy of notebook 01's OUT: its champion exists, so 03 skips training one and
    serves it; everything after that (serve, drift, monitor, retrain, canary) runs as from scratch.
    The from-scratch variant (03 trains its own champion first) is slow: that step is the same
    run_local.run call as notebook 01's, covered here by `notebook_01_run`."""
    out = notebook_01_run.copy_out(tmp_path / "out")
    champion = json.loads((out / "registry" / "model" / "CHAMPION.json").read_text())["version"]
    trained_before = training_runs(out)
    notebook = execute("03_canary_rollout_and_monitoring.ipynb", {**NOTEBOOK_03_PARAMETERS, "OUT": str(out)},
                       timeout=1200)
    summary = json.loads((out / "retrain_summary.json").read_text())
    check_03(notebook, out, summary)
    # Notebook 01's champion is the one served, monitored and retrained against; 03 trained no champion
    # of its own (one new training pipeline run: the retraining's).
    assert summary["monitor"]["model_version"] == champion
    assert training_runs(out) - trained_before == {summary["training"]["run_dir"]}


@pytest.mark.e2e
@pytest.mark.slow
def test_03_from_an_empty_out_trains_its_champion_then_serves_retrains_and_canaries(tmp_path):
    """Slow: notebook 03 alone, training its champion first. The fast variant above covers the same
    cells from serving on, with notebook 01's champion; the champion run is notebook 01's run_local.run."""
    notebook = execute("03_canary_rollout_and_monitoring.ipynb", {**NOTEBOOK_03_PARAMETERS, "OUT": str(tmp_path)},
                       timeout=1200)
    check_03(notebook, tmp_path, json.loads((tmp_path / "retrain_summary.json").read_text()))
