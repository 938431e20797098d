"""Container image references: `<repository>/<name>:<package version>` (no floating tags).

The repository is a setting read when components are imported, at build time (`make images`) and at
compile time (`make compile`), so both name the same images: $KFP_IMAGE_REPOSITORY, else the
project's default. A platform team sets it to its own Artifact Registry, GHCR or Harbor path.
Standard library only: components/images/build.py uses this module before any venv exists.
"""

from __future__ import annotations

import configparser
import functools
import os
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "kfp-prod-components"
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/kfp-prod-components"
IMAGE_REPOSITORY_ENV = "KFP_IMAGE_REPOSITORY"
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"


@functools.cache
def package_version() -> str:
    if SETUP_CFG.exists():  # a source tree: setup.cfg is the one place the version is written
        parser = configparser.ConfigParser()
        parser.read(SETUP_CFG)
        return parser["metadata"]["version"]
    return metadata.version(DISTRIBUTION)


def image_repository() -> str:
    return (os.environ.get(IMAGE_REPOSITORY_ENV) or DEFAULT_IMAGE_REPOSITORY).rstrip("/")


def image(name: str, repository: str | None = None) -> str:
    return f"{(repository or image_repository()).rstrip('/')}/{name}:{package_version()}"


# Every pipeline component runs in the pipeline image built from pipeline-runtime.lock; train in its
# CUDA variant (train-gpu.lock); the model server and the infra validator in the serving image.
PIPELINE_IMAGE = image("pipeline")
TRAIN_IMAGE = image("train")
SERVING_IMAGE = image("serving")
