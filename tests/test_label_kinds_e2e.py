"""The whole pipeline with kfp.local for the two label kinds beyond binary: TFX's penguins (three
species) and CPS1985 wages (a regression target), ingest to push, the pushed model served by the
model server in infra validation, as `make run DATA=... LABEL=...` runs them."""

from __future__ import annotations

import json
import os

import pytest

from components.common import names
from components.common.config import PipelineConfig
from components.common.errors import PipelineInputError
from components.conftest import FIXTURES
from pipelines import run_local

pytestmark = pytest.mark.e2e

CASES = {
    "multiclass": dict(data_uri=str(FIXTURES / "penguins.csv"), label="species", slices=["island"],
                       primary="macro_auc", baselines={"majority", "multinomial_logistic_regression"}),
    "regression": dict(data_uri=str(FIXTURES / "cps1985.csv"), label="wage", slices=["gender"],
                       primary="r2", baselines={"mean", "ridge_regression"}),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_label_kind_runs_end_to_end_and_is_served(kind, tmp_path):
    case = CASES[kind]
    out = str(tmp_path)
    config = PipelineConfig(data_uri=case["data_uri"], label=case["label"], slices=case["slices"], key_column="",
                            epochs=30, registry_uri=os.path.join(out, "registry"))
    summary = run_local.run(config, out)
    assert summary["label_kind"] == kind
    assert summary["status"] in (names.STATUS_BLESSED, names.STATUS_NOT_BLESSED), summary.get("error")
    failed = [g["name"] for g in summary["gates"] if g.get("applicable", True) and not g["passed"]]
    assert (summary["status"] == names.STATUS_BLESSED) == (not failed)  # rejected only by a named gate
    assert summary["primary_metric"]["name"] == case["primary"]
    floor = next(g for g in summary["gates"] if g["name"] == "metric_floor")
    assert floor["value"] == pytest.approx(summary["metrics"][case["primary"]])
    assert set(summary["simple_baselines"]) == case["baselines"]
    assert set(summary["slices"][case["slices"][0]])  # per-slice figures of the kind
    infra = summary["infra_validation"]
    assert infra["blessed"] and infra["v1"]["requests"] > 0 and infra["v2"]["rows"] > 0, infra
    if kind == "multiclass":
        assert summary["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
        assert summary["metrics"]["accuracy"] > 0.9 and summary["status"] == names.STATUS_BLESSED
    else:
        assert summary["metrics"]["r2"] > summary["simple_baselines"]["mean"]["r2"]
    if summary["status"] == names.STATUS_BLESSED:
        lineage = json.load(open(summary["lineage"]))
        assert lineage["data"]["label_kind"] == kind
        card = open(os.path.join(os.path.dirname(summary["lineage"]), names.MODEL_CARD_MD_FILE)).read()
        assert ("Multi-class classifier" if kind == "multiclass" else "Regressor") in card


def test_a_threshold_with_another_kind_is_a_config_error():
    with pytest.raises(PipelineInputError, match="label_threshold makes a binary label"):
        PipelineConfig(label_kind="regression", label_threshold=3.0)
