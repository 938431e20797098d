"""DeployConfig, run_deploy (with a fake target), the push gate, replay's rows, the CLI and the KFP
component's compilation; nothing here starts a process."""

from __future__ import annotations

import dataclasses

import json
import math
from pathlib import Path

import pytest

from components.common import names
from components.common.errors import PipelineInputError
from components.deploy import analysis
from components.deploy import deploy as dep
from components.deploy.__main__ import main as cli_main
from components.deploy.gate import NOT_BLESSED, push_gate
from components.deploy.replay import load_rows
from components.deploy.rollout import FIRST_DEPLOY, PROMOTED, ROLLED_BACK, UNCHANGED, LiveState, ModelRef
from components.deploy.tests.fakes import FakeTarget, ScriptedObserver

TYPES = {"lvrat": "float", "chist": "int", "selfemp": "string"}


def make_registry(root: Path, versions: list[str], champion: str | None = None,
                  previous: str | None = None) -> str:
    model = root / "model"
    for version in versions:
        (model / "versions" / version).mkdir(parents=True)
        (model / "versions" / version / names.MODEL_INFO_FILE).write_text(json.dumps({"raw_feature_types": TYPES}))
        (model / "versions" / version / names.VERSION_COMPLETE_FILE).write_text(version)
    (model / "versions" / ".staging-1234").mkdir()  # a half-written push is never a version
    (model / "versions" / "v20250101T120000Z-crashed").mkdir()  # nor a push that did not finish (no marker)
    if champion:
        (model / names.CHAMPION_FILE).write_text(json.dumps(
            {"version": champion, "path": f"versions/{champion}", "previous": previous}))
    return str(root)


# ------------------------------------------------------------------------------ config


def test_config_lists_every_problem_at_once():
    with pytest.raises(PipelineInputError) as info:
        dep.DeployConfig(target="local", registry_uri="", mode="blue", rows_per_request=0)
    message = str(info.value)
    for part in ("registry_uri is required", "mode must be one of", "rows_per_request and concurrency",
                 "needs state_dir", "needs data"):
        assert part in message


@pytest.mark.parametrize("kwargs, message", [
    ({"target": "k8s"}, "target must be one of"),
    ({"target": "kserve", "registry_uri": "r"}, "needs kserve_namespace"),
    ({"target": "vertex", "registry_uri": "r", "vertex_project": "p"}, "needs vertex_project and vertex_region"),
    ({"target": "local", "registry_uri": "r", "state_dir": "s", "data": "d", "steps": (10, 50)}, "end at 100"),
    ({"target": "local", "registry_uri": "r", "state_dir": "s", "data": "d", "backend": "torch"}, "backend"),
])
def test_config_rejects(kwargs, message):
    with pytest.raises(PipelineInputError, match="invalid") as info:
        dep.DeployConfig(**kwargs)
    assert message in str(info.value)


def test_config_builds_the_policy_and_replay_settings():
    config = dep.DeployConfig(target="local", registry_uri="r", state_dir="s", data="d", steps=[5, 100],
                              max_prediction_psi=0.1, requests_per_step=50, rows_per_request=3, concurrency=2)
    policy = config.policy()
    assert policy.steps == (5, 100) and policy.max_prediction_psi == 0.1 and policy.requests_per_step == 50
    assert (config.replay().rows_per_request, config.replay().concurrency) == (3, 2)
    assert dep.DeployConfig(target="none").target == "none"  # skipping needs nothing else


# ------------------------------------------------------------------------------ registry


def test_candidate_is_the_champion_or_a_named_version(tmp_path):
    registry = make_registry(tmp_path, ["v20250101T000000Z-a", "v20250102T000000Z-b"], champion="v20250102T000000Z-b")
    config = dep.DeployConfig(target="none", registry_uri=registry)
    assert dep.resolve_candidate(config).version == "v20250102T000000Z-b"
    named = dep.DeployConfig(target="none", registry_uri=registry, candidate_version="v20250101T000000Z-a")
    assert dep.resolve_candidate(named).uri.endswith("versions/v20250101T000000Z-a")
    with pytest.raises(PipelineInputError, match="is not in the registry"):
        dep.resolve_candidate(dep.DeployConfig(target="none", registry_uri=registry, candidate_version="v9"))
    with pytest.raises(PipelineInputError, match="nothing was pushed yet"):
        dep.resolve_candidate(dep.DeployConfig(target="none", registry_uri=str(tmp_path / "empty")))


def test_previous_version_from_the_pointer_else_the_newest_older_directory(tmp_path):
    versions = ["v20250101T000000Z-a", "v20250102T000000Z-b", "v20250103T000000Z-c"]
    with_pointer = make_registry(tmp_path / "p", versions, champion=versions[2], previous=versions[0])
    candidate = ModelRef("model", versions[2], "unused")
    assert dep.previous_version(with_pointer, "model", candidate).version == versions[0]
    without = make_registry(tmp_path / "n", versions, champion=versions[2], previous=None)
    assert dep.previous_version(without, "model", candidate).version == versions[1]
    only = make_registry(tmp_path / "o", versions[:1], champion=versions[0])
    assert dep.previous_version(only, "model", ModelRef("model", versions[0], "unused")) is None


# ------------------------------------------------------------------------------ run_deploy


def local_config(registry: str, out: Path, **kwargs) -> dep.DeployConfig:
    return dep.DeployConfig(target="local", registry_uri=registry, state_dir=str(out / "state"), data="unused.csv",
                            output_dir=str(out / "deploy"), **kwargs)


def test_run_deploy_puts_the_previous_version_live_first_then_canaries(tmp_path):
    a, b = "v20250101T000000Z-a", "v20250102T000000Z-b"
    registry = make_registry(tmp_path, [a, b], champion=b, previous=a)
    target, observer, lines = FakeTarget(), ScriptedObserver(), []
    result = dep.run_deploy(local_config(registry, tmp_path), progress=lines.append, target=target, observer=observer)
    assert result.outcome == PROMOTED and result.stable_version == a and result.candidate_version == b
    assert target.calls == [("deploy", a), ("set_canary", b, 10), ("set_canary", b, 50), ("promote", b)]
    assert result.notes == [f"nothing was live: deployed the registry's previous version {a} as stable first, "
                            f"to canary {b} against it"]
    assert not target.closed  # a target handed in belongs to the caller
    out = tmp_path / "deploy"
    saved = json.loads((out / names.DEPLOY_RESULT_FILE).read_text())
    assert saved["outcome"] == PROMOTED and saved["succeeded"] is True and len(saved["steps"]) == 2
    assert "promoted" in (out / names.REPORT_MD_FILE).read_text()
    assert (out / names.REPORT_HTML_FILE).read_text().startswith("<!DOCTYPE html>")
    assert not list(out.glob("*.tmp-*"))


def test_run_deploy_without_an_older_version_is_a_first_deploy(tmp_path):
    a = "v20250101T000000Z-a"
    registry = make_registry(tmp_path, [a], champion=a)
    target = FakeTarget()
    result = dep.run_deploy(local_config(registry, tmp_path), progress=lambda _: None, target=target,
                            observer=ScriptedObserver())
    assert result.outcome == FIRST_DEPLOY and target.calls == [("deploy", a)]
    assert "no older version" in result.notes[0]


def test_run_deploy_records_a_rollback(tmp_path):
    a, b = "v20250101T000000Z-a", "v20250102T000000Z-b"
    registry = make_registry(tmp_path, [a, b], champion=b, previous=a)
    target = FakeTarget(LiveState(stable=ModelRef("model", a, "x")))
    result = dep.run_deploy(local_config(registry, tmp_path), progress=lambda _: None, target=target,
                            observer=ScriptedObserver({10: {"shift": 0.5}}))
    assert result.outcome == ROLLED_BACK and target.calls[0] == ("set_canary", b, 10)  # no extra deploy
    saved = json.loads((tmp_path / "deploy" / names.DEPLOY_RESULT_FILE).read_text())
    assert saved["succeeded"] is False and saved["reason"].startswith("at 10%: prediction shift")
    # The version still serving is the champion again; the rolled-back one stays in the registry.
    pointer = json.loads((Path(registry) / "model" / names.CHAMPION_FILE).read_text())
    assert (pointer["version"], pointer["rolled_back"], pointer["previous"]) == (a, b, None)
    assert pointer["reason"] == result.reason and (Path(registry) / "model" / "versions" / b).is_dir()
    assert result.notes[-1].startswith(f"the registry's champion is {a} again")
    # ... so a re-run finds the stable version live and changes nothing.
    again = dep.run_deploy(local_config(registry, tmp_path), progress=lambda _: None, target=target,
                           observer=ScriptedObserver())
    assert again.outcome == UNCHANGED and again.candidate_version == a


def test_a_promoted_or_explicit_older_candidate_leaves_the_champion_alone(tmp_path):
    a, b = "v20250101T000000Z-a", "v20250102T000000Z-b"
    registry = make_registry(tmp_path, [a, b], champion=b, previous=a)
    before = (Path(registry) / "model" / names.CHAMPION_FILE).read_text()
    target = FakeTarget(LiveState(stable=ModelRef("model", b, "x")))
    result = dep.run_deploy(local_config(registry, tmp_path, candidate_version=a), progress=lambda _: None,
                            target=target, observer=ScriptedObserver({10: {"shift": 0.5}}))
    assert result.outcome == ROLLED_BACK  # a rolled back, but it was never the champion
    assert (Path(registry) / "model" / names.CHAMPION_FILE).read_text() == before


def test_run_deploy_target_none_is_recorded(tmp_path):
    result = dep.run_deploy(dep.DeployConfig(target="none", output_dir=str(tmp_path)), progress=lambda _: None)
    assert result.outcome == analysis.NOT_DEPLOYED and "deploy target is none" in result.reason
    assert json.loads((tmp_path / names.DEPLOY_RESULT_FILE).read_text())["outcome"] == analysis.NOT_DEPLOYED


# ------------------------------------------------------------------------------ push gate


def test_push_gate(tmp_path):
    pushed = tmp_path / "pushed"
    pushed.mkdir()
    assert push_gate(str(pushed), {})[0] is False  # no record: nothing to deploy
    (pushed / names.PUSH_RESULT_FILE).write_text(json.dumps(
        {"pushed": False, "reason": "not blessed: fairness: 0.31 vs 0.25", "version": None}))
    ok, version, reason = push_gate(str(pushed))
    assert (ok, version) == (False, "") and reason == f"{NOT_BLESSED} (not blessed: fairness: 0.31 vs 0.25)"
    (pushed / names.PUSH_RESULT_FILE).write_text(json.dumps(
        {"pushed": True, "reason": "blessed", "version": "v2"}))
    assert push_gate(str(pushed)) == (True, "v2", "blessed")
    # Already the champion: nothing new pushed, but that version is the one to have live.
    champion = {"pushed": False, "version": "v1", "reason": "already the champion"}
    assert push_gate(str(tmp_path), champion)[:2] == (True, "v1")


# ------------------------------------------------------------------------------ replay rows


def test_load_rows_types_values_for_the_model(tmp_path, hmda_csv):
    rows = load_rows(str(hmda_csv), TYPES)
    assert len(rows) == 800
    assert set(rows[0]) == set(TYPES)  # label, ids and other columns are not sent
    assert isinstance(rows[0]["lvrat"], float) and isinstance(rows[0]["chist"], int)
    assert rows[0]["selfemp"] in ("yes", "no")
    sparse = tmp_path / "sparse.csv"
    sparse.write_text("lvrat,chist,selfemp,deny\n,3,no,yes\n0.5,,NA,no\n")
    assert load_rows(str(sparse), TYPES) == [{"lvrat": None, "chist": 3, "selfemp": "no"},
                                             {"lvrat": 0.5, "chist": None, "selfemp": None}]
    assert len(load_rows(str(hmda_csv), TYPES, max_rows=10)) == 10


def test_load_rows_errors_name_the_problem(tmp_path, hmda_csv):
    with pytest.raises(PipelineInputError, match=r"feature\(s\) \['income'\] are not columns"):
        load_rows(str(hmda_csv), {**TYPES, "income": "float"})
    bad = tmp_path / "bad.csv"
    bad.write_text("lvrat,chist,selfemp\n0.5,2.5,no\n")
    with pytest.raises(PipelineInputError, match=r"row 2: column 'chist' \(int\)"):
        load_rows(str(bad), TYPES)
    with pytest.raises(PipelineInputError, match="does not exist"):
        load_rows(str(tmp_path / "nope.csv"), TYPES)


def test_load_rows_reads_an_ingest_eval_split(tmp_path):
    import tensorflow as tf

    split = tmp_path / "examples" / names.EVAL
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / names.EXAMPLES_FILE), tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for lvrat, chist, selfemp in ((0.8, 2, b"no"), (None, 5, None)):
            feature = {"chist": tf.train.Feature(int64_list=tf.train.Int64List(value=[chist]))}
            if lvrat is not None:
                feature["lvrat"] = tf.train.Feature(float_list=tf.train.FloatList(value=[lvrat]))
            if selfemp is not None:
                feature["selfemp"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[selfemp]))
            w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    rows = load_rows(str(tmp_path / "examples"), TYPES)
    assert math.isclose(rows[0]["lvrat"], 0.8, rel_tol=1e-6) and rows[0]["chist"] == 2 and rows[0]["selfemp"] == "no"
    assert rows[1] == {"lvrat": None, "chist": 5, "selfemp": None}


# ------------------------------------------------------------------------------ CLI, KFP


def test_cli_skip_writes_the_outputs_and_exits_zero(tmp_path, capsys):
    assert cli_main(["--target", "none", "--registry", "r", "--out", str(tmp_path)]) == 0
    assert "deploy target is none" in capsys.readouterr().out
    assert (tmp_path / names.REPORT_HTML_FILE).exists()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    code = cli_main(["--target", "local", "--registry", str(tmp_path), "--data", "x.csv",
                     "--state-dir", str(tmp_path / "s")])
    assert code == 2 and "nothing was pushed yet" in capsys.readouterr().err


def test_component_compiles_alone(tmp_path):
    from kfp import compiler

    from components.deploy.component import deploy

    path = tmp_path / "deploy.yaml"
    compiler.Compiler().compile(deploy, str(path))
    import yaml

    spec = yaml.safe_load(path.read_text())
    component = next(iter(spec["components"].values()))
    inputs = component["inputDefinitions"]
    outputs = component["outputDefinitions"]["artifacts"]
    assert set(inputs["artifacts"]) == {names.PUSHED_MODEL, names.EXAMPLES}
    parameters = set(inputs["parameters"])
    assert {"deploy_target", "registry_uri", "model_name", "canary_steps", "max_prediction_psi"} <= parameters
    assert set(outputs) == {names.DEPLOY_REPORT, names.DEPLOY_HTML, names.DEPLOY_METRICS, names.DEPLOYMENT}
    assert outputs[names.DEPLOY_METRICS]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs[names.DEPLOY_HTML]["artifactType"]["schemaTitle"] == "system.HTML"


class _Artifact:
    def __init__(self, path: Path, metadata: dict | None = None):
        self.path = str(path)
        self.metadata = dict(metadata or {})
        self.logged: dict[str, float] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.logged[name] = value


def test_component_records_not_blessed_and_succeeds(tmp_path):
    from components.deploy.component import deploy

    pushed = tmp_path / "pushed"
    pushed.mkdir()
    (pushed / names.PUSH_RESULT_FILE).write_text(json.dumps(
        {"pushed": False, "reason": "not blessed: metric_floor: 0.61 vs 0.7", "version": None}))
    outputs = {name: _Artifact(tmp_path / name) for name in
               (names.DEPLOY_REPORT, names.DEPLOY_HTML, names.DEPLOY_METRICS, names.DEPLOYMENT)}
    deploy.python_func(pushed_model=_Artifact(pushed), examples=_Artifact(tmp_path / "examples"),
                       deploy_target="local", registry_uri=str(tmp_path / "registry"), model_name="model", **outputs)
    deployment = outputs[names.DEPLOYMENT]
    assert deployment.metadata["outcome"] == analysis.NOT_DEPLOYED and deployment.metadata["succeeded"] is False
    assert deployment.metadata["reason"] == f"{NOT_BLESSED} (not blessed: metric_floor: 0.61 vs 0.7)"
    assert NOT_BLESSED in (tmp_path / names.DEPLOY_REPORT).read_text()
    assert (tmp_path / names.DEPLOY_HTML).read_text().startswith("<!DOCTYPE html>")
    assert outputs[names.DEPLOY_METRICS].logged["outcome"] == 0.0
    assert json.loads((tmp_path / names.DEPLOYMENT / names.DEPLOY_RESULT_FILE).read_text())["outcome"] == "not_deployed"


def test_replayed_labels_travel_with_their_rows(examples_dir):
    from components.deploy.replay import load_labels
    from components.deploy.traffic import ReplayConfig, ReplayRows

    types = {"lvrat": "float", "chist": "int", "selfemp": "string"}
    rows, labels = load_rows(examples_dir, types), load_labels(examples_dir)
    assert len(labels) == len(rows) and set(labels) == {0, 1}
    assert load_labels(str(Path(examples_dir) / "eval")) is None  # not an examples dir: unlabelled
    # Tag each row with its label through a feature no model has, then check every batch.
    tagged = [{**row, "_label": label} for row, label in zip(rows, labels)]
    batches = ReplayRows(tagged, ReplayConfig(rows_per_request=8), labels).take(len(rows) // 4)
    assert all(b.labels == [row["_label"] for row in b.rows] for b in batches)


def test_the_component_defaults_are_the_rollout_policys():
    """KFP runs a component's source alone (module constants are not there), so its signature keeps
    literal defaults; they must be RolloutPolicy's, as DeployConfig's and the pipeline config's are."""
    import inspect

    from components.common.config import PipelineConfig
    from components.common.rollout_policy import RolloutPolicy
    from components.deploy.component import deploy as deploy_component

    params = inspect.signature(deploy_component.python_func).parameters
    policy, config, pipeline = RolloutPolicy(), dep.DeployConfig(target=names.DEPLOY_NONE), PipelineConfig(data_uri="x.csv", label="y")
    component_names = {"deploy_mode": "mode", "canary_steps": "steps"}
    for name, param in params.items():
        field = component_names.get(name, name)
        if param.default is inspect.Parameter.empty:
            continue
        if not hasattr(policy, field):  # the deploy settings outside the policy (metrics provider)
            if name in {f.name for f in dataclasses.fields(dep.DeployConfig)} and hasattr(pipeline, name):
                assert param.default == getattr(config, name) == getattr(pipeline, name), name
            continue
        expected = getattr(policy, field)
        assert (tuple(param.default) if name == "canary_steps" else param.default) == expected, name
        assert getattr(config, field) == expected, field
        if hasattr(pipeline, name):
            assert (tuple(getattr(pipeline, name)) if name == "canary_steps" else getattr(pipeline, name)) == expected


def test_a_version_whose_push_did_not_finish_is_never_previous_nor_deployable(tmp_path):
    reg = make_registry(tmp_path, ["v20250101T000000Z-a", "v20250102T000000Z-b"])  # no CHAMPION: listing decides
    candidate = dep.version_ref(reg, "model", "v20250102T000000Z-b")
    assert dep.previous_version(reg, "model", candidate).version == "v20250101T000000Z-a"
    with pytest.raises(PipelineInputError, match="incomplete"):
        dep.version_ref(reg, "model", "v20250101T120000Z-crashed")


def test_run_deploy_reads_the_label_kinds_and_refuses_to_compare_different_ones(tmp_path):
    """The kinds come from the versions' model_info.json: a multiclass candidate canaried against
    the binary version still serving is not judged on predictions it cannot be compared with."""
    a, b = "v20250101T000000Z-a", "v20250102T000000Z-b"
    registry = make_registry(tmp_path, [a, b], champion=b, previous=a)
    info = Path(registry) / "model" / "versions" / b / names.MODEL_INFO_FILE
    info.write_text(json.dumps({"raw_feature_types": TYPES, "label_kind": "multiclass", "classes": ["x", "y", "z"]}))
    result = dep.run_deploy(local_config(registry, tmp_path), progress=lambda _: None, target=FakeTarget(),
                            observer=ScriptedObserver())
    assert result.outcome == ROLLED_BACK
    assert "the stable serves a binary model, the canary a multiclass one" in result.reason
