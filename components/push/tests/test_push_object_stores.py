"""Push to registries on object stores, against real protocol peers on loopback: S3 (moto's
server, as MinIO would be reached through AWS_ENDPOINT_URL) and GCS (fake-gcs-server)."""

from __future__ import annotations

import pytest

from components.common import io as fio
from components.common import names
from components.common.tests.storage_peers import _gcs_emulator, _moto_endpoint, gs_root, s3_root  # noqa: F401
from components.push import registry
from components.push.tests.test_push import _push, artifacts  # noqa: F401 - fixture


@pytest.mark.parametrize("store", ["s3_root", "gs_root"])
def test_push_publishes_to_an_object_store_registry(artifacts, request, store):  # noqa: F811
    reg = fio.join(request.getfixturevalue(store), "registry")
    first = _push(artifacts(weights="w1"), reg)
    assert first.pushed and first.model_uri.startswith(reg)
    champion = registry.read_champion(reg, "m")
    assert champion.version == first.version
    assert fio.read_text(fio.join(champion.saved_model_uri, "saved_model.pb")) == "w1"
    lineage = fio.read_json(champion.lineage_uri)
    assert lineage["artifacts_sha256"]["saved_model"] == fio.sha256_tree(champion.saved_model_uri)
    assert fio.exists(fio.join(champion.uri, names.MODEL_CARD_JSON_FILE))

    second = _push(artifacts(weights="w2"), reg)
    assert second.pushed and second.previous_champion == first.version
    assert registry.read_champion(reg, "m").version == second.version
    assert registry.list_complete_versions(reg, "m") == sorted([first.version, second.version])
    # A version directory whose push did not finish (no marker) is not listed.
    fio.write_text_atomic(fio.join(registry.versions_root(reg, "m"), "v29990101T000000Z-x", "lineage.json"), "{}")
    assert registry.list_complete_versions(reg, "m") == sorted([first.version, second.version])
