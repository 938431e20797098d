"""Object storage for the serving image: model versions down from gs:// or s3://, log parts up.

The same library as the pipeline (fsspec with gcsfs and s3fs; components/common/io.py), with the
same standard endpoint settings: `STORAGE_EMULATOR_HOST` (GCS emulator) and `AWS_ENDPOINT_URL` /
`AWS_ENDPOINT_URL_S3` (MinIO, moto). The serving image ships only this package, so the few lines
of fsspec set-up are written here again.

A model URI is either a version directory or a registry model root with CHAMPION.json (whose
champion is fetched, and only it). On KServe the storage initializer has already copied the
version to /mnt/models; on Vertex, AIP_STORAGE_URI is the gs:// version directory, and it is
copied here.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import tempfile
import time

import fsspec

log = logging.getLogger("kserve.serving.storage")

REMOTE_SCHEMES = ("gs://", "s3://")
# Vertex AI's custom-container contract: the model's artifact_uri, copied by nobody but us.
VERTEX_STORAGE_ENV = "AIP_STORAGE_URI"


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_SCHEMES)


def filesystem(uri: str):
    """(fsspec filesystem, path) for a URI; s3fs is given the endpoint explicitly (it does not read
    AWS_ENDPOINT_URL_S3 itself)."""
    if uri.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return fsspec.core.url_to_fs(uri, endpoint_url=endpoint)
    return fsspec.core.url_to_fs(uri)


def _download_dir(fs, remote: str, local: str) -> int:
    """Copy every object under `remote` into `local`; the number of files."""
    root = remote.rstrip("/")
    files = [p for p in fs.find(root) if not p.endswith("/")]
    for path in files:
        target = os.path.join(local, posixpath.relpath(path, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(path, target)
    return len(files)


def fetch_model(uri: str, cache_dir: str, champion_file: str) -> str:
    """A local directory holding the model at `uri`: `uri` itself when it is local, else a copy of
    the version directory (or of the registry root's champion, with its CHAMPION.json) under
    `cache_dir`. The copy is made in a temporary sibling and renamed, so a crash leaves no
    half-copied model that a restart would serve."""
    if not is_remote(uri):
        return uri
    start = time.monotonic()
    fs, root = filesystem(uri)
    root = root.rstrip("/")
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir)
    try:
        pointer = posixpath.join(root, champion_file)
        if fs.exists(pointer):
            record = json.loads(fs.cat_file(pointer))
            relative = str(record.get("path") or "")
            if not relative or relative.startswith("/") or ".." in relative.split("/"):
                raise ValueError(f"{uri}/{champion_file} names path {relative!r}: expected versions/<version>")
            fs.get_file(pointer, os.path.join(staging, champion_file))
            copied = _download_dir(fs, posixpath.join(root, relative), os.path.join(staging, relative))
            if copied == 0:
                raise FileNotFoundError(f"{uri}/{champion_file} names {relative}, which holds no files")
        else:
            copied = _download_dir(fs, root, staging)
            if copied == 0:
                raise FileNotFoundError(f"{uri} holds no files (neither a model version nor a registry root)")
        target = os.path.join(cache_dir, "model")
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("copied %d files of %s to %s in %.1f s", copied, uri, target, time.monotonic() - start)
    return target
