"""Every kustomize overlay builds, and every object it yields passes its schema."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from components.common.images import SERVING_IMAGE, image
from tests.k8s_schemas import KSERVE_SCHEMAS, ROOT, validation_errors

OVERLAYS = ("dev", "gpu", "prod")


def build(overlay: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "manifests" / "overlays" / overlay)],
        capture_output=True, text=True, check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict]]:
    assert KSERVE_SCHEMAS.is_dir(), f"KServe CRD schemas expected at {KSERVE_SCHEMAS}"
    return {overlay: build(overlay) for overlay in OVERLAYS}


def _one(objects, kind):
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid(built, overlay):
    objects = built[overlay]
    assert {o["kind"] for o in objects} == {
        "Namespace", "ServiceAccount", "Role", "RoleBinding", "ServingRuntime", "InferenceService"
    }
    errors = [e for o in objects for e in validation_errors(o)]
    assert not errors, "\n".join(errors)


def test_validator_rejects_unknown_and_mistyped_fields(built):
    isvc = _one(built["prod"], "InferenceService")
    isvc["spec"]["predictor"]["canaryTrafficPercentage"] = 10
    assert any("canaryTrafficPercentage" in e for e in validation_errors(isvc))
    account = dict(next(o for o in built["dev"] if o["kind"] == "ServiceAccount"))
    account["automountServiceAccountToken"] = "no"
    assert validation_errors(account)


def test_serverless_mode_so_canary_traffic_is_honoured(built):
    for overlay in OVERLAYS:
        isvc = _one(built[overlay], "InferenceService")
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert _one(built["prod"], "InferenceService")["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_least_privilege_rbac(built):
    for overlay in OVERLAYS:
        role = _one(built[overlay], "Role")
        assert role["metadata"]["namespace"] == "ml-models"
        (rule,) = role["rules"]
        assert rule["resources"] == ["inferenceservices"] and rule["apiGroups"] == ["serving.kserve.io"]
        assert sorted(rule["verbs"]) == ["create", "get", "list", "patch", "watch"]


def test_storage_credentials_are_referenced_never_inline(built):
    for overlay in OVERLAYS:
        assert not [o for o in built[overlay] if o["kind"] == "Secret"]
        servers = [o for o in built[overlay] if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "model-server"]
        assert servers[0]["secrets"] == [{"name": "model-storage"}]
        isvc = _one(built[overlay], "InferenceService")
        assert isvc["spec"]["predictor"]["serviceAccountName"] == "model-server"


def test_images_pinned_to_package_version_and_non_root(built):
    expected = {"dev": SERVING_IMAGE, "prod": SERVING_IMAGE, "gpu": image("serving-gpu")}
    for overlay in OVERLAYS:
        (container,) = _one(built[overlay], "ServingRuntime")["spec"]["containers"]
        assert container["image"] == expected[overlay]
        assert container["securityContext"]["runAsNonRoot"] is True
        assert container["readinessProbe"] and container["livenessProbe"]
        assert container["resources"]["limits"]


def test_overlay_specifics(built):
    dev = _one(built["dev"], "InferenceService")["spec"]["predictor"]
    assert dev["minReplicas"] == dev["maxReplicas"] == 1
    gpu = _one(built["gpu"], "InferenceService")["spec"]["predictor"]
    assert gpu["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu" and gpu["nodeSelector"]
    prod = _one(built["prod"], "InferenceService")["spec"]["predictor"]
    assert (prod["minReplicas"], prod["maxReplicas"]) == (2, 10)
