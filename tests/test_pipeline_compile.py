"""The compiled pipelines: golden IR YAML, the checks the KFP v2 driver applies before it starts a
task, accelerator requests on train, one set of names, caching, the retraining pipeline's
drift-triggered training sub-DAG, and the Vertex AI form loaded by the real aiplatform.PipelineJob."""

from __future__ import annotations

import difflib
import inspect

import pytest
import yaml

from components.common import names
from components.common.config import RETRAIN_TRAINING_DEFAULTS, PipelineConfig, RetrainConfig, threshold_to_parameter
from components.common.images import PIPELINE_IMAGE, SERVING_IMAGE, TRAIN_IMAGE, package_version
from pipelines.compile import (
    COMPILED_PIPELINE,
    COMPILED_RETRAINING_PIPELINE,
    COMPILED_VERTEX_PIPELINE,
    COMPILED_VERTEX_RETRAINING_PIPELINE,
    KUBEFLOW_FILES,
    VERTEX_FILES,
    compile_pipeline,
    compile_retraining_pipeline,
    compile_vertex_pipeline,
    compile_vertex_retraining_pipeline,
)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    path = compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")
    text = path.read_text()
    return {"text": text, "spec": next(yaml.safe_load_all(text))}


@pytest.fixture(scope="module")
def compiled_retraining(tmp_path_factory) -> dict:
    path = compile_retraining_pipeline(tmp_path_factory.mktemp("compiled") / "retraining.yaml")
    text = path.read_text()
    return {"text": text, "spec": next(yaml.safe_load_all(text))}


@pytest.fixture(scope="module")
def compiled_vertex(tmp_path_factory) -> dict:
    path = compile_vertex_pipeline(tmp_path_factory.mktemp("compiled") / "vertex.yaml")
    text = path.read_text()
    return {"text": text, "spec": yaml.safe_load(text)}


def _assert_matches_golden(text: str, golden_path) -> None:
    golden = golden_path.read_text()
    if text != golden:
        diff = "".join(difflib.unified_diff(golden.splitlines(True), text.splitlines(True), "golden", "now", n=1))
        pytest.fail(f"compiled pipeline differs from {golden_path}; review, then `make compile`:\n{diff[:4000]}")


def test_compiled_pipeline_matches_golden_file(compiled):
    _assert_matches_golden(compiled["text"], COMPILED_PIPELINE)


def test_compiled_retraining_pipeline_matches_golden_file(compiled_retraining):
    _assert_matches_golden(compiled_retraining["text"], COMPILED_RETRAINING_PIPELINE)


def test_compiled_vertex_pipelines_match_golden_files(compiled_vertex, tmp_path):
    _assert_matches_golden(compiled_vertex["text"], COMPILED_VERTEX_PIPELINE)
    retraining = compile_vertex_retraining_pipeline(tmp_path / "retraining_vertex.yaml")
    _assert_matches_golden(retraining.read_text(), COMPILED_VERTEX_RETRAINING_PIPELINE)


def test_retraining_runs_the_training_pipeline_only_when_the_monitor_says_retrain(compiled_retraining):
    spec = compiled_retraining["spec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {names.MONITOR_TASK, "condition-1"}
    condition = tasks["condition-1"]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--monitor-retrain'] == true")
    assert names.MONITOR_TASK in condition["dependentTasks"]
    # Inside the condition: the whole training pipeline, as one sub-DAG with all its steps.
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"training-pipeline"}
    sub_dag = spec["components"][inner["training-pipeline"]["componentRef"]["name"]]["dag"]["tasks"]
    assert set(sub_dag) == {names.INGEST_TASK, names.VALIDATE_TASK, names.TRANSFORM_TASK, names.TRAIN_TASK,
                            names.EVALUATE_TASK, names.INFRA_VALIDATE_TASK, names.PUSH_TASK, names.DEPLOY_TASK}


def test_retraining_parameters_are_the_monitor_and_training_config_fields(compiled_retraining):
    parameters = compiled_retraining["spec"]["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == set(PipelineConfig.field_names()) | {f for f in RetrainConfig.__dataclass_fields__}
    defaults = PipelineConfig(**RETRAIN_TRAINING_DEFAULTS).pipeline_arguments() | vars(RetrainConfig())
    for name, definition in parameters.items():
        assert definition["defaultValue"] == defaults[name], name
    assert parameters["drift_jensen_shannon_threshold"]["defaultValue"] == 1.0  # drift is why it runs
    assert parameters["retrain_on"]["defaultValue"] == names.DRIFT_ACT


def _executor(spec: dict, task: str) -> dict:
    component = spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    executor = spec["components"][component]["executorLabel"]
    return spec["deploymentSpec"]["executors"][executor]["container"]


def test_train_task_requests_accelerators_from_pipeline_parameters(compiled):
    resources = _executor(compiled["spec"], names.TRAIN_TASK)["resources"]
    accelerator = resources["accelerator"]
    assert "accelerator_type" in accelerator["resourceType"]
    assert "accelerator_count" in str(accelerator["resourceCount"])
    assert "cpu_request" in str(resources["resourceCpuRequest"])
    assert "memory_request" in str(resources["resourceMemoryRequest"])


def test_train_task_has_gpu_node_placement(compiled):
    platform = yaml.safe_load_all(compiled["text"])
    docs = list(platform)
    assert len(docs) == 2, "pipeline spec + platform spec"
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train = next(v for k, v in executors.items() if "train" in k)
    assert "node_selector" in str(train["nodeSelector"]) and "tolerations" in str(train["tolerations"])


def test_images_are_pinned_to_the_package_version(compiled):
    executors = compiled["spec"]["deploymentSpec"]["executors"]
    images = {c["image"] for c in (e["container"] for e in executors.values())}
    assert images == {PIPELINE_IMAGE, TRAIN_IMAGE, SERVING_IMAGE}
    assert executors["exec-infra-validate"]["container"]["image"] == SERVING_IMAGE
    assert all(i.endswith(":" + package_version()) for i in images)
    assert ":latest" not in compiled["text"]


def test_tasks_and_artifacts_use_the_shared_names(compiled):
    tasks = compiled["spec"]["root"]["dag"]["tasks"]
    assert set(tasks) == {names.INGEST_TASK, names.VALIDATE_TASK, names.TRANSFORM_TASK, names.TRAIN_TASK,
                          names.EVALUATE_TASK, names.INFRA_VALIDATE_TASK, names.PUSH_TASK, names.DEPLOY_TASK}
    outputs = {
        names.INGEST_TASK: {names.EXAMPLES},
        names.VALIDATE_TASK: {names.STATISTICS, names.SCHEMA, names.ANOMALIES, names.VALIDATION_REPORT},
        names.TRANSFORM_TASK: {names.TRANSFORM_GRAPH, names.TRANSFORMED_EXAMPLES},
        names.TRAIN_TASK: {names.MODEL, names.TRAINING_METRICS},
        names.EVALUATE_TASK: {names.EVALUATION, names.BLESSING, names.EVAL_METRICS, names.FAIRNESS_REPORT},
        names.INFRA_VALIDATE_TASK: {names.INFRA_BLESSING, names.INFRA_REPORT},
        names.PUSH_TASK: {names.PUSHED_MODEL, names.PUSH_REPORT},
        names.DEPLOY_TASK: {names.DEPLOYMENT, names.DEPLOY_REPORT, names.DEPLOY_HTML, names.DEPLOY_METRICS},
    }
    for task, expected in outputs.items():
        component = compiled["spec"]["components"][tasks[task]["componentRef"]["name"]]
        assert expected <= set(component["outputDefinitions"]["artifacts"]), task
    # Data tests before training; only what the push published is deployed.
    assert names.VALIDATE_TASK in tasks[names.TRANSFORM_TASK]["dependentTasks"]
    assert names.PUSH_TASK in tasks[names.DEPLOY_TASK]["dependentTasks"]
    # Nothing is pushed that the model server has not loaded and answered with.
    assert names.INFRA_VALIDATE_TASK in tasks[names.PUSH_TASK]["dependentTasks"]


def test_pipeline_parameters_are_the_config_fields_with_its_defaults(compiled):
    parameters = compiled["spec"]["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == set(PipelineConfig.field_names())
    defaults = PipelineConfig().pipeline_arguments()
    for name, definition in parameters.items():
        assert definition["defaultValue"] == defaults[name], name
    assert defaults["label_threshold"] == threshold_to_parameter(None)


def test_run_local_arguments_match_the_pipeline_signature():
    from pipelines.training_pipeline import training_pipeline

    signature = inspect.signature(training_pipeline.pipeline_func)
    assert set(signature.parameters) == set(PipelineConfig().pipeline_arguments())
