"""File helpers over fsspec: local paths, gs:// (gcsfs) and s3:// (s3fs) through one code path.

Endpoints come from the standard environment: `STORAGE_EMULATOR_HOST` (gcsfs: fake-gcs-server) and
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` (botocore: MinIO, moto), so no endpoint flag is needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
from typing import Any

import fsspec


def _gfile():
    """tf.io.gfile, for the callers that still read TFRecords through TensorFlow (monitor, tfdv_stats)."""
    import tensorflow as tf  # deferred: keeps importing the config light

    return tf.io.gfile


def is_local(uri: str) -> bool:
    return "://" not in uri


def _fs(uri: str):
    """(filesystem, path) for a URI. s3fs does not read AWS_ENDPOINT_URL_S3 itself (botocore's
    env-config only covers some client paths), so it is passed explicitly."""
    if uri.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return fsspec.core.url_to_fs(uri, endpoint_url=endpoint)
    return fsspec.core.url_to_fs(uri)


# Object stores whose URIs every Beam worker (Dataflow, Flink, Spark) opens with Beam's own
# filesystems (apache-beam[gcp]); the launcher's local copies and FUSE mounts exist in the task only.
BEAM_SCHEMES = ("gs://",)


def beam_location(artifact: Any) -> str:
    """Where a Beam step reads or writes a KFP artifact: its URI when Beam's workers can open it
    (gs://: Vertex, Kubeflow on a GCS artifact store), else the task's local path (kfp.local; a
    MinIO or S3 artifact store, which the launcher copies in and out of the pod)."""
    return artifact.uri if artifact.uri.startswith(BEAM_SCHEMES) else artifact.path


def join(*parts: str) -> str:
    return os.path.join(*parts) if is_local(parts[0]) else posixpath.join(*parts)


def exists(uri: str) -> bool:
    fs, path = _fs(uri)
    if not is_local(uri):
        fs.invalidate_cache()  # registry readers must see other writers' objects, not a stale listing
    return fs.exists(path)


def isdir(uri: str) -> bool:
    if is_local(uri):
        return os.path.isdir(uri)
    fs, path = _fs(uri)
    fs.invalidate_cache()
    return fs.isdir(path)


def open_binary(uri: str):
    """A binary reader of a local, gs:// or s3:// file (a context manager)."""
    if is_local(uri):
        return open(uri, "rb")  # noqa: SIM115 (the caller's with-block closes it)
    fs, path = _fs(uri)
    return fs.open(path, "rb")


def makedirs(uri: str) -> None:
    # Object stores have no directories (a no-op for keys; creates a missing bucket at most).
    if is_local(uri):
        os.makedirs(uri, exist_ok=True)


def read_bytes(uri: str) -> bytes:
    fs, path = _fs(uri)
    return fs.cat_file(path)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def read_json(uri: str) -> Any:
    return json.loads(read_text(uri))


def write_text_atomic(uri: str, text: str) -> None:
    """Write whole-or-nothing: locally a temporary sibling then os.replace; on GCS/S3 one PUT,
    which is atomic per object (readers see the old object or the new one)."""
    data = text.encode("utf-8")
    if not is_local(uri):
        fs, path = _fs(uri)
        fs.pipe_file(path, data)
        return
    parent = os.path.dirname(uri)
    if parent:
        makedirs(parent)
    tmp = f"{uri}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, uri)


def write_json_atomic(uri: str, value: Any) -> None:
    write_text_atomic(uri, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def create_exclusive(uri: str, text: str) -> bool:
    """Create `uri` only if it does not exist; False when it does. Local: O_CREAT|O_EXCL; GCS:
    ifGenerationMatch=0; S3: IfNoneMatch='*' (fsspec's mode="create" on gcsfs and s3fs)."""
    if is_local(uri):
        parent = os.path.dirname(uri)
        if parent:
            makedirs(parent)
        try:
            fd = os.open(uri, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return True
    fs, path = _fs(uri)
    try:
        fs.pipe_file(path, text.encode("utf-8"), mode="create")
    except (FileExistsError, OSError) as exc:
        # gcsfs raises FileExistsError/HttpError 412, s3fs FileExistsError or OSError (PreconditionFailed)
        if isinstance(exc, FileExistsError) or "412" in str(exc) or "Precondition" in str(exc):
            return False
        raise
    return True


def remove_tree(uri: str) -> None:
    """Delete a directory tree (or file); nothing when it is not there."""
    fs, path = _fs(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def listdir(uri: str) -> list[str]:
    """Names (not paths) of the entries directly under a directory; [] when it is missing."""
    if is_local(uri):
        return sorted(os.listdir(uri)) if os.path.isdir(uri) else []
    fs, path = _fs(uri)
    fs.invalidate_cache()
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted(posixpath.basename(e.rstrip("/")) for e in entries if e.rstrip("/") != path.rstrip("/"))


def sha256_file(uri: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    fs, path = _fs(uri)
    with fs.open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def list_files(uri: str) -> list[str]:
    """All files under a directory (or the file itself), relative, sorted."""
    if is_local(uri):
        if os.path.isfile(uri):
            return [""]
        return sorted(os.path.relpath(os.path.join(d, f), uri) for d, _, fs in os.walk(uri) for f in fs)
    fs, path = _fs(uri)
    fs.invalidate_cache()
    if fs.isfile(path):
        return [""]
    root = path.rstrip("/")
    return sorted(posixpath.relpath(p, root) for p in fs.find(root))


def sha256_tree(uri: str) -> str:
    """Content hash of a file or directory: relative paths and file hashes, order-independent."""
    digest = hashlib.sha256()
    for rel in list_files(uri):
        path = join(uri, rel) if rel else uri
        digest.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def copy_tree(src: str, dst: str) -> None:
    """Copy a file or directory tree between any two of local, gs://, s3:// (file by file, so
    across filesystems too)."""
    if is_local(src) and is_local(dst):
        import shutil

        if os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
            shutil.copy2(src, dst)
        return
    src_fs, _ = _fs(src)
    dst_fs, _ = _fs(dst)
    for rel in list_files(src):
        source = join(src, rel) if rel else src
        target = join(dst, rel) if rel else dst
        if is_local(target):
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with src_fs.open(_fs(source)[1], "rb") as fin, dst_fs.open(_fs(target)[1], "wb") as fout:
            while block := fin.read(1 << 20):
                fout.write(block)
