"""The model server loads a pushed model from gs:// and s3:// (real protocol peers on loopback:
fake-gcs-server and moto's S3 server, the same fixtures as the pipeline's storage tests)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from components.common.tests.storage_peers import _gcs_emulator, _moto_endpoint, gs_root, s3_root  # noqa: F401
from serving import storage
from serving.tests import stand_in
from serving.tests.conftest import MODEL, Server

V1 = f"/v1/models/{MODEL}:predict"


def _upload(local_dir: str, uri: str) -> None:
    fs, root = storage.filesystem(uri)
    for directory, _, files in os.walk(local_dir):
        for name in files:
            path = os.path.join(directory, name)
            fs.pipe_file(f"{root}/{os.path.relpath(path, local_dir)}", open(path, "rb").read())


@pytest.fixture
def remote_registry(request, registry):
    """The stand-in registry copied to an object store, plus a second, older version the champion
    pointer does not name (so fetching the champion must not copy the whole registry)."""
    root = request.getfixturevalue(request.param)
    uri = f"{root}/registry/{MODEL}"
    _upload(str(registry["model_root"]), uri)
    fs, path = storage.filesystem(uri)
    fs.pipe_file(f"{path}/versions/v0-older/lineage.json", b"{}")
    return uri


@pytest.mark.parametrize("remote_registry", ["gs_root", "s3_root"], indirect=True)
def test_server_serves_the_champion_of_a_registry_on_an_object_store(remote_registry, registry, hmda_rows,
                                                                     tmp_path):
    cache = tmp_path / "cache"
    server = Server(remote_registry, tmp_path, "remote", "--backend=savedmodel", f"--model_cache_dir={cache}")
    try:
        server.wait_ready()
        response = server.post(V1, json={"instances": hmda_rows[:5]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == registry["version"]
        expected = stand_in.expected_probabilities(str(registry["version_dir"] / "saved_model"), hmda_rows[:5])
        np.testing.assert_allclose(body["predictions"], expected, atol=1e-6)
    finally:
        assert server.stop() == 0, server.logs()[-3000:]
    copied = {p.relative_to(cache / "model").as_posix() for p in (cache / "model").rglob("*") if p.is_file()}
    assert "CHAMPION.json" in copied
    assert not any(p.startswith("versions/v0-older") for p in copied)
    assert not [p for p in cache.iterdir() if p.name.startswith(".fetch-")]  # no staging left behind


@pytest.mark.parametrize("remote_registry", ["gs_root"], indirect=True)
def test_vertex_storage_uri_is_the_default_model_dir(remote_registry, registry, hmda_rows, tmp_path, monkeypatch):
    """Vertex passes the version directory (the Model's artifact_uri) as AIP_STORAGE_URI."""
    pointer = json.loads(registry["model_root"].joinpath("CHAMPION.json").read_text())
    monkeypatch.setenv(storage.VERTEX_STORAGE_ENV, f"{remote_registry}/{pointer['path']}")
    server = Server("", tmp_path, "vertex", "--backend=savedmodel", f"--model_cache_dir={tmp_path / 'c'}",
                    model_dir_arg=False)
    try:
        server.wait_ready()
        response = server.post(V1, json={"instances": hmda_rows[:2]})
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == registry["version"]
    finally:
        assert server.stop() == 0, server.logs()[-3000:]


def test_a_missing_remote_model_is_a_clear_error(s3_root, tmp_path):  # noqa: F811
    with pytest.raises(FileNotFoundError, match="holds no files"):
        storage.fetch_model(f"{s3_root}/registry/nothing-here", str(tmp_path), "CHAMPION.json")
    assert not list(tmp_path.iterdir())


def test_a_champion_pointer_outside_the_model_root_is_refused(s3_root, tmp_path):  # noqa: F811
    fs, root = storage.filesystem(f"{s3_root}/registry/m")
    fs.pipe_file(f"{root}/CHAMPION.json", json.dumps({"version": "v1", "path": "../other/v1"}).encode())
    with pytest.raises(ValueError, match="expected versions/<version>"):
        storage.fetch_model(f"{s3_root}/registry/m", str(tmp_path), "CHAMPION.json")
