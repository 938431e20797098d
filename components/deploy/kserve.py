"""The `kserve` target: one KServe InferenceService in Serverless (Knative) mode, canary steps by
`spec.predictor.canaryTrafficPercent`.

    api = kubernetes.client.CustomObjectsApi()          # after kubernetes.config.load_*_config()
    target = KServeTarget(KServeConfig(namespace="ml-models", name="model"), api)
    rollout(target, candidate, policy, KServeReplayObserver(target, candidate, rows, ReplayConfig(), 400), ...)

How KServe rolls out (Serverless mode; v1beta1): every change of the predictor's pod template makes
a new Knative revision. KServe remembers the last revision that had 100% of traffic
(`status.components.predictor.latestRolledoutRevision`). With `canaryTrafficPercent: p` the newest
ready revision gets p% and that rolled-out revision the rest (the Knative traffic target tagged
"prev"); without the field the newest ready revision gets 100%. Knative moves traffic to a new
revision only once it is ready, so a revision that never starts never gets traffic.

What each operation writes (one JSON merge-patch, only the fields that differ from the live object,
none when nothing differs; then it polls until `status` shows the result):

    deploy     create the InferenceService (no canaryTrafficPercent): the version serves 100%
    set_canary storageUri = candidate, canaryTrafficPercent = p; stable-* annotations name the
               version the "prev" revision serves. Later steps patch canaryTrafficPercent only.
    promote    remove canaryTrafficPercent (merge-patch null): the latest revision, which is the
               candidate, takes 100% and becomes the rolled-out revision. Removing the field rather
               than writing 100 leaves the spec exactly as after a first deploy, so the field's
               presence always means a canary (or a pinned, rolled-back one). Annotations are not
               touched: KServe copies InferenceService annotations onto the revision template, so
               changing one would start yet another revision of the same model.
    rollback   canaryTrafficPercent = 0 and storageUri/model annotations back to the stable
               version: the "prev" revision (stable) keeps 100% at once, and the spec describes the
               stable model again (its new revision gets 0%). Setting 0 WITHOUT changing the spec
               after a promote would make KServe route to the revision rolled out before that one
               (its rollback-after-promote rule), so this target never does that.

The versions live in annotations (`kfp-prod-components/model-version`, `.../stable-version`,
`.../stable-storage-uri`, ...) so `live()` reads stable/canary/percent from the live object
alone: a canary exists while canaryTrafficPercent < 100 is set AND the stable annotations name
another version. The stable-* annotations are stale (and ignored) once the field is removed.

canaryTrafficPercent is silently ignored outside Serverless mode (RawDeployment / Standard:
kserve/kserve#5335, #4074): set_canary refuses, before any change, an InferenceService whose
deploymentMode (status or annotation) is not Serverless. (KServe >= 0.20 adds `spec.canary` for
Standard mode; this target does not use it.)

Shadow: KServe cannot mirror traffic (kserve/kserve#2978 is open; the InferenceGraph mirroring
node of #2240/#2670 was never merged, and KServe overwrites hand edits of the Istio VirtualService
it owns). The shadow is a second InferenceService `<name>-shadow` serving the candidate, and the
"mirror" is the client: KServeReplayObserver sends every replayed request to both services and
keeps the shadow's answers to itself. Real user traffic is NOT mirrored; the shadow verdict is
about replayed held-out rows only. stop_shadow scales the shadow service to zero (minReplicas 0)
instead of deleting it, because the pipeline's Role (manifests/base/rbac.yaml) grants no delete;
the idle object is reused by the next shadow run.

Readiness: after a change, `status` is polled (interval and clock injectable) until the
observedGeneration caught up, Ready=True, the newest revision is ready and the traffic split in
`status.components.predictor.traffic` is the one asked for; a failed revision
(PredictorConfigurationReady / LatestDeploymentReady False) fails at once, anything else after
`ready_timeout_s`, with the last conditions and traffic in the error.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from components.common.errors import PipelineInputError
from components.deploy import payload_logger
from components.deploy.rollout import LiveState, ModelRef, VersionStats
from components.deploy.traffic import ReplayConfig, ReplayRows, V1Client, replay_window

log = logging.getLogger(__name__)

GROUP, API_VERSION_NAME, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
API_VERSION = f"{GROUP}/{API_VERSION_NAME}"
KIND = "InferenceService"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
SERVERLESS = "Serverless"
FIELD_MANAGER = "kfp-prod-components-deploy"

_PREFIX = "kfp-prod-components/"
MODEL_NAME = _PREFIX + "model-name"
MODEL_VERSION = _PREFIX + "model-version"
MODEL_URI = _PREFIX + "model-uri"
"""The registry version directory of the model in the spec (storageUri is where the cluster reads it)."""
STABLE_VERSION = _PREFIX + "stable-version"
STABLE_URI = _PREFIX + "stable-uri"
STABLE_STORAGE_URI = _PREFIX + "stable-storage-uri"
ROLE = _PREFIX + "role"
SHADOW_OF = _PREFIX + "shadow-of"
SHADOW_ACTIVE = _PREFIX + "shadow-active"
UNRECORDED = "unrecorded"
"""Version of a model this target did not deploy (no annotation): `unrecorded:<storageUri>`."""

# Conditions whose False means the newest revision failed (Knative ConfigurationsReady), not "still starting".
FAILED_REVISION_CONDITIONS = ("PredictorConfigurationReady", "LatestDeploymentReady")
_KEEP = object()
_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


class KServeError(RuntimeError):
    """The cluster refused a change, or the InferenceService did not get where it was asked to."""


def _default_resources() -> dict:
    # The same sizes as manifests/base/inferenceservice.yaml.
    return {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


@dataclasses.dataclass(frozen=True)
class KServeConfig:
    namespace: str
    name: str
    """InferenceService name (also the model name in its URLs: the runtime passes --model_name={{.Name}})."""
    runtime: str = "kfp-prod-runtime"
    model_format: str = "tensorflow"
    service_account: str = "model-server"
    min_replicas: int = 1
    max_replicas: int = 3
    resources: dict = dataclasses.field(default_factory=_default_resources)
    labels: dict = dataclasses.field(default_factory=lambda: {"app.kubernetes.io/part-of": "kfp-prod-components"})
    shadow_suffix: str = "-shadow"
    ready_timeout_s: float = 600.0
    poll_interval_s: float = 5.0
    ingress_url: str = ""
    """Where the observer sends requests (e.g. the Istio ingress gateway) with a Host header taken
    from status.url; empty = status.address.url (cluster-local, for a pipeline running in-cluster)."""
    log_sink_service: str = "log-sink"
    """The log sink's Service in `namespace` (manifests/base/log-sink.yaml): KServe's payload logger
    sends it every request and answer; "" = no logger."""

    def __post_init__(self) -> None:
        problems = []
        if not self.namespace:
            problems.append("namespace is required")
        for name in (self.name, self.name + self.shadow_suffix):
            if not _NAME.fullmatch(name or "") or len(name) > 63:
                problems.append(f"{name!r} is not a valid InferenceService name (lowercase letters, digits "
                                "and '-', starting with a letter, at most 63 characters)")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            problems.append(f"need 0 <= min_replicas <= max_replicas, max_replicas >= 1; got "
                            f"{self.min_replicas}, {self.max_replicas}")
        if self.ready_timeout_s <= 0 or self.poll_interval_s < 0:
            problems.append("ready_timeout_s must be > 0 and poll_interval_s >= 0")
        if problems:
            raise PipelineInputError("invalid kserve config: " + "; ".join(problems))

    @property
    def shadow_name(self) -> str:
        return self.name + self.shadow_suffix


def default_storage_uri(model: ModelRef) -> str:
    """The registry version directory itself, when the cluster can read it (gs://, s3://, pvc://, ...)."""
    scheme = urllib.parse.urlparse(model.uri).scheme
    if not scheme or scheme == "file" or len(scheme) == 1:  # a path (or a Windows drive letter)
        raise PipelineInputError(
            f"{model.version} is at {model.uri}, a local path an InferenceService cannot read: push to a "
            "registry on gs://, s3:// or a PVC, or give KServeTarget a storage_uri_for mapping")
    return model.uri


def prefix_storage(local_prefix: str, storage_prefix: str) -> Callable[[ModelRef], str]:
    """storage_uri_for that maps a registry mounted here to the cluster's view of it, e.g.
    ("/mnt/registry", "pvc://model-registry"):
    /mnt/registry/model/versions/v1 → pvc://model-registry/model/versions/v1."""
    local = local_prefix.rstrip("/")

    def storage_uri_for(model: ModelRef) -> str:
        if model.uri != local and not model.uri.startswith(local + "/"):
            raise PipelineInputError(f"{model.uri} is not under {local_prefix}, the registry the cluster mounts")
        return storage_prefix.rstrip("/") + model.uri[len(local):]

    return storage_uri_for


# ------------------------------------------------------------------------------ reading the object


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _predictor(obj: dict) -> dict:
    return (obj.get("spec") or {}).get("predictor") or {}


def _storage_uri(obj: dict) -> str:
    return (_predictor(obj).get("model") or {}).get("storageUri", "")


def _component_status(obj: dict) -> dict:
    return ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}


def _traffic(obj: dict) -> list[dict]:
    return list(_component_status(obj).get("traffic") or [])


def _percent_on(traffic: list[dict], revision: str | None) -> int:
    return sum(int(t.get("percent") or 0) for t in traffic if revision and t.get("revisionName") == revision)


def _condition(obj: dict, kind: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def spec_model(obj: dict, default_model_name: str) -> ModelRef:
    """The model the spec describes (the newest revision's)."""
    notes, storage = _annotations(obj), _storage_uri(obj)
    return ModelRef(model_name=notes.get(MODEL_NAME) or default_model_name,
                    version=notes.get(MODEL_VERSION) or f"{UNRECORDED}:{storage}",
                    uri=notes.get(MODEL_URI) or storage)


def live_state(obj: dict | None, shadow: dict | None, default_model_name: str) -> LiveState:
    """What an InferenceService (and its shadow) serve, from their annotations and spec."""
    shadow_model = None
    if shadow is not None and _annotations(shadow).get(SHADOW_ACTIVE) == "true":
        shadow_model = spec_model(shadow, default_model_name)
    if obj is None:
        return LiveState(shadow=shadow_model)
    current = spec_model(obj, default_model_name)
    notes = _annotations(obj)
    percent = _predictor(obj).get("canaryTrafficPercent")
    stable_version = notes.get(STABLE_VERSION)
    if percent is None or percent >= 100 or not stable_version or not notes.get(STABLE_STORAGE_URI) \
            or stable_version == current.version:
        return LiveState(stable=current, shadow=shadow_model)
    stable = ModelRef(model_name=current.model_name, version=stable_version,
                      uri=notes.get(STABLE_URI) or notes[STABLE_STORAGE_URI])
    return LiveState(stable=stable, canary=current, canary_percent=int(percent), shadow=shadow_model)


def stable_revision(obj: dict) -> str | None:
    """The revision serving the stable version: the pinned ("prev") traffic target while a canary
    is set, else the rolled-out one."""
    traffic = _traffic(obj)
    pinned = [t for t in traffic if not t.get("latestRevision")]
    if pinned:
        return max(pinned, key=lambda t: int(t.get("percent") or 0)).get("revisionName")
    status = _component_status(obj)
    if status.get("latestRolledoutRevision"):
        return status["latestRolledoutRevision"]
    return traffic[0].get("revisionName") if traffic else None


def deployment_modes(obj: dict) -> set[str]:
    """The deployment mode as the controller reports it (status) and as asked (annotation)."""
    return {m for m in ((obj.get("status") or {}).get("deploymentMode"), _annotations(obj).get(DEPLOYMENT_MODE)) if m}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what the API server does with our patches): a copy of `target`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _describe(obj: dict) -> str:
    def condition(c: dict) -> str:
        why = f" ({c.get('reason')}: {c.get('message')})" if c.get("status") != "True" and c.get("reason") else ""
        return f"{c.get('type')}={c.get('status')}{why}"

    conditions = ", ".join(condition(c) for c in (obj.get("status") or {}).get("conditions") or [])
    traffic = ", ".join(f"{t.get('revisionName')}{' (latest)' if t.get('latestRevision') else ''}: {t.get('percent')}%"
                        for t in _traffic(obj))
    return f"conditions: {conditions or 'none'}; traffic: {traffic or 'none'}"


# ------------------------------------------------------------------------------ readiness checks
# Each returns why the object is not there yet, or None when it is.


def _not_observed(obj: dict, generation: int | None) -> str | None:
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return f"the controller has not seen generation {generation} yet (observed {observed})"
    return None


def _not_ready(obj: dict) -> str | None:
    ready = _condition(obj, "Ready")
    if not ready or ready.get("status") != "True":
        why = f" ({ready.get('reason')}: {ready.get('message')})" if ready and ready.get("reason") else ""
        return "not Ready" + why
    return None


def _newest_not_ready(obj: dict) -> tuple[str | None, str | None]:
    status = _component_status(obj)
    created, ready = status.get("latestCreatedRevision"), status.get("latestReadyRevision")
    if not created or created != ready:
        return None, f"the newest revision {created} is not ready (latest ready: {ready})"
    return created, None


def full_traffic_problem(obj: dict, generation: int | None) -> str | None:
    problem = _not_observed(obj, generation)
    if problem:
        return problem
    newest, problem = _newest_not_ready(obj)
    if problem or (problem := _not_ready(obj)):
        return problem
    percent = _percent_on(_traffic(obj), newest)
    return None if percent == 100 else f"{newest} has {percent}% of traffic, not 100%"


def canary_problem(obj: dict, generation: int | None, percent: int, stable_rev: str | None) -> str | None:
    problem = _not_observed(obj, generation)
    if problem:
        return problem
    newest, problem = _newest_not_ready(obj)
    if problem or (problem := _not_ready(obj)):
        return problem
    if newest == stable_rev:
        return f"no new revision for the candidate yet (newest is the stable {stable_rev})"
    traffic = _traffic(obj)
    on_new, on_stable = _percent_on(traffic, newest), _percent_on(traffic, stable_rev)
    if (on_new, on_stable) != (percent, 100 - percent):
        return (f"traffic is {newest}: {on_new}%, stable {stable_rev}: {on_stable}%; waiting for "
                f"{percent}% / {100 - percent}%")
    return None


def rollback_problem(obj: dict, generation: int | None, stable_rev: str | None) -> str | None:
    # Not Ready is fine here: the canary being rolled back may be the revision that failed.
    problem = _not_observed(obj, generation)
    if problem:
        return problem
    on_stable = _percent_on(_traffic(obj), stable_rev)
    return None if on_stable == 100 else f"the stable revision {stable_rev} has {on_stable}% of traffic, not 100%"


def failed_revision(obj: dict) -> str | None:
    for kind in FAILED_REVISION_CONDITIONS:
        condition = _condition(obj, kind)
        if condition and condition.get("status") == "False":
            return f"{kind} is False ({condition.get('reason')}: {condition.get('message')})"
    return None


# ------------------------------------------------------------------------------ target


class KServeTarget:
    """`rollout.Target` on one InferenceService; see the module docstring."""

    name = "kserve"

    def __init__(self, config: KServeConfig, api, storage_uri_for: Callable[[ModelRef], str] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.api = api
        """kubernetes.client.CustomObjectsApi (JSON merge-patch for custom objects)."""
        self.storage_uri_for = storage_uri_for or default_storage_uri
        self.clock = clock
        self.sleep = sleep

    @classmethod
    def from_deploy_config(cls, config) -> "KServeTarget":
        """From a deploy.DeployConfig, with credentials in-cluster (a pipeline pod) or from ~/.kube/config."""
        from kubernetes import client
        from kubernetes import config as kube_config

        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:
            kube_config.load_kube_config()
        return cls(KServeConfig(namespace=config.kserve_namespace, name=config.kserve_service or config.model_name,
                                ingress_url=config.kserve_url), client.CustomObjectsApi())

    # -------------------------------------------------------------- API calls

    def _where(self, name: str) -> str:
        return f"InferenceService {self.config.namespace}/{name}"

    def _get(self, name: str) -> dict | None:
        try:
            return self.api.get_namespaced_custom_object(GROUP, API_VERSION_NAME, self.config.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise KServeError(f"reading {self._where(name)}: {exc.status} {exc.reason}") from exc

    def _create(self, body: dict) -> dict:
        name = body["metadata"]["name"]
        try:
            return self.api.create_namespaced_custom_object(GROUP, API_VERSION_NAME, self.config.namespace, PLURAL,
                                                            body, field_manager=FIELD_MANAGER,
                                                            field_validation="Strict")
        except ApiException as exc:
            raise KServeError(f"creating {self._where(name)}: {exc.status} {exc.reason}: {exc.body}") from exc

    def _patch(self, name: str, patch: dict) -> dict:
        log.info("patching %s: %s", self._where(name), json.dumps(patch, sort_keys=True))
        try:
            return self.api.patch_namespaced_custom_object(GROUP, API_VERSION_NAME, self.config.namespace, PLURAL,
                                                           name, patch, field_manager=FIELD_MANAGER,
                                                           field_validation="Strict")
        except ApiException as exc:
            raise KServeError(f"patching {self._where(name)}: {exc.status} {exc.reason}: {exc.body}") from exc

    # -------------------------------------------------------------- desired state

    def manifest(self, model: ModelRef, storage_uri: str, name: str | None = None,
                 extra_annotations: dict | None = None) -> dict:
        """The InferenceService serving `model` to 100% (compatible with manifests/base)."""
        c = self.config
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": name or c.name,
                "namespace": c.namespace,
                "labels": dict(c.labels),
                "annotations": {DEPLOYMENT_MODE: SERVERLESS, **model_annotations(model), **(extra_annotations or {})},
            },
            "spec": {"predictor": {
                "serviceAccountName": c.service_account,
                "minReplicas": c.min_replicas,
                "maxReplicas": c.max_replicas,
                **({"logger": self.logger_spec()} if c.log_sink_service else {}),
                "model": {
                    "modelFormat": {"name": c.model_format},
                    "runtime": c.runtime,
                    "storageUri": storage_uri,
                    "resources": copy.deepcopy(c.resources),
                },
            }},
        }

    def logger_spec(self) -> dict:
        """KServe's payload logger to the log sink, with the synthetic-traffic header (in Go's
        canonical form, which KServe's agent matches) as event metadata."""
        return {"mode": "all", "url": f"http://{self.config.log_sink_service}.{self.config.namespace}.svc.cluster.local",
                "metadataHeaders": [payload_logger.SYNTHETIC_METADATA_HEADER]}

    @staticmethod
    def changes(obj: dict, storage_uri: str | None = None, percent: Any = _KEEP,
                annotations: dict | None = None, min_replicas: int | None = None) -> dict:
        """The merge-patch taking `obj` to the desired values: only what differs ({} when nothing does).
        percent None removes canaryTrafficPercent."""
        patch: dict = {}
        current = _annotations(obj)
        changed = {k: v for k, v in (annotations or {}).items() if current.get(k) != v}
        if changed:
            patch["metadata"] = {"annotations": changed}
        predictor: dict = {}
        if storage_uri is not None and _storage_uri(obj) != storage_uri:
            predictor["model"] = {"storageUri": storage_uri}
        if percent is not _KEEP and _predictor(obj).get("canaryTrafficPercent") != percent:
            predictor["canaryTrafficPercent"] = percent
        if min_replicas is not None and _predictor(obj).get("minReplicas") != min_replicas:
            predictor["minReplicas"] = min_replicas
        if predictor:
            patch["spec"] = {"predictor": predictor}
        return patch

    def _storage(self, model: ModelRef) -> str:
        return self.storage_uri_for(model)

    # -------------------------------------------------------------- waiting

    def _wait(self, name: str, what: str, problem: Callable[[dict], str | None], fail_fast: bool = True) -> dict:
        deadline = self.clock() + self.config.ready_timeout_s
        while True:
            obj = self._get(name)
            if obj is None:
                raise KServeError(f"{what}: {self._where(name)} does not exist (deleted meanwhile?)")
            failure = failed_revision(obj) if fail_fast else None
            if failure:
                raise KServeError(f"{what}: the new revision of {self._where(name)} failed: {failure}")
            why = problem(obj)
            if why is None:
                return obj
            if self.clock() >= deadline:
                raise KServeError(f"{what}: {self._where(name)} not there after {self.config.ready_timeout_s:g} s: "
                                  f"{why}; {_describe(obj)}")
            self.sleep(self.config.poll_interval_s)

    @staticmethod
    def _generation(obj: dict) -> int | None:
        return (obj.get("metadata") or {}).get("generation")

    # -------------------------------------------------------------- Target

    def live(self) -> LiveState:
        return live_state(self._get(self.config.name), self._get(self.config.shadow_name), self.config.name)

    def revision_of(self, version: str) -> str:
        """The Knative revision serving `version` now, the `revision_name` label of queue-proxy's
        metrics (prometheus.ServedMetricsObserver): while a canary is out the canary's is the latest
        revision's traffic target and the stable's the pinned one; "" when neither serves it."""
        obj = self._get(self.config.name)
        if obj is None:
            return ""
        live = live_state(obj, None, self.config.name)
        if live.canary is not None and live.canary.version == version:
            latest = [t for t in _traffic(obj) if t.get("latestRevision")]
            return str(latest[0].get("revisionName") or "") if latest else ""
        if live.stable is not None and live.stable.version == version:
            return stable_revision(obj) or ""
        return ""

    def deploy(self, model: ModelRef) -> None:
        storage = self._storage(model)
        obj = self._get(self.config.name)
        if obj is None:
            generation = self._generation(self._create(self.manifest(model, storage)))
        else:  # replace whatever it serves (blue-green: Knative switches once the revision is ready)
            patch = self.changes(obj, storage_uri=storage, percent=None, annotations=model_annotations(model))
            generation = self._generation(self._patch(self.config.name, patch) if patch else obj)
        self._wait(self.config.name, f"deploying {model.version}",
                   lambda o: full_traffic_problem(o, generation))

    def set_canary(self, model: ModelRef, percent: int) -> None:
        if not 0 < percent < 100:
            raise ValueError(f"a canary share must be within (0, 100), got {percent}")
        storage = self._storage(model)
        obj = self._get(self.config.name)
        if obj is None:
            raise KServeError(f"{self._where(self.config.name)} does not exist: deploy a stable version first")
        modes = deployment_modes(obj)
        if modes != {SERVERLESS}:
            raise KServeError(
                f"{self._where(self.config.name)} runs in {' / '.join(sorted(modes)) or 'an unknown'} deployment "
                f"mode: KServe honours canaryTrafficPercent only in {SERVERLESS} (Knative) mode and would send "
                f"100% of traffic to {model.version} (kserve/kserve#5335, #4074). No change made; recreate it "
                f"with the annotation {DEPLOYMENT_MODE}: {SERVERLESS} (manifests/base) to roll out by canary")
        live = live_state(obj, None, self.config.name)
        stable = live.stable
        if stable.version == model.version:
            raise ValueError(f"{model.version} is already the stable version: nothing to canary")
        stable_storage = (_annotations(obj)[STABLE_STORAGE_URI] if live.canary is not None else _storage_uri(obj))
        annotations = {**model_annotations(model), STABLE_VERSION: stable.version, STABLE_URI: stable.uri,
                       STABLE_STORAGE_URI: stable_storage}
        stable_rev = stable_revision(obj)
        patch = self.changes(obj, storage_uri=storage, percent=percent, annotations=annotations)
        generation = self._generation(self._patch(self.config.name, patch) if patch else obj)
        self._wait(self.config.name, f"canary {model.version} at {percent}%",
                   lambda o: canary_problem(o, generation, percent, stable_rev))

    def promote(self, model: ModelRef) -> None:
        obj = self._get(self.config.name)
        if obj is None:
            self.deploy(model)
            return
        if spec_model(obj, self.config.name).version == model.version:
            # The canary is `model`: only the field goes (no annotation change: see the module docstring).
            patch = self.changes(obj, percent=None)
        else:  # no canary step ran (e.g. steps=(100,)): the spec switches to `model` outright
            patch = self.changes(obj, storage_uri=self._storage(model), percent=None,
                                 annotations=model_annotations(model))
        generation = self._generation(self._patch(self.config.name, patch) if patch else obj)
        self._wait(self.config.name, f"promoting {model.version}", lambda o: full_traffic_problem(o, generation))

    def rollback(self) -> None:
        obj = self._get(self.config.name)
        live = live_state(obj, None, self.config.name)
        if obj is None or live.canary is None:
            return
        stable_rev = stable_revision(obj)
        patch = self.changes(obj, storage_uri=_annotations(obj)[STABLE_STORAGE_URI], percent=0,
                             annotations=model_annotations(live.stable))
        generation = self._generation(self._patch(self.config.name, patch) if patch else obj)
        self._wait(self.config.name, f"rolling back {live.canary.version}",
                   lambda o: rollback_problem(o, generation, stable_rev), fail_fast=False)

    def start_shadow(self, model: ModelRef) -> None:
        storage = self._storage(model)
        name = self.config.shadow_name
        marks = {ROLE: "shadow", SHADOW_OF: self.config.name, SHADOW_ACTIVE: "true"}
        obj = self._get(name)
        if obj is None:
            generation = self._generation(self._create(self.manifest(model, storage, name=name,
                                                                     extra_annotations=marks)))
        else:
            patch = self.changes(obj, storage_uri=storage, annotations={**model_annotations(model), **marks},
                                 min_replicas=self.config.min_replicas or 1)
            generation = self._generation(self._patch(name, patch) if patch else obj)
        self._wait(name, f"shadow {model.version}", lambda o: full_traffic_problem(o, generation))

    def stop_shadow(self) -> None:
        obj = self._get(self.config.shadow_name)
        if obj is None:
            return
        patch = self.changes(obj, annotations={SHADOW_ACTIVE: "false"}, min_replicas=0)
        if patch:
            self._patch(self.config.shadow_name, patch)

    # -------------------------------------------------------------- addresses

    def endpoint(self, shadow: bool = False) -> tuple[str, dict[str, str]]:
        """(base URL, extra headers) to send requests to the InferenceService or its shadow."""
        name = self.config.shadow_name if shadow else self.config.name
        obj = self._get(name)
        if obj is None:
            raise KServeError(f"{self._where(name)} does not exist: nothing to send requests to")
        status = obj.get("status") or {}
        external = status.get("url") or ""
        if self.config.ingress_url:
            host = urllib.parse.urlparse(external).netloc
            if not host:
                raise KServeError(f"{self._where(name)} has no status.url yet: no Host header for the ingress")
            return self.config.ingress_url.rstrip("/"), {"Host": host}
        url = (status.get("address") or {}).get("url") or external
        if not url:
            raise KServeError(f"{self._where(name)} has no address yet (status.address.url / status.url)")
        return url.rstrip("/"), {}


def model_annotations(model: ModelRef) -> dict[str, str]:
    return {MODEL_NAME: model.model_name, MODEL_VERSION: model.version, MODEL_URI: model.uri}


# ------------------------------------------------------------------------------ observer


class KServeReplayObserver:
    """`rollout.Observer` for a cluster: replayed rows as V1 requests to the InferenceService, each
    answer attributed by the `model_version` our model server puts in every V1 response
    (traffic.attribute: failed or unplaceable answers are the candidate's errors). Shadow (percent
    0): every batch goes to the InferenceService (the stable's answers) and to `<name>-shadow` (the
    candidate's)."""

    def __init__(self, target: KServeTarget, candidate: ModelRef, rows: list[dict], config: ReplayConfig,
                 requests_per_step: int, transport=None, progress: Callable[[str], None] = print,
                 labels: list[int] | None = None):
        self.target = target
        self.candidate = candidate
        self.config = config
        self.requests_per_step = requests_per_step
        self.transport = transport
        """An httpx transport (tests: httpx.MockTransport); None = the network."""
        self.progress = progress
        self.replay = ReplayRows(rows, config, labels)

    def __call__(self, percent: int) -> tuple[VersionStats, VersionStats]:
        live = self.target.live()
        stable = VersionStats(live.stable.version if live.stable else "")
        candidate = VersionStats(self.candidate.version)
        with V1Client(self.config, self.transport) as client:
            main, headers = self.target.endpoint()
            senders = [client.sender(f"{main}/v1/models/{self.target.config.name}:predict", headers)]
            if percent == 0:
                shadow, shadow_headers = self.target.endpoint(shadow=True)
                senders.append(client.sender(f"{shadow}/v1/models/{self.target.config.shadow_name}:predict",
                                             shadow_headers))
            return replay_window(self.replay, self.requests_per_step, senders, self.config, stable, candidate,
                                 percent, self.progress)
