"""Pipeline-level tests reuse the component fixtures, and share one run of notebook 01."""

from pathlib import Path

import pytest

from components.conftest import examples_dir, hmda_csv  # noqa: F401


@pytest.fixture(scope="session")
def notebook_01_run(tmp_path_factory):
    """Notebook 01 executed once per session on the committed fixture (subprocess runner): the whole
    training pipeline with kfp.local, ingest to push. Read by tests/test_notebooks.py (the notebook's
    own output) and tests/test_pipeline_local.py (the run's summary, registry and lineage); tests that
    continue from it (notebook 03, a second run against its champion) work on a copy of its OUT."""
    from tests.notebook_run import run_notebook_01

    return run_notebook_01(Path(tmp_path_factory.mktemp("notebook01")))
