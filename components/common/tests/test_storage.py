"""components/common/io.py on local paths, a moto S3 server and fake-gcs-server."""

from __future__ import annotations

import pytest

from components.common import io as fio
from components.common.tests.storage_peers import _gcs_emulator, _moto_endpoint, gs_root, s3_root  # noqa: F401


@pytest.fixture(params=["local", "s3", "gs"])
def root(request, tmp_path):
    return str(tmp_path) if request.param == "local" else request.getfixturevalue(f"{request.param}_root")


def test_write_read_exists_list_copy(root, tmp_path):
    a = fio.join(root, "m", "a.json")
    assert not fio.exists(a)
    fio.write_json_atomic(a, {"x": 1})
    fio.write_text_atomic(fio.join(root, "m", "sub", "b.txt"), "hi")
    assert fio.exists(a) and fio.read_json(a) == {"x": 1}
    assert fio.list_files(fio.join(root, "m")) == ["a.json", "sub/b.txt"]
    assert fio.listdir(fio.join(root, "m")) == ["a.json", "sub"]
    fio.copy_tree(fio.join(root, "m"), fio.join(root, "copy"))
    assert fio.sha256_tree(fio.join(root, "copy")) == fio.sha256_tree(fio.join(root, "m"))
    fio.copy_tree(fio.join(root, "m"), str(tmp_path / "back"))  # object store -> local
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "hi"


def test_create_exclusive(root):
    lock = fio.join(root, "LOCK")
    assert fio.create_exclusive(lock, "1")
    assert not fio.create_exclusive(lock, "2")
    assert fio.read_text(lock) == "1"
