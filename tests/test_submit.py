"""Submission to Kubeflow Pipelines and Vertex AI, against autospec'd clients (no cluster, no cloud)."""

from __future__ import annotations

from unittest import mock

import kfp
import pytest
import yaml
from google.cloud import aiplatform

from components.common.config import PipelineConfig
from components.common.errors import PipelineInputError
from pipelines import submit
from pipelines.compile import COMPILED_PIPELINE, COMPILED_VERTEX_PIPELINE


@pytest.fixture
def arguments():
    return PipelineConfig(data_uri="gs://bucket/hmda.csv", registry_uri="gs://bucket/registry").pipeline_arguments()


def test_arguments_are_exactly_the_compiled_pipelines_parameters(arguments):
    compiled = next(yaml.safe_load_all(COMPILED_PIPELINE.read_text()))  # then the platform spec
    assert set(arguments) == set(compiled["root"]["inputDefinitions"]["parameters"])


def test_kubeflow_submission_passes_package_and_arguments(arguments):
    client = mock.create_autospec(kfp.Client, instance=True)
    client.create_run_from_pipeline_package.return_value.run_id = "run-123"
    submission = submit.submit_to_kubeflow("https://kfp.example.com/pipeline", arguments, client=client)
    client.create_run_from_pipeline_package.assert_called_once_with(
        str(COMPILED_PIPELINE), arguments=arguments, run_name=None, experiment_name=submit.PIPELINE_NAME,
        namespace=None, enable_caching=False,
    )
    assert submission == submit.Submission(
        "kubeflow", "run-123", "https://kfp.example.com/pipeline/#/runs/details/run-123")


def test_vertex_submission_builds_a_pipeline_job(arguments):
    aip = mock.Mock()
    aip.init = mock.create_autospec(aiplatform.init)
    aip.PipelineJob = mock.create_autospec(aiplatform.PipelineJob)
    job = aip.PipelineJob.return_value
    job.resource_name = "projects/p/locations/us-central1/pipelineJobs/training-pipeline-1"
    job._dashboard_uri.return_value = "https://console.cloud.google.com/vertex-ai/pipelines/runs/1"
    submission = submit.submit_to_vertex("p", "us-central1", "gs://bucket/root", arguments,
                                         service_account="sa@p.iam.gserviceaccount.com", aiplatform_module=aip)
    aip.init.assert_called_once_with(project="p", location="us-central1")
    aip.PipelineJob.assert_called_once_with(
        display_name=submit.PIPELINE_NAME, template_path=str(COMPILED_VERTEX_PIPELINE), pipeline_root="gs://bucket/root",
        parameter_values=arguments, enable_caching=False, labels=None, project="p", location="us-central1",
    )
    job.submit.assert_called_once_with(service_account="sa@p.iam.gserviceaccount.com")
    assert submission.run_id == job.resource_name


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"project": "", "location": "us-central1", "pipeline_root": "gs://b/r"}, "needs project"),
    ({"project": "p", "location": "us-central1", "pipeline_root": "/tmp/root"}, "gs://"),
])
def test_vertex_submission_rejects_bad_settings_before_any_call(arguments, kwargs, words):
    aip = mock.Mock()
    with pytest.raises(PipelineInputError, match=words):
        submit.submit_to_vertex(arguments=arguments, aiplatform_module=aip, **kwargs)
    assert aip.mock_calls == []


def test_missing_package_is_named(arguments, tmp_path):
    client = mock.create_autospec(kfp.Client, instance=True)
    with pytest.raises(PipelineInputError, match="make compile"):
        submit.submit_to_kubeflow("https://kfp", arguments, package=tmp_path / "nope.yaml", client=client)
    client.create_run_from_pipeline_package.assert_not_called()


def test_kubeflow_needs_a_host(arguments):
    with pytest.raises(PipelineInputError, match="host"):
        submit.submit_to_kubeflow("", arguments)


def test_vertex_refuses_the_kubeflow_file(arguments):
    module = mock.MagicMock()
    with pytest.raises(PipelineInputError, match="more than one YAML document"):
        submit.submit_to_vertex("proj", "us-central1", "gs://bucket/root", arguments, package=COMPILED_PIPELINE,
                                aiplatform_module=module)
    module.PipelineJob.assert_not_called()
