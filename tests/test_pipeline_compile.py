"""The compiled pipeline: golden IR YAML, accelerator requests on train, one set of names."""

from __future__ import annotations

import difflib
import inspect

import pytest
import yaml

from components.common import names
from components.common.config import PipelineConfig, threshold_to_parameter
from components.common.images import PIPELINE_IMAGE, TRAIN_IMAGE, package_version
from pipelines.compile import COMPILED_PIPELINE, compile_pipeline


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    path = compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")
    text = path.read_text()
    return {"text": text, "spec": next(yaml.safe_load_all(text))}


def test_compiled_pipeline_matches_golden_file(compiled):
    golden = COMPILED_PIPELINE.read_text()
    if compiled["text"] != golden:
        diff = "".join(difflib.unified_diff(golden.splitlines(True), compiled["text"].splitlines(True), "golden", "now", n=1))
        pytest.fail(f"compiled pipeline differs from {COMPILED_PIPELINE}; review, then `make compile`:\n{diff[:4000]}")


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
    images = {c["image"] for c in (e["container"] for e in compiled["spec"]["deploymentSpec"]["executors"].values())}
    assert images == {PIPELINE_IMAGE, TRAIN_IMAGE}
    assert all(i.endswith(":" + package_version()) for i in images)
    assert ":latest" not in compiled["text"]


def test_tasks_and_artifacts_use_the_shared_names(compiled):
    tasks = compiled["spec"]["root"]["dag"]["tasks"]
    assert set(tasks) == {names.INGEST_TASK, names.VALIDATE_TASK, names.TRANSFORM_TASK, names.TRAIN_TASK,
                          names.EVALUATE_TASK, names.PUSH_TASK}
    outputs = {
        names.INGEST_TASK: {names.EXAMPLES},
        names.VALIDATE_TASK: {names.STATISTICS, names.SCHEMA, names.ANOMALIES, names.VALIDATION_REPORT},
        names.TRANSFORM_TASK: {names.TRANSFORM_GRAPH, names.TRANSFORMED_EXAMPLES},
        names.TRAIN_TASK: {names.MODEL, names.TRAINING_METRICS},
        names.EVALUATE_TASK: {names.EVALUATION, names.BLESSING, names.EVAL_METRICS, names.FAIRNESS_REPORT},
        names.PUSH_TASK: {names.PUSHED_MODEL, names.PUSH_REPORT},
    }
    for task, expected in outputs.items():
        component = compiled["spec"]["components"][tasks[task]["componentRef"]["name"]]
        assert expected <= set(component["outputDefinitions"]["artifacts"]), task
    # Data tests before training.
    assert names.VALIDATE_TASK in tasks[names.TRANSFORM_TASK]["dependentTasks"]


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
