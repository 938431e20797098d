"""Every artifact a component declares is named in components/common/names.py, and every task of
the compiled pipeline has a name from there (the local runner and the reports find outputs by them)."""

from __future__ import annotations

import yaml

from components.common import names
from pipelines.compile import COMPILED_PIPELINE

NAMES = {value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}


def test_component_artifacts_and_tasks_use_the_shared_names():
    spec = next(yaml.safe_load_all(COMPILED_PIPELINE.read_text()))
    artifacts = set()
    for component in spec["components"].values():
        for side in ("inputDefinitions", "outputDefinitions"):
            artifacts |= set(component.get(side, {}).get("artifacts", {}))
    assert artifacts and artifacts <= NAMES, sorted(artifacts - NAMES)
    assert set(spec["root"]["dag"]["tasks"]) <= NAMES
