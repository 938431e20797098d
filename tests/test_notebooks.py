"""The notebooks run end to end (nbclient, a real kernel) on the local path; a failing cell fails.

Each notebook has one cell tagged `parameters`; tests replace it (as papermill would) so the
notebooks run on the committed fixture in seconds rather than on the full dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.tiny_fixture import LOOSE_GATES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIXTURE = ROOT / "tests" / "fixtures" / "hmda_sample.csv"


def execute(name: str, parameters: dict, timeout: int = 900) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name}: expected exactly one cell tagged 'parameters'"
    cells[0].source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            for value in output.get("data", {}).values():
                parts.append(value if isinstance(value, str) else "")
    return "\n".join(parts)


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


# The 800-row fixture's loosened gates (tests/tiny_fixture.py), as the notebooks' parameters.
TINY_FIXTURE_GATES = {"AUC_FLOOR": LOOSE_GATES["auc_floor"], "FAIRNESS_MAX_GAP": LOOSE_GATES["fairness_max_gap"],
                      "BASELINE_AUC_MARGIN": LOOSE_GATES["baseline_auc_margin"],
                      "CALIBRATION_BAND": [LOOSE_GATES["calibration_min"], LOOSE_GATES["calibration_max"]],
                      "MAX_ECE": LOOSE_GATES["max_expected_calibration_error"]}


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
def test_01_runs_the_pipeline_and_shows_reports(tmp_path, runner):
    notebook = execute("01_compile_and_run_locally.ipynb", {
        "DATA": str(FIXTURE), "LABEL": "deny", "SLICES": ["afam"], "KEY_COLUMN": "rownames", "EPOCHS": 2,
        **TINY_FIXTURE_GATES, "OUT": str(tmp_path), "RUNNER": runner})
    text = text_of(notebook)
    assert json.loads((tmp_path / "run_summary.json").read_text())["runner"] == runner
    assert "800 rows" in text
    assert "status: blessed" in text  # run_local's printed summary
    assert "fairness" in text and "metric_floor" in text  # the gates table
    assert list((tmp_path / "registry" / "model" / "versions").iterdir())


@pytest.mark.e2e
def test_03_serves_then_drift_triggers_retraining_and_a_canary(tmp_path):
    import json

    notebook = execute("03_canary_rollout_and_monitoring.ipynb", {
        "DATA": str(FIXTURE), "LABEL": "deny", "SLICES": ["afam"], "KEY_COLUMN": "rownames", "EPOCHS": 2,
        **TINY_FIXTURE_GATES, "SHIFT_COLUMN": "lvrat", "SHIFT_FACTOR": 1.3, "REQUESTS": 150,
        "OUT": str(tmp_path)}, timeout=1200)
    text = text_of(notebook)
    summary = json.loads((tmp_path / "retrain_summary.json").read_text())
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
