"""File helpers that work on local paths and on tf.io.gfile URIs (gs://, s3:// with tensorflow-io)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any


def _gfile():
    import tensorflow as tf  # deferred: keeps importing the config light

    return tf.io.gfile


def is_local(uri: str) -> bool:
    return "://" not in uri


# Object stores whose URIs every Beam worker (Dataflow, Flink, Spark) opens with Beam's own
# filesystems (apache-beam[gcp]); the launcher's local copies and FUSE mounts exist in the task only.
BEAM_SCHEMES = ("gs://",)


def beam_location(artifact: Any) -> str:
    """Where a Beam step reads or writes a KFP artifact: its URI when Beam's workers can open it
    (gs://: Vertex, Kubeflow on a GCS artifact store), else the task's local path (kfp.local; a
    MinIO or S3 artifact store, which the launcher copies in and out of the pod)."""
    return artifact.uri if artifact.uri.startswith(BEAM_SCHEMES) else artifact.path


def join(*parts: str) -> str:
    return os.path.join(*parts)


def exists(uri: str) -> bool:
    return os.path.exists(uri) if is_local(uri) else _gfile().exists(uri)


def makedirs(uri: str) -> None:
    if is_local(uri):
        os.makedirs(uri, exist_ok=True)
    else:
        _gfile().makedirs(uri)


def read_text(uri: str) -> str:
    if is_local(uri):
        with open(uri, encoding="utf-8") as f:
            return f.read()
    with _gfile().GFile(uri, "r") as f:
        return f.read()


def read_json(uri: str) -> Any:
    return json.loads(read_text(uri))


def write_text_atomic(uri: str, text: str) -> None:
    """Write whole-or-nothing: a temporary sibling, then a rename (one object PUT on GCS/S3)."""
    parent = os.path.dirname(uri)
    if parent:
        makedirs(parent)
    tmp = f"{uri}.tmp-{uuid.uuid4().hex[:8]}"
    if is_local(uri):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, uri)
    else:
        with _gfile().GFile(tmp, "w") as f:
            f.write(text)
        _gfile().rename(tmp, uri, overwrite=True)


def write_json_atomic(uri: str, value: Any) -> None:
    write_text_atomic(uri, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(uri: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    opener = open(uri, "rb") if is_local(uri) else _gfile().GFile(uri, "rb")
    with opener as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def list_files(uri: str) -> list[str]:
    """All files under a directory (or the file itself), relative, sorted."""
    if not is_local(uri):
        gfile = _gfile()
        if not gfile.isdir(uri):
            return [""]
        return sorted(
            os.path.relpath(os.path.join(d, f), uri) for d, _, fs in gfile.walk(uri) for f in fs
        )
    if os.path.isfile(uri):
        return [""]
    return sorted(os.path.relpath(os.path.join(d, f), uri) for d, _, fs in os.walk(uri) for f in fs)


def sha256_tree(uri: str) -> str:
    """Content hash of a file or directory: relative paths and file hashes, order-independent."""
    digest = hashlib.sha256()
    for rel in list_files(uri):
        path = os.path.join(uri, rel) if rel else uri
        digest.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def copy_tree(src: str, dst: str) -> None:
    """Copy a file or directory tree (local or gfile URIs)."""
    if is_local(src) and is_local(dst):
        import shutil

        if os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
            shutil.copy2(src, dst)
        return
    gfile = _gfile()
    for rel in list_files(src):
        source = os.path.join(src, rel) if rel else src
        target = os.path.join(dst, rel) if rel else dst
        gfile.makedirs(os.path.dirname(target))
        gfile.copy(source, target, overwrite=True)
