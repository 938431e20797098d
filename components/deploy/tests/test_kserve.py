"""KServe target against an autospec'd CustomObjectsApi backed by a small stand-in for the API
server and KServe's Serverless controller (hand-built object shapes in shapes/, validated against the CRD schema), and the replay
observer against httpx.MockTransport. No cluster, no network, no sleeping."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from unittest import mock

import httpx
import pytest
import yaml
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from components.common import names
from components.common.errors import PipelineInputError
from components.deploy import analysis
from components.deploy import kserve as ks
from components.deploy.traffic import ReplayConfig
from components.deploy.rollout import (
    ABORTED, FIRST_DEPLOY, PROMOTED, ROLLED_BACK, SHADOW, SHADOW_PASSED, UNCHANGED, LiveState, ModelRef, RolloutPolicy,
    rollout,
)
from components.deploy.tests.fakes import ScriptedObserver
from tests.k8s_schemas import ROOT, validation_errors

SHAPES = Path(__file__).parent / "shapes"
REGISTRY = "gs://kfp-prod-registry/registry/model/versions"
V1 = ModelRef("model", "v20261120T093000Z-5d1e2f3a", f"{REGISTRY}/v20261120T093000Z-5d1e2f3a")
V2 = ModelRef("model", "v20261123T001142Z-c48fedb3", f"{REGISTRY}/v20261123T001142Z-c48fedb3")
ARGS = ("serving.kserve.io", "v1beta1", "ml-models", "inferenceservices")
WRITE = {"field_manager": "kfp-prod-components-deploy", "field_validation": "Strict"}
POLICY = RolloutPolicy(steps=(10, 50, 100), requests_per_step=400, min_requests=30)


def shape(name: str) -> dict:
    return json.loads((SHAPES / name).read_text())


class FakeKServe:
    """The API server (store, JSON merge-patch, generation) and KServe's Serverless controller:
    a new revision per pod-template change (annotations included, as KServe copies them onto the
    revision), canaryTrafficPercent split against the last rolled-out revision, rolled-out
    tracking when the newest revision reaches 100%. `lag` gets return the old status after a
    change; new revisions can be made never ready or failed."""

    def __init__(self, *objects: dict, lag: int = 0, new_revisions: str = "ready"):
        self.objects = {o["metadata"]["name"]: copy.deepcopy(o) for o in objects}
        self.revisions: dict[str, list[tuple[str, str, bool]]] = {}
        for name, obj in self.objects.items():
            status = ks._component_status(obj)
            created = status["latestCreatedRevision"]
            count = int(created.rsplit("-", 1)[1])
            self.revisions[name] = [(f"{name}-predictor-{i:05d}", "recorded", True) for i in range(1, count)]
            self.revisions[name].append((created, self._template(obj), True))
        self.lag, self.pending = lag, {}
        self.new_revisions = new_revisions
        self.stored: list[dict] = []
        """Every object as stored after a create or patch (for schema validation)."""
        self.api = mock.create_autospec(CustomObjectsApi, instance=True)
        self.api.get_namespaced_custom_object.side_effect = self.get
        self.api.create_namespaced_custom_object.side_effect = self.create
        self.api.patch_namespaced_custom_object.side_effect = self.patch

    @staticmethod
    def _template(obj: dict) -> str:
        predictor = {k: v for k, v in obj["spec"]["predictor"].items() if k != "canaryTrafficPercent"}
        return json.dumps([predictor, obj["metadata"].get("annotations", {})], sort_keys=True)

    def get(self, group, version, namespace, plural, name):
        assert (group, version, namespace, plural) == ARGS
        if name not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        if self.pending.get(name):
            self.pending[name] -= 1
        else:
            self._reconcile(name)
        return copy.deepcopy(self.objects[name])

    def create(self, group, version, namespace, plural, body, **kwargs):
        name = body["metadata"]["name"]
        if name in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[name] = copy.deepcopy(body) | {"status": {}}
        self.objects[name]["metadata"]["generation"] = 1
        self.revisions[name] = []
        return self._changed(name)

    def patch(self, group, version, namespace, plural, name, body, **kwargs):
        if name not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        before = self.objects[name]
        after = ks.merge_patch(before, body)
        if after["spec"] != before["spec"]:
            after["metadata"]["generation"] = before["metadata"].get("generation", 1) + 1
        self.objects[name] = after
        return self._changed(name)

    def _changed(self, name: str) -> dict:
        stored = copy.deepcopy(self.objects[name])
        self.stored.append(stored)
        self.pending[name] = self.lag
        return stored

    def _reconcile(self, name: str) -> None:
        obj = self.objects[name]
        revisions = self.revisions[name]
        template = self._template(obj)
        if not revisions or revisions[-1][1] != template:
            revisions.append((f"{name}-predictor-{len(revisions) + 1:05d}", template,
                              self.new_revisions == "ready"))
        created = revisions[-1][0]
        ready = [r[0] for r in revisions if r[2]]
        latest_ready = ready[-1] if ready else None
        status = obj.setdefault("status", {})
        component = status.setdefault("components", {}).setdefault("predictor", {})
        rolled = component.get("latestRolledoutRevision")
        percent = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if latest_ready is None:
            traffic = []
        elif percent is not None and rolled:
            traffic = [{"latestRevision": True, "percent": percent, "revisionName": latest_ready}]
            if percent < 100:
                traffic.append({"latestRevision": False, "percent": 100 - percent, "revisionName": rolled,
                                "tag": "prev"})
        else:
            traffic = [{"latestRevision": True, "percent": 100, "revisionName": latest_ready}]
        for target in traffic:
            if target["latestRevision"] and target["percent"] == 100 and rolled != latest_ready:
                if rolled:
                    component["previousRolledoutRevision"] = rolled
                component["latestRolledoutRevision"] = rolled = latest_ready
        component.update(latestCreatedRevision=created, traffic=traffic)
        if latest_ready:
            component["latestReadyRevision"] = latest_ready
        healthy = created == latest_ready
        failed = not healthy and self.new_revisions == "failed"
        configuration = {"type": "PredictorConfigurationReady", "status": "False" if failed else
                         "True" if healthy else "Unknown"}
        if failed:
            configuration.update(reason="RevisionFailed", message=f'Revision "{created}" failed with message: '
                                 "Container failed with: model_dir has no saved_model/ or model.onnx.")
        status["conditions"] = [configuration, {"type": "Ready", "status": "True" if healthy else
                                                "False" if failed else "Unknown"}]
        status["observedGeneration"] = obj["metadata"]["generation"]
        status.setdefault("deploymentMode", obj["metadata"].get("annotations", {}).get(ks.DEPLOYMENT_MODE))
        status["url"] = f"http://{name}.ml-models.example.com"
        status["address"] = {"url": f"http://{name}.ml-models.svc.cluster.local"}

    # -------------------------------------------------------------- what the tests look at

    def patches(self, name: str = "model") -> list[dict]:
        return [c.args[5] for c in self.api.patch_namespaced_custom_object.call_args_list if c.args[4] == name]

    def mutations(self) -> int:
        return self.api.create_namespaced_custom_object.call_count + self.api.patch_namespaced_custom_object.call_count

    def traffic(self, name: str = "model") -> dict[str, int]:
        return {t["revisionName"]: t["percent"] for t in ks._traffic(self.objects[name])}

    def invalid(self) -> list[str]:
        return [e for obj in self.stored for e in validation_errors(obj)]


class Clock:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_target(cluster: FakeKServe, clock: Clock | None = None, **config) -> ks.KServeTarget:
    clock = clock or Clock()
    return ks.KServeTarget(ks.KServeConfig(namespace="ml-models", name="model", **config), cluster.api,
                           clock=clock, sleep=clock.sleep)


def stable_cluster(**kwargs) -> FakeKServe:
    return FakeKServe(shape("kserve_isvc_stable.json"), **kwargs)


def canary_cluster(**kwargs) -> FakeKServe:
    return FakeKServe(shape("kserve_isvc_canary10.json"), **kwargs)


CANARY_10 = {
    "metadata": {"annotations": {
        ks.MODEL_VERSION: V2.version, ks.MODEL_URI: V2.uri,
        ks.STABLE_VERSION: V1.version, ks.STABLE_URI: V1.uri, ks.STABLE_STORAGE_URI: V1.uri,
    }},
    "spec": {"predictor": {"canaryTrafficPercent": 10, "model": {"storageUri": V2.uri}}},
}
STEP_50 = {"spec": {"predictor": {"canaryTrafficPercent": 50}}}
PROMOTE = {"spec": {"predictor": {"canaryTrafficPercent": None}}}
ROLLBACK = {
    "metadata": {"annotations": {ks.MODEL_VERSION: V1.version, ks.MODEL_URI: V1.uri}},
    "spec": {"predictor": {"canaryTrafficPercent": 0, "model": {"storageUri": V1.uri}}},
}


# ------------------------------------------------------------------------------ shapes


def test_hand_built_objects_are_valid_and_read_right():
    stable, canary = shape("kserve_isvc_stable.json"), shape("kserve_isvc_canary10.json")
    assert validation_errors(stable) == [] and validation_errors(canary) == []
    assert ks.live_state(stable, None, "model") == LiveState(stable=V1)
    assert ks.live_state(canary, None, "model") == LiveState(stable=V1, canary=V2, canary_percent=10)
    assert ks.stable_revision(canary) == "model-predictor-00001"
    broken = copy.deepcopy(canary)
    broken["status"]["components"]["predictor"]["traffic"][0]["percent"] = "10"
    assert validation_errors(broken), "the validator must see a mistyped status field"


def test_an_object_this_target_never_wrote_reads_as_unrecorded_stable():
    base = yaml.safe_load((ROOT / "manifests" / "base" / "inferenceservice.yaml").read_text())
    state = ks.live_state(base, None, "model")
    assert state == LiveState(stable=ModelRef("model", "unrecorded:pvc://model-registry/model/current",
                                              "pvc://model-registry/model/current"))


def test_merge_patch_follows_rfc_7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert ks.merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert ks.merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert ks.merge_patch({"a": "foo"}, {"a": None, "b": {"c": 1}}) == {"b": {"c": 1}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}, "the target is not modified"


# ------------------------------------------------------------------------------ operations


def test_first_deploy_creates_the_service_at_100_percent_like_manifests_base():
    cluster = FakeKServe()
    target = make_target(cluster)
    assert target.live() == LiveState()
    target.deploy(V1)
    expected = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "model", "namespace": "ml-models",
            "labels": {"app.kubernetes.io/part-of": "kfp-prod-components"},
            "annotations": {"serving.kserve.io/deploymentMode": "Serverless", ks.MODEL_NAME: "model",
                            ks.MODEL_VERSION: V1.version, ks.MODEL_URI: V1.uri},
        },
        "spec": {"predictor": {
            "serviceAccountName": "model-server", "minReplicas": 1, "maxReplicas": 3,
            "logger": {"mode": "all", "url": "http://log-sink.ml-models.svc.cluster.local",
                       "metadataHeaders": ["X-Synthetic-Traffic"]},
            "model": {"modelFormat": {"name": "tensorflow"}, "runtime": "kfp-prod-runtime", "storageUri": V1.uri,
                      "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                                    "limits": {"cpu": "2", "memory": "4Gi"}}},
        }},
    }
    cluster.api.create_namespaced_custom_object.assert_called_once_with(*ARGS, expected, **WRITE)
    cluster.api.patch_namespaced_custom_object.assert_not_called()
    assert validation_errors(expected) == [] and cluster.invalid() == []
    # Same service as manifests/base, but for the model it points at.
    base = yaml.safe_load((ROOT / "manifests" / "base" / "inferenceservice.yaml").read_text())
    base["spec"]["predictor"]["model"]["storageUri"] = V1.uri
    assert expected["spec"] == base["spec"]
    assert base["metadata"]["annotations"].items() <= expected["metadata"]["annotations"].items()
    assert target.live() == LiveState(stable=V1)
    assert cluster.traffic() == {"model-predictor-00001": 100}


def test_canary_10_patches_the_model_and_share_and_records_the_stable():
    cluster = stable_cluster()
    target = make_target(cluster)
    target.set_canary(V2, 10)
    assert cluster.patches() == [CANARY_10]
    assert cluster.invalid() == []
    assert target.live() == LiveState(stable=V1, canary=V2, canary_percent=10)
    assert cluster.traffic() == {"model-predictor-00002": 10, "model-predictor-00001": 90}


def test_step_50_patches_only_the_share():
    cluster = canary_cluster()
    target = make_target(cluster)
    target.set_canary(V2, 50)
    assert cluster.patches() == [STEP_50]
    assert cluster.invalid() == []
    assert target.live() == LiveState(stable=V1, canary=V2, canary_percent=50)
    assert cluster.traffic() == {"model-predictor-00002": 50, "model-predictor-00001": 50}


def test_promote_removes_the_field_and_starts_no_new_revision():
    cluster = canary_cluster()
    target = make_target(cluster)
    target.promote(V2)
    assert cluster.patches() == [PROMOTE]
    stored = cluster.stored[-1]
    assert "canaryTrafficPercent" not in stored["spec"]["predictor"] and cluster.invalid() == []
    assert target.live() == LiveState(stable=V2)
    component = ks._component_status(cluster.objects["model"])
    assert cluster.traffic() == {"model-predictor-00002": 100}
    assert component["latestCreatedRevision"] == "model-predictor-00002", "an annotation change would add one"
    assert (component["latestRolledoutRevision"], component["previousRolledoutRevision"]) == (
        "model-predictor-00002", "model-predictor-00001")


def test_rollback_pins_the_stable_revision_and_restores_the_stable_spec():
    cluster = canary_cluster()
    target = make_target(cluster)
    target.rollback()
    assert cluster.patches() == [ROLLBACK]
    assert cluster.invalid() == []
    assert target.live() == LiveState(stable=V1)
    # The stable's own revision keeps 100% at once; the spec's new (stable) revision gets none.
    assert cluster.traffic() == {"model-predictor-00003": 0, "model-predictor-00001": 100}
    assert cluster.objects["model"]["spec"]["predictor"]["model"]["storageUri"] == V1.uri


def test_a_canary_after_a_rollback_splits_against_the_stable_revision():
    cluster = canary_cluster()
    target = make_target(cluster)
    target.rollback()
    target.set_canary(V2, 10)
    assert cluster.patches()[-1] == {
        "metadata": {"annotations": {ks.MODEL_VERSION: V2.version, ks.MODEL_URI: V2.uri}},
        "spec": {"predictor": {"canaryTrafficPercent": 10, "model": {"storageUri": V2.uri}}},
    }
    assert cluster.traffic() == {"model-predictor-00004": 10, "model-predictor-00001": 90}
    assert target.live() == LiveState(stable=V1, canary=V2, canary_percent=10)


@pytest.mark.parametrize(("start", "operation"), [
    ("stable", lambda t: t.deploy(V1)),
    ("stable", lambda t: t.rollback()),
    ("stable", lambda t: t.promote(V1)),
    ("canary", lambda t: t.set_canary(V2, 10)),
    ("canary", lambda t: t.stop_shadow()),
], ids=["deploy", "rollback", "promote", "set_canary", "stop_shadow"])
def test_rerunning_an_operation_that_is_already_done_changes_nothing(start, operation):
    cluster = stable_cluster() if start == "stable" else canary_cluster()
    target = make_target(cluster)
    before = target.live()
    operation(target)
    assert cluster.mutations() == 0
    assert target.live() == before


def test_operations_are_idempotent_after_they_ran():
    cluster = stable_cluster()
    target = make_target(cluster)
    for _ in range(2):
        target.set_canary(V2, 10)
    for _ in range(2):
        target.promote(V2)
    for _ in range(2):
        target.rollback()  # nothing to roll back after a promote
    assert cluster.patches() == [CANARY_10, PROMOTE]
    assert target.live() == LiveState(stable=V2)


@pytest.mark.parametrize("mode", ["RawDeployment", "Standard", None])
def test_a_canary_outside_serverless_mode_is_refused_before_any_change(mode):
    obj = shape("kserve_isvc_stable.json")
    if mode is None:  # neither asked nor reported: cannot tell
        del obj["metadata"]["annotations"][ks.DEPLOYMENT_MODE]
        del obj["status"]["deploymentMode"]
    else:
        obj["metadata"]["annotations"][ks.DEPLOYMENT_MODE] = mode
        obj["status"]["deploymentMode"] = mode
    cluster = FakeKServe(obj)
    target = make_target(cluster)
    with pytest.raises(ks.KServeError, match="honours canaryTrafficPercent only in Serverless"):
        target.set_canary(V2, 10)
    assert cluster.mutations() == 0
    # Through the loop: an aborted rollout (a canary that never started), still no change.
    result = rollout(target, V2, POLICY, ScriptedObserver(), analysis.analyse, lambda line: None)
    assert result.outcome == ABORTED and "deployment mode" in result.reason
    assert cluster.mutations() == 0 and target.live() == LiveState(stable=V1)


def test_a_local_registry_path_is_refused_before_any_call_and_can_be_mapped():
    cluster = FakeKServe()
    target = make_target(cluster)
    local = ModelRef("model", V1.version, f"/mnt/registry/model/versions/{V1.version}")
    with pytest.raises(PipelineInputError, match="local path an InferenceService cannot read"):
        target.deploy(local)
    assert cluster.api.method_calls == []
    mapped = ks.KServeTarget(target.config, cluster.api, clock=target.clock, sleep=target.sleep,
                             storage_uri_for=ks.prefix_storage("/mnt/registry", "pvc://model-registry"))
    mapped.deploy(local)
    body = cluster.api.create_namespaced_custom_object.call_args.args[4]
    assert body["spec"]["predictor"]["model"]["storageUri"] == f"pvc://model-registry/model/versions/{V1.version}"
    assert mapped.live() == LiveState(stable=local)


def test_waits_until_the_status_shows_the_split_polling_without_real_sleep():
    cluster, clock = stable_cluster(lag=2), Clock()
    target = make_target(cluster, clock, poll_interval_s=5.0)
    target.set_canary(V2, 10)
    assert clock.sleeps == [5.0, 5.0]
    assert cluster.traffic() == {"model-predictor-00002": 10, "model-predictor-00001": 90}


def test_a_revision_that_never_gets_ready_times_out_with_the_reason():
    cluster, clock = stable_cluster(new_revisions="pending"), Clock()
    target = make_target(cluster, clock, ready_timeout_s=60.0, poll_interval_s=5.0)
    with pytest.raises(ks.KServeError) as error:
        target.set_canary(V2, 10)
    message = str(error.value)
    assert "not there after 60 s" in message and "model-predictor-00002 is not ready" in message
    assert "traffic: model-predictor-00001 (latest): 10%, model-predictor-00001: 90%" in message
    assert sum(clock.sleeps) == 60.0


def test_a_failed_revision_fails_at_once_and_the_loop_aborts():
    cluster, clock = stable_cluster(new_revisions="failed"), Clock()
    target = make_target(cluster, clock)
    with pytest.raises(ks.KServeError, match="PredictorConfigurationReady is False \\(RevisionFailed"):
        target.set_canary(V2, 10)
    assert clock.sleeps == []
    result = rollout(target, V2, POLICY, ScriptedObserver(), analysis.analyse, lambda line: None)
    assert result.outcome == ABORTED and "RevisionFailed" in result.reason
    assert target.live() == LiveState(stable=V1)
    assert cluster.traffic()["model-predictor-00001"] == 100


# ------------------------------------------------------------------------------ the rollout loop


def test_rollout_promotes_through_every_step():
    cluster = stable_cluster()
    target = make_target(cluster)
    observer = ScriptedObserver()
    result = rollout(target, V2, POLICY, observer, analysis.analyse, lambda line: None)
    assert result.outcome == PROMOTED and observer.asked == [10, 50]
    assert cluster.patches() == [CANARY_10, STEP_50, PROMOTE]
    assert cluster.invalid() == []
    assert target.live() == LiveState(stable=V2)
    assert cluster.traffic() == {"model-predictor-00002": 100}
    again = rollout(target, V2, POLICY, observer, analysis.analyse, lambda line: None)
    assert again.outcome == UNCHANGED and len(cluster.patches()) == 3


def test_rollout_rolls_back_on_a_breach():
    cluster = stable_cluster()
    target = make_target(cluster)
    result = rollout(target, V2, POLICY, ScriptedObserver({50: {"canary_errors": 20}}), analysis.analyse,
                     lambda line: None)
    assert result.outcome == ROLLED_BACK and result.reason.startswith("at 50%")
    assert cluster.patches() == [CANARY_10, STEP_50, ROLLBACK]
    assert cluster.invalid() == []
    assert target.live() == LiveState(stable=V1)
    assert cluster.traffic() == {"model-predictor-00003": 0, "model-predictor-00001": 100}


def test_rollout_first_deploy_and_shadow():
    cluster = FakeKServe()
    target = make_target(cluster)
    assert rollout(target, V1, POLICY, ScriptedObserver(), analysis.analyse, lambda l: None).outcome == FIRST_DEPLOY
    shadow_policy = dataclasses.replace(POLICY, mode=SHADOW)
    result = rollout(target, V2, shadow_policy, ScriptedObserver(), analysis.analyse, lambda line: None)
    assert result.outcome == SHADOW_PASSED
    assert cluster.patches("model") == [], "the served service is never touched in shadow mode"
    created = cluster.api.create_namespaced_custom_object.call_args.args[4]
    assert created["metadata"]["name"] == "model-shadow" and created["metadata"]["annotations"][ks.ROLE] == "shadow"
    assert created["spec"]["predictor"]["model"]["storageUri"] == V2.uri
    assert cluster.patches("model-shadow") == [
        {"metadata": {"annotations": {ks.SHADOW_ACTIVE: "false"}}, "spec": {"predictor": {"minReplicas": 0}}}]
    assert cluster.invalid() == []
    assert target.live() == LiveState(stable=V1)
    # The next shadow run reuses the scaled-down service.
    target.start_shadow(V2)
    assert cluster.patches("model-shadow")[-1] == {"metadata": {"annotations": {ks.SHADOW_ACTIVE: "true"}},
                                                   "spec": {"predictor": {"minReplicas": 1}}}
    assert target.live() == LiveState(stable=V1, shadow=V2)


# ------------------------------------------------------------------------------ observer

ROWS = [{"lvrat": 0.8, "chist": 5}, {"lvrat": 0.6, "chist": 1}, {"lvrat": 0.95, "chist": 2}]


class Serving:
    """The services behind the mock transport: routes request i to the canary when i % 100 < percent
    (percent read from the fake cluster, as Knative would), answers with that version."""

    def __init__(self, cluster: FakeKServe, broken: set[str] = frozenset(), every_nth_fails: int = 0,
                 stray_every: int = 0):
        self.cluster, self.broken = cluster, broken
        self.every_nth_fails, self.stray_every = every_nth_fails, stray_every
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        n = len(self.seen)
        name = request.url.path.split("/")[3].split(":")[0]
        state = ks.live_state(self.cluster.objects.get(name), None, "model")
        model = state.stable
        if state.canary is not None and n % 100 < state.canary_percent:
            model = state.canary
        if self.every_nth_fails and n % self.every_nth_fails == 0:
            return httpx.Response(503, text="upstream connect error")
        if model.version in self.broken:
            return httpx.Response(500, json={"error": "model crashed"})
        version = "v-stray" if self.stray_every and n % self.stray_every == 0 else model.version
        rows = json.loads(request.content)["instances"]
        return httpx.Response(200, json={"predictions": [0.25] * len(rows), "model_name": name,
                                         "model_version": version})


def observer_for(target, serving, requests=100, **config) -> ks.KServeReplayObserver:
    return ks.KServeReplayObserver(target, V2, ROWS, ReplayConfig(rows_per_request=2, concurrency=1, **config),
                                   requests, transport=httpx.MockTransport(serving), progress=lambda line: None)


def test_observer_attributes_by_model_version_and_counts_the_unattributable_against_the_canary():
    cluster = canary_cluster()
    target = make_target(cluster)
    serving = Serving(cluster, every_nth_fails=25, stray_every=40)
    stable, canary = observer_for(target, serving, requests=100)(10)
    assert len(serving.seen) == 100
    assert {str(r.url) for r in serving.seen} == {"http://model.ml-models.svc.cluster.local/v1/models/model:predict"}
    assert (stable.version, canary.version) == (V1.version, V2.version)
    # Requests 1..9 and 100 (n % 100 < 10) went to the canary; 25, 50, 75, 100 failed; 40 and 80 named
    # another version: 6 failures/strays land on the canary as errors, on top of its 9 answers.
    assert (canary.requests, canary.errors) == (15, 6)
    assert (stable.requests, stable.errors) == (85, 0)
    assert len(stable.predictions) == 85 * 2 and len(canary.predictions) == 9 * 2
    assert len(stable.latencies_ms) == 85 and all(ms >= 0 for ms in stable.latencies_ms)
    assert all(r.headers["x-request-id"] for r in serving.seen)
    assert len({r.headers["x-request-id"] for r in serving.seen}) == 100
    # replayed eval rows are marked, so the model server logs them as synthetic (not users' traffic)
    assert all(r.headers.get(names.SYNTHETIC_TRAFFIC_HEADER) == "replay" for r in serving.seen)


def test_observer_keeps_the_labels_of_each_answered_batch():
    cluster = canary_cluster()
    target = make_target(cluster)
    serving = Serving(cluster, every_nth_fails=25)
    labels = [i % 2 for i in range(len(ROWS))]
    tagged = [{**row, "_label": label} for row, label in zip(ROWS, labels)]
    observer = ks.KServeReplayObserver(target, V2, tagged, ReplayConfig(rows_per_request=2, concurrency=1), 100,
                                       transport=httpx.MockTransport(serving), progress=lambda line: None,
                                       labels=labels)
    stable, canary = observer(10)
    sent = {r.headers["x-request-id"]: [row["_label"] for row in json.loads(r.content)["instances"]]
            for r in serving.seen}
    assert len(stable.labels) == len(stable.predictions) == 2 * (stable.requests - stable.errors)
    assert len(canary.labels) == len(canary.predictions) == 2 * (canary.requests - canary.errors)
    assert sorted(stable.labels + canary.labels) == sorted(
        label for n, (rid, batch) in enumerate(sent.items(), 1) if n % 25 for label in batch)


def test_observer_mirrors_each_batch_to_the_shadow_service():
    cluster = stable_cluster()
    target = make_target(cluster)
    target.start_shadow(V2)
    serving = Serving(cluster, broken={V2.version})
    stable, shadow = observer_for(target, serving, requests=40)(0)
    paths = [r.url.path for r in serving.seen]
    assert paths.count("/v1/models/model:predict") == 40 and paths.count("/v1/models/model-shadow:predict") == 40
    bodies = [json.loads(r.content) for r in serving.seen]
    assert bodies[0::2] == bodies[1::2], "the shadow gets the very same rows"
    assert (stable.requests, stable.errors) == (40, 0)
    assert (shadow.version, shadow.requests, shadow.errors) == (V2.version, 40, 40)


def test_observer_goes_through_an_ingress_with_the_service_host():
    cluster = stable_cluster()
    target = make_target(cluster, ingress_url="http://10.0.0.7:80")
    serving = Serving(cluster)
    stable, _ = observer_for(target, serving, requests=5)(10)
    assert {(r.url.host, r.headers["host"]) for r in serving.seen} == {("10.0.0.7", "model.ml-models.example.com")}
    assert stable.requests == 5


def test_observer_counts_timeouts_as_canary_errors():
    cluster = canary_cluster()
    target = make_target(cluster)

    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    observer = ks.KServeReplayObserver(target, V2, ROWS, ReplayConfig(concurrency=2), 10,
                                       transport=httpx.MockTransport(handler), progress=lambda line: None)
    stable, canary = observer(10)
    assert (stable.requests, canary.requests, canary.errors) == (0, 10, 10)


@pytest.mark.parametrize(("broken", "outcome"), [(set(), PROMOTED), ({V2.version}, ROLLED_BACK)])
def test_rollout_with_the_replay_observer_end_to_end(broken, outcome):
    cluster = stable_cluster()
    target = make_target(cluster)
    observer = observer_for(target, Serving(cluster, broken=broken), requests=200)
    policy = RolloutPolicy(steps=(10, 50, 100), requests_per_step=200, min_requests=10)
    result = rollout(target, V2, policy, observer, analysis.analyse, lambda line: None)
    assert result.outcome == outcome
    assert target.live() == LiveState(stable=V2 if outcome == PROMOTED else V1)
    if outcome == ROLLED_BACK:
        assert result.reason.startswith("at 10%") and "error rate 100.00%" in result.reason


# ------------------------------------------------------------------------------ wiring


def test_built_from_the_deploy_config(tmp_path):
    from components.deploy import deploy

    config = deploy.DeployConfig(target="kserve", registry_uri="gs://r", kserve_namespace="ml-models",
                                 kserve_url="http://10.0.0.7", data=str(ROOT / "tests/fixtures/hmda_sample.csv"),
                                 requests_per_step=50)
    with mock.patch("kubernetes.config.load_incluster_config", autospec=True) as incluster, \
            mock.patch("kubernetes.client.CustomObjectsApi", autospec=True) as api_class:
        target = deploy.build_target(config)
    incluster.assert_called_once_with()
    assert isinstance(target, ks.KServeTarget) and target.api is api_class.return_value
    assert (target.config.namespace, target.config.name, target.config.ingress_url) == (
        "ml-models", "model", "http://10.0.0.7")
    version_dir = tmp_path / V2.version
    version_dir.mkdir()
    (version_dir / "model_info.json").write_text(json.dumps({"raw_feature_types": {"lvrat": "float", "chist": "int"}}))
    observer = deploy.build_observer(config, target, ModelRef("model", V2.version, str(version_dir)),
                                     lambda: V1.version, lambda line: None)
    assert isinstance(observer, ks.KServeReplayObserver) and observer.requests_per_step == 50
    assert set(observer.replay.rows[0]) == {"lvrat", "chist"} and len(observer.replay.rows) == 800


def test_revision_of_names_the_knative_revision_serving_each_version():
    """What Prometheus' revision_name label holds for each version (queue-proxy's metrics): with
    --prometheus-url the served figures are read per revision, not per model version."""
    cluster = stable_cluster()
    target = make_target(cluster)
    stable_revision_name = ks.stable_revision(cluster.get(ks.GROUP, ks.API_VERSION_NAME, "ml-models", ks.PLURAL, "model"))
    assert target.revision_of(V1.version) == stable_revision_name
    target.set_canary(V2, 10)
    traffic = cluster.traffic()
    canary_revision = next(r for r, p in traffic.items() if p == 10)
    assert target.revision_of(V2.version) == canary_revision != target.revision_of(V1.version)
    assert target.revision_of(V1.version) == next(r for r, p in traffic.items() if p == 90)
    assert target.revision_of("v-never-deployed") == ""
