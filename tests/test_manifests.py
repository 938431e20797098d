"""Every kustomize overlay builds, and every object it yields passes its schema."""

from __future__ import annotations

import copy
import os
import re
import subprocess

import pytest
import yaml

from components.common.images import SERVING_IMAGE, image
from components.deploy.kserve import KServeConfig
from tests.k8s_schemas import KSERVE_SCHEMAS, ROOT, validation_errors

OVERLAYS = ("dev", "gpu", "prod")


def build(overlay: str) -> list[dict]:
    return build_dir(ROOT / "manifests" / "overlays" / overlay)


def build_dir(path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict]]:
    assert KSERVE_SCHEMAS.is_dir(), f"KServe CRD schemas expected at {KSERVE_SCHEMAS}"
    return {overlay: build(overlay) for overlay in OVERLAYS}


def _one(objects, kind):
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


RESTRICTED_CONTAINER_CONTEXT = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid(built, overlay):
    objects = built[overlay]
    assert {o["kind"] for o in objects} == {
        "Namespace", "ServiceAccount", "Role", "RoleBinding", "ServingRuntime", "InferenceService",
        "ClusterStorageContainer", "ConfigMap", "Deployment", "Service",
    }
    errors = [e for o in objects for e in validation_errors(o)]
    assert not errors, "\n".join(errors)


def test_validator_rejects_unknown_and_mistyped_fields(built):
    isvc = copy.deepcopy(_one(built["prod"], "InferenceService"))  # copies: `built` is shared
    isvc["spec"]["predictor"]["canaryTrafficPercentage"] = 10
    assert any("canaryTrafficPercentage" in e for e in validation_errors(isvc))
    account = dict(next(o for o in built["dev"] if o["kind"] == "ServiceAccount"))
    account["automountServiceAccountToken"] = "no"
    assert validation_errors(account)
    # The ClusterStorageContainer is checked against its own CRD, not passed for want of one.
    storage = copy.deepcopy(_one(built["prod"], "ClusterStorageContainer"))
    storage["spec"]["container"]["securityContext"]["runAsNonroot"] = True
    assert any("runAsNonroot" in e for e in validation_errors(storage))


def test_serverless_mode_and_no_fixed_canary(built):
    # The deploy step sets and removes canaryTrafficPercent; a fixed one would make every apply a canary.
    for overlay in OVERLAYS:
        isvc = _one(built[overlay], "InferenceService")
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
        assert "canaryTrafficPercent" not in isvc["spec"]["predictor"], overlay


def test_deployer_uses_only_get_create_patch():
    # The Role's verbs are these calls: a new API call in the deployer must come with a Role change.
    source = (ROOT / "components" / "deploy" / "kserve.py").read_text()
    calls = re.findall(r"self\.api\.(\w+?)_(?:namespaced|cluster)_custom_object", source)
    assert set(calls) == {"get", "create", "patch"}


def test_least_privilege_rbac(built):
    for overlay in OVERLAYS:
        role = _one(built[overlay], "Role")
        assert role["metadata"]["namespace"] == "ml-models"
        isvc = _one(built[overlay], "InferenceService")
        config = KServeConfig(namespace=isvc["metadata"]["namespace"], name=isvc["metadata"]["name"])
        group = {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"]}
        assert role["rules"] == [
            {**group, "verbs": ["create"]},  # Kubernetes cannot limit create by name
            {**group, "resourceNames": [config.name, config.shadow_name], "verbs": ["get", "patch"]},
        ]
        assert (config.name, config.shadow_name) == ("model", "model-shadow")


def test_rolebinding_subject_is_kfp_pipeline_runner(built):
    for overlay in OVERLAYS:
        binding = _one(built[overlay], "RoleBinding")
        assert binding["metadata"]["namespace"] == "ml-models"
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": "inferenceservice-deployer"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}]
        # No unused account of that name in the serving namespace (KFP never runs as it).
        assert [o["metadata"]["name"] for o in built[overlay] if o["kind"] == "ServiceAccount"] == ["log-sink", "model-server"]


def test_multi_user_component_binds_profile_default_editor(tmp_path):
    manifests = os.path.relpath(ROOT / "manifests", tmp_path)  # kustomize refuses absolute paths
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{manifests}/overlays/prod]\ncomponents: [{manifests}/components/kfp-multi-user]\n")
    objects = build_dir(tmp_path)
    assert _one(objects, "RoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "name": "default-editor", "namespace": "kubeflow-user-example-com"}]
    assert not [e for o in objects for e in validation_errors(o)]


def test_storage_initializer_is_restricted_compliant(built):
    for overlay in OVERLAYS:
        namespace = _one(built[overlay], "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        storage = _one(built[overlay], "ClusterStorageContainer")
        assert "namespace" not in storage["metadata"], "cluster-scoped: base's namespace must not reach it"
        spec = storage["spec"]
        assert spec["workloadType"] == "initContainer"
        assert spec["supportedUriFormats"] == [{"prefix": "gs://"}, {"prefix": "s3://"}]
        container = spec["container"]
        assert container["name"] == "storage-initializer"  # the name KServe merges it into
        assert "image" not in container  # KServe's configured storage-initializer image stays
        context = container["securityContext"]
        assert {k: context.get(k) for k in RESTRICTED_CONTAINER_CONTEXT} == RESTRICTED_CONTAINER_CONTEXT, overlay
        assert context["runAsUser"] != 0


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


def test_served_traffic_goes_to_the_log_sink(built):
    """KServe's payload logger posts to the sink's Service, with the synthetic-traffic header (in
    Go's canonical form, as KServe's agent matches it) carried as metadata."""
    for overlay in OVERLAYS:
        objects = built[overlay]
        logger = _one(objects, "InferenceService")["spec"]["predictor"]["logger"]
        assert logger["mode"] == "all"
        assert "X-Synthetic-Traffic" in logger["metadataHeaders"]
        service = _one(objects, "Service")
        assert logger["url"] == f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
        sink = _one(objects, "Deployment")
        (container,) = sink["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", "serving.log_sink"]
        assert service["spec"]["selector"] == sink["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["containerPort"]
        context = container["securityContext"]
        assert {k: context.get(k) for k in RESTRICTED_CONTAINER_CONTEXT} == RESTRICTED_CONTAINER_CONTEXT
        config = _one(objects, "ConfigMap")
        assert container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == config["metadata"]["name"]
        assert config["data"]["output"].startswith(("s3://", "gs://"))
        assert container["envFrom"] == [{"secretRef": {"name": "log-sink-storage", "optional": True}}]
