"""The pipeline in its containers (`make test-containers`): kfp.local's DockerRunner starts every
task in the image the compiled pipeline names, with no network, as a non-root user, and only the
run's output directory mounted; the user's CSV comes from outside the repository.

Needs the images of this tree (`make images`) and a Docker engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from components.common import names
from components.common.config import PipelineConfig
from components.common.images import PIPELINE_IMAGE, SERVING_IMAGE, TRAIN_IMAGE
from pipelines import local_runner, run_local
from tests.tiny_fixture import LOOSE_GATES

pytestmark = [pytest.mark.containers, pytest.mark.e2e]

# The 800-row fixture's eval split is small: the gates are loosened (tests/tiny_fixture.py).
FAST = {"epochs": 4, "infra_validation_requests": 20, **LOOSE_GATES}
TASK_IMAGES = {names.INGEST_TASK: PIPELINE_IMAGE, names.VALIDATE_TASK: PIPELINE_IMAGE,
               names.TRANSFORM_TASK: PIPELINE_IMAGE, names.TRAIN_TASK: TRAIN_IMAGE,
               names.EVALUATE_TASK: PIPELINE_IMAGE, names.INFRA_VALIDATE_TASK: SERVING_IMAGE,
               names.PUSH_TASK: PIPELINE_IMAGE, names.DEPLOY_TASK: PIPELINE_IMAGE}


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module", autouse=True)
def images_present():
    for image in set(TASK_IMAGES.values()):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            pytest.fail(f"{image} is not built: run `make images` (make test-containers does)")


def _started_images(since: float) -> list[str]:
    events = _docker("events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                     "--filter", "type=container", "--filter", "event=start", "--format", "{{.From}}")
    return [line for line in events.splitlines() if line]


@pytest.fixture(scope="module")
def containerized_run(hmda_csv, tmp_path_factory):
    user_dir = tmp_path_factory.mktemp("user-data")  # outside the repository and outside OUT
    csv = user_dir / "my loans.csv"
    shutil.copyfile(hmda_csv, csv)
    out = str(tmp_path_factory.mktemp("run"))
    config = PipelineConfig(data_uri=str(csv), registry_uri=os.path.join(out, "registry"), **FAST)
    started = time.time() - 1
    summary = run_local.run(config, out, runner=local_runner.DOCKER)
    return out, summary, _started_images(started)


def test_every_task_ran_in_its_own_image_and_the_model_is_blessed(containerized_run):
    out, summary, started = containerized_run
    assert summary["status"] == names.STATUS_BLESSED, summary.get("error") or summary["gates"]
    assert summary["runner"] == local_runner.DOCKER and summary["pushed"], summary.get("push_reason")
    assert sorted(started) == sorted(TASK_IMAGES.values())  # one container per task, nothing else
    assert set(summary["timings_s"]) == set(TASK_IMAGES)
    on_disk = json.load(open(os.path.join(out, "run_summary.json")))
    assert on_disk["model_uri"] == summary["model_uri"] and summary["model_uri"].startswith(out)


def test_the_model_server_in_the_serving_image_answered_before_the_push(containerized_run):
    _, summary, _ = containerized_run
    infra = summary["infra_validation"]
    assert infra["blessed"] and infra["v1"]["requests"] == FAST["infra_validation_requests"]
    assert infra["v2"]["max_abs_diff_vs_v1"] <= 1e-4 and infra["load_seconds"] > 0
    lineage = json.load(open(summary["lineage"]))
    assert lineage["infra_validation"]["v1"]["requests"] == FAST["infra_validation_requests"]


def test_tasks_wrote_as_a_non_root_user_and_read_the_staged_copy_of_the_csv(containerized_run):
    out, summary, _ = containerized_run
    uid, _ = local_runner.container_user()
    examples = os.path.join(summary["run_dir"], names.INGEST_TASK, names.EXAMPLES)
    assert os.stat(os.path.join(examples, names.TRAIN, names.EXAMPLES_FILE)).st_uid == uid != 0
    assert summary["data"].startswith(os.path.join(out, local_runner.INPUTS_DIR))
    assert summary["data"].endswith("my loans.csv")


def test_a_second_containerized_run_is_judged_against_the_champion(containerized_run, hmda_csv):
    out, first, _ = containerized_run
    config = PipelineConfig(data_uri=str(hmda_csv), registry_uri=os.path.join(out, "registry"), seed=7, **FAST)
    second = run_local.run(config, out, runner=local_runner.DOCKER)
    assert second["baseline_version"] == os.path.basename(first["model_uri"])
    regression = next(g for g in second["gates"] if g["name"] == "no_regression")
    assert regression["value"] is not None


def _pem_blocks(text: str) -> set[str]:
    return {block.split("-----END CERTIFICATE-----")[0].strip()
            for block in text.split("-----BEGIN CERTIFICATE-----")[1:]}


@pytest.mark.parametrize("image", sorted(set(TASK_IMAGES.values())))
def test_no_image_holds_a_ca_that_only_the_build_host_trusts(image):
    """The build host's extra CAs (a TLS-inspecting proxy's) reach the builder as a BuildKit
    secret only. Where the host trusts nothing beyond Debian's bundle there is nothing to find."""
    from components.images.build import ca_bundle

    host_bundle = ca_bundle()
    if host_bundle is None:
        pytest.skip("this host has no CA bundle")
    image_bundle = _docker("run", "--rm", "--network", "none", "--entrypoint", "cat", image,
                           "/etc/ssl/certs/ca-certificates.crt")
    extra = _pem_blocks(open(host_bundle).read()) - _pem_blocks(image_bundle)
    for block in extra:
        marker = block.splitlines()[1]  # a line of the certificate's own base64 body
        found = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "grep", image,
                                "-rlF", marker, "/etc", "/opt", "/home", "/root", "/usr/local"],
                               capture_output=True, text=True)
        assert found.stdout == "", f"{image} holds a CA of the build host: {found.stdout}"
