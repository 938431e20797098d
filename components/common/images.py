"""Container image references, derived from the package version in one place (no floating tags)."""

from __future__ import annotations

import configparser
import functools
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "kfp-prod-components"
IMAGE_REPOSITORY = "ghcr.io/kfp-prod-components"


@functools.cache
def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        parser = configparser.ConfigParser()
        parser.read(Path(__file__).resolve().parents[2] / "setup.cfg")
        return parser["metadata"]["version"]


def image(name: str) -> str:
    return f"{IMAGE_REPOSITORY}/{name}:{package_version()}"


# Every pipeline component runs in the pipeline image built from pipeline.lock; training has a
# CUDA-enabled variant of it (components/train/Dockerfile).
PIPELINE_IMAGE = image("pipeline")
TRAIN_IMAGE = image("train")
SERVING_IMAGE = image("serving")
