"""Executing the notebooks in tests (nbclient, a real kernel), and the one run of notebook 01 on the
committed fixture that several tests share (tests/conftest.py: `notebook_01_run`).

Each notebook has one cell tagged `parameters`; tests replace it (as papermill would) so the
notebooks run on the committed fixture in seconds rather than on the full dataset.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.tiny_fixture import LOOSE_GATES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIXTURE = ROOT / "tests" / "fixtures" / "hmda_sample.csv"

# The 800-row fixture's loosened gates (tests/tiny_fixture.py), as the notebooks' parameters.
TINY_FIXTURE_GATES = {"AUC_FLOOR": LOOSE_GATES["auc_floor"], "FAIRNESS_MAX_GAP": LOOSE_GATES["fairness_max_gap"],
                      "BASELINE_AUC_MARGIN": LOOSE_GATES["baseline_auc_margin"],
                      "CALIBRATION_BAND": [LOOSE_GATES["calibration_min"], LOOSE_GATES["calibration_max"]],
                      "MAX_ECE": LOOSE_GATES["max_expected_calibration_error"]}

# Notebook 01's parameters on the fixture (OUT and RUNNER are added per run); with intervals, which
# tests/test_pipeline_local.py reads from the run's gates.
NOTEBOOK_01_PARAMETERS = {"DATA": str(FIXTURE), "LABEL": "deny", "SLICES": ["afam"], "KEY_COLUMN": "rownames",
                          "EPOCHS": 2, "CONFIDENCE_INTERVALS": True, **TINY_FIXTURE_GATES}

# What the test harness appends to notebook 01: the summary run_local.run *returned* in the kernel,
# so a test can compare it with the run_summary.json it wrote.
RETURNED_SUMMARY_FILE = "returned_summary.json"


def execute(name: str, parameters: dict, timeout: int = 900, append: list[str] = ()) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name}: expected exactly one cell tagged 'parameters'"
    cells[0].source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in append)
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


@dataclasses.dataclass(frozen=True)
class NotebookRun:
    """A finished notebook 01 run, as it was when the notebook's last cell returned.

    `out` must not be written to by the tests that share it: a test that continues from the run
    (a second pipeline run, notebook 03) works on `copy_out(...)`. The registry keeps its versions by
    relative path, so a copy of OUT is a complete, independent registry and pipeline root."""

    out: Path
    text: str
    summary: dict
    """run_summary.json as written."""
    returned: dict
    """The summary run_local.run returned in the notebook's kernel."""

    def copy_out(self, destination: Path) -> Path:
        shutil.copytree(self.out, destination, symlinks=True)
        return destination


def run_notebook_01(out: Path, runner: str = "subprocess") -> NotebookRun:
    dump = (f"import json as _json, pathlib as _pathlib\n"
            f"_ = _pathlib.Path(OUT, {RETURNED_SUMMARY_FILE!r}).write_text(_json.dumps(summary, default=str))")
    notebook = execute("01_compile_and_run_locally.ipynb",
                       {**NOTEBOOK_01_PARAMETERS, "OUT": str(out), "RUNNER": runner}, append=[dump])
    returned = json.loads((out / RETURNED_SUMMARY_FILE).read_text())
    (out / RETURNED_SUMMARY_FILE).unlink()  # not part of what the notebook leaves behind
    return NotebookRun(out=out, text=text_of(notebook), summary=json.loads((out / "run_summary.json").read_text()),
                       returned=returned)
