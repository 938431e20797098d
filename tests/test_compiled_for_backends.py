"""The committed compiled files against what their backends do with them.

Kubeflow: the checks the KFP v2 driver applies before it starts a task (backend/src/v2/driver,
resolve.go and driver.go), mirrored here because no KFP backend can run on our machines:
- each constant fed to a declared component input has that input's type (a string constant for a
  number, list, bool or struct input is "input parameter type mismatch"), and is not an unresolved
  `{{$.inputs.parameters[...]}}` placeholder (the driver passes constants through as they are);
- each parameter-driven resource field (`resourceCpuRequest`, accelerator `resourceCount`, ...)
  names a `pipelinechannel--` input the task has, fed by a STRING parameter: the driver resolves
  those placeholders with the value's string form only, so a number sets nothing (accelerator) or
  fails to parse (CPU, memory), and the default must parse as a Kubernetes quantity.
Vertex AI: the real aiplatform.PipelineJob class loads the Vertex files (anonymous credentials, no
network: it only builds the request), and the train step is a custom job on the spec's machines.
"""


import re

import pytest
import yaml

from components.common import names
from components.common.config import PipelineConfig, VertexSpec
from pipelines.compile import KUBEFLOW_FILES, VERTEX_FILES, compile_vertex_pipeline

ALL_FILES = KUBEFLOW_FILES + VERTEX_FILES
PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.parameters\['(.+?)'\]\}\}")
# Constants the driver itself replaces (resolve.go, resolveInputParameter).
DRIVER_PLACEHOLDERS = {"{{$.pipeline_job_name}}", "{{$.pipeline_job_resource_name}}", "{{$.pipeline_job_uuid}}",
                       "{{$.pipeline_task_name}}", "{{$.pipeline_task_uuid}}", "{{$.pipeline_job_create_time_utc}}",
                       "{{$.pipeline_job_schedule_time_utc}}"}
PYTHON_TYPES = {"STRING": str, "NUMBER_INTEGER": (int, float), "NUMBER_DOUBLE": (int, float), "BOOLEAN": bool,
                "LIST": list, "STRUCT": dict}
RESOURCE_FIELDS = ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")  # a Kubernetes quantity
COUNT = re.compile(r"^[0-9]+$")
NOT_CACHED = {names.EVALUATE_TASK, names.PUSH_TASK, names.DEPLOY_TASK, names.MONITOR_TASK}


def _documents(path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


def _dags(spec: dict):
    """(DAG inputs, tasks) of the root and of every sub-DAG."""
    yield spec["root"].get("inputDefinitions", {}).get("parameters", {}), spec["root"]["dag"]["tasks"]
    for component in spec["components"].values():
        if "dag" in component:
            yield component.get("inputDefinitions", {}).get("parameters", {}), component["dag"]["tasks"]


def _executor(spec: dict, task: dict) -> dict | None:
    label = spec["components"][task["componentRef"]["name"]].get("executorLabel")
    return spec["deploymentSpec"]["executors"][label].get("container") if label else None


def constant_type_errors(spec: dict) -> list[str]:
    """What the driver's input type check (resolve.go) would refuse, task by task."""
    errors = []
    for _, tasks in _dags(spec):
        for task_name, task in tasks.items():
            declared = spec["components"][task["componentRef"]["name"]].get("inputDefinitions", {}).get("parameters", {})
            for name, value in task.get("inputs", {}).get("parameters", {}).items():
                if "runtimeValue" not in value or name not in declared:
                    continue  # the driver checks declared inputs only
                constant, kind = value["runtimeValue"]["constant"], declared[name]["parameterType"]
                if not isinstance(constant, PYTHON_TYPES[kind]) or (kind != "BOOLEAN" and isinstance(constant, bool)):
                    errors.append(f"{task_name}.{name}: {kind} input fed {constant!r}")
                elif isinstance(constant, str) and PLACEHOLDER.search(constant) and constant not in DRIVER_PLACEHOLDERS:
                    errors.append(f"{task_name}.{name}: receives the unresolved placeholder {constant!r}")
    return errors


def resource_errors(spec: dict) -> tuple[list[str], int]:
    """Parameter-driven resource fields the driver (driver.go) would not resolve, and how many it would."""
    errors, resolved = [], 0
    for dag_inputs, tasks in _dags(spec):
        for task_name, task in tasks.items():
            container = _executor(spec, task)
            if not container or "resources" not in container:
                continue
            resources = container["resources"]
            accelerator = resources.get("accelerator", {})
            settings = [(resources.get(f), QUANTITY) for f in RESOURCE_FIELDS]
            settings += [(accelerator.get("resourceCount"), COUNT), (accelerator.get("resourceType"), None)]
            for value, form in settings:
                match = PLACEHOLDER.fullmatch(value or "")
                if not match:
                    continue
                channel = task["inputs"]["parameters"].get(match.group(1))
                if not channel:
                    errors.append(f"{task_name}: resource placeholder {value} has no task input")
                    continue
                parameter = channel["componentInputParameter"]
                definition = dag_inputs[parameter]
                default = definition.get("defaultValue")
                if definition["parameterType"] != "STRING":
                    errors.append(f"{task_name}: {parameter} drives a resource but is {definition['parameterType']}")
                elif form is not None and default is not None and not form.match(default):
                    errors.append(f"{task_name}: {parameter} default {default!r} does not parse")
                else:
                    resolved += 1
    return errors, resolved


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_constant_input_has_the_declared_type(path):
    assert constant_type_errors(_documents(path)[0]) == []


@pytest.mark.parametrize("path", KUBEFLOW_FILES, ids=lambda p: p.name)
def test_parameter_driven_resources_resolve_on_the_kfp_backend(path):
    errors, resolved = resource_errors(_documents(path)[0])
    assert errors == []
    assert resolved >= 3 * 2 + 4  # three Beam steps (cpu, memory) and train (cpu, memory, accelerator)


def test_the_driver_checks_catch_a_colliding_input_and_a_numeric_resource_parameter(tmp_path):
    """The form this pipeline had: a component input named like the parameter that drives a
    resource setting (KFP feeds it the placeholder), and that parameter an integer."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def step(accelerator_count: int) -> int:
        return accelerator_count

    @dsl.pipeline(name="collision")
    def collision(accelerator_count: int = 1):
        step(accelerator_count=accelerator_count).set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(
            accelerator_count)

    path = tmp_path / "collision.yaml"
    compiler.Compiler().compile(collision, str(path))
    spec = _documents(path)[0]
    assert any("NUMBER_INTEGER input fed" in e for e in constant_type_errors(spec))
    assert any("drives a resource but is NUMBER_INTEGER" in e for e in resource_errors(spec)[0])


@pytest.mark.parametrize("path", KUBEFLOW_FILES, ids=lambda p: p.name)
def test_every_beam_step_and_train_request_cpu_and_memory(path):
    spec = _documents(path)[0]
    requested = set()
    for _, tasks in _dags(spec):
        for name, task in tasks.items():
            resources = (_executor(spec, task) or {}).get("resources", {})
            if resources.get("resourceCpuRequest") and resources.get("resourceMemoryRequest"):
                requested.add(name)
    assert {names.VALIDATE_TASK, names.TRANSFORM_TASK, names.EVALUATE_TASK, names.TRAIN_TASK} <= requested


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_tasks_that_read_outside_state_are_never_cached(path):
    spec, seen = _documents(path)[0], set()
    for _, tasks in _dags(spec):
        for name, task in tasks.items():
            if task.get("componentRef", {}).get("name", "").startswith("comp-condition"):
                continue
            if "executorLabel" not in spec["components"][task["componentRef"]["name"]]:
                continue  # a sub-DAG
            cached = task.get("cachingOptions", {}).get("enableCache", False)
            assert cached == (name not in NOT_CACHED), f"{path.name}: {name} caching={cached}"
            seen.add(name)
    assert {names.EVALUATE_TASK, names.PUSH_TASK, names.DEPLOY_TASK, names.INGEST_TASK} <= seen


@pytest.mark.parametrize("path", VERTEX_FILES, ids=lambda p: p.name)
def test_vertex_file_is_one_document_without_kubernetes_settings(path):
    documents = _documents(path)
    assert len(documents) == 1
    assert "platforms" not in documents[0] and "kubernetes" not in path.read_text()
    for _, tasks in _dags(documents[0]):
        for name, task in tasks.items():
            resources = (_executor(documents[0], task) or {}).get("resources", {})
            assert "resourceCpuRequest" not in resources and "resourceMemoryRequest" not in resources, name
            if name in (names.VALIDATE_TASK, names.TRANSFORM_TASK, names.EVALUATE_TASK):
                assert resources["resourceCpuLimit"] == VertexSpec().cpu_limit
                assert resources["resourceMemoryLimit"] == VertexSpec().memory_limit


def _pipeline_job(path, **parameter_values):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    job = aiplatform.PipelineJob(
        display_name="test", template_path=str(path), pipeline_root="gs://bucket/pipeline_root",
        project="test-project", location="us-central1", credentials=AnonymousCredentials(),
        parameter_values=parameter_values,
    )
    return job.to_dict()


def test_vertex_pipeline_loads_in_aiplatform_with_its_tasks_and_parameters():
    request = _pipeline_job(VERTEX_FILES[0], epochs=3, data_uri="gs://bucket/data.csv")
    tasks = request["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(tasks) == {names.INGEST_TASK, names.VALIDATE_TASK, names.TRANSFORM_TASK, names.TRAIN_TASK,
                          names.EVALUATE_TASK, names.INFRA_VALIDATE_TASK, names.PUSH_TASK, names.DEPLOY_TASK}
    values = request["runtimeConfig"]["parameterValues"]
    assert values["epochs"] == 3 and values["data_uri"] == "gs://bucket/data.csv"
    assert request["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/pipeline_root"
    assert set(request["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]) == set(PipelineConfig.field_names())


def test_vertex_retraining_pipeline_loads_in_aiplatform():
    request = _pipeline_job(VERTEX_FILES[1], retrain_on="always")
    assert set(request["pipelineSpec"]["root"]["dag"]["tasks"]) == {names.MONITOR_TASK, "condition-1"}


def test_kubeflow_file_is_not_a_vertex_file():
    with pytest.raises(yaml.composer.ComposerError):
        _pipeline_job(KUBEFLOW_FILES[0])


def _worker_pools(request: dict) -> list[dict]:
    spec = request["pipelineSpec"]
    train = spec["components"][spec["root"]["dag"]["tasks"][names.TRAIN_TASK]["componentRef"]["name"]]
    return train["inputDefinitions"]["parameters"]["worker_pool_specs"]["defaultValue"]


def test_vertex_train_step_is_a_custom_job_on_the_default_cpu_machine():
    pools = _worker_pools(_pipeline_job(VERTEX_FILES[0]))
    assert len(pools) == 1 and pools[0]["replica_count"] == 1
    assert pools[0]["machine_spec"] == {"machine_type": VertexSpec().machine_type}
    assert pools[0]["container_spec"]["image_uri"].rsplit("/", 1)[-1].startswith("train:")


def test_vertex_multi_worker_gpu_spec_gives_a_chief_and_workers(tmp_path):
    spec = VertexSpec(machine_type="g2-standard-8", accelerator_type="NVIDIA_L4", accelerator_count=1,
                      replica_count=3)
    request = _pipeline_job(compile_vertex_pipeline(tmp_path / "gpu.yaml", spec))
    pools = _worker_pools(request)
    assert [p["replica_count"] for p in pools] == [1, 2]
    for pool in pools:
        assert pool["machine_spec"] == {"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4",
                                        "accelerator_count": 1}
    inputs = request["pipelineSpec"]["root"]["dag"]["tasks"][names.TRAIN_TASK]["inputs"]["parameters"]
    assert inputs["multi_worker"]["runtimeValue"]["constant"] is True
    assert inputs["strategy_accelerator_type"]["runtimeValue"]["constant"] == "NVIDIA_L4"


@pytest.mark.parametrize("fields, message", [
    ({"accelerator_type": "nvidia.com/gpu", "accelerator_count": 1}, "not a Vertex accelerator"),
    ({"accelerator_type": "NVIDIA_L4"}, "go together"),
    ({"replica_count": 0}, "replica_count"),
])
def test_bad_vertex_spec_is_refused(fields, message):
    from components.common.errors import PipelineInputError

    with pytest.raises(PipelineInputError, match=message):
        VertexSpec(**fields)
