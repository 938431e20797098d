"""The `vertex` target: a Vertex AI endpoint, canary steps by the endpoint's traffic split.

    target = VertexTarget(VertexConfig(project="my-project", location="us-central1", endpoint_display_name="model"))
    rollout(target, candidate, policy, VertexObserver(target, candidate, rows, ReplayConfig(), 400), ...)

Models: each pushed version is uploaded once as its own Vertex Model (display name
`<model>-<version>`, labels kfp-model / kfp-version, the version as a version alias) serving our
model-server image (components.common.images.SERVING_IMAGE) with the registry version directory
(gs:// only) as its artifact: the container gets `--model_dir=$(AIP_STORAGE_URI)` and answers
Vertex on the V1 route; the server copies the version down from that gs:// URI before it loads
(serving/storage.py). A re-run finds the Model by its labels instead of uploading it again.
Deployed models are named `<model>@<version>`: that is how `live()` tells the versions apart.

    deploy      Endpoint.deploy(model, traffic_percentage=100) (the endpoint is created if missing)
    set_canary  first step: Endpoint.deploy(candidate, traffic_split={"0": p, <stable id>: 100 - p})
                ("0" is the key Vertex gives the model being deployed); later steps
                Endpoint.update(traffic_split={<canary id>: p, <stable id>: 100 - p})
    promote     Endpoint.update(traffic_split={<canary id>: 100}), then Endpoint.undeploy(<stable id>)
    rollback    Endpoint.update(traffic_split={<stable id>: 100}), then Endpoint.undeploy(<canary id>)

Traffic always moves before an undeploy (Vertex undeploys a model only once no traffic is assigned
to it), every split sums to 100, and deploy never gets both traffic_percentage and traffic_split
(the SDK ignores traffic_percentage then). Every operation first reads the endpoint and makes no
call when it already serves what is asked (idempotent re-runs).

Which deployed model is which, from the endpoint alone: one with 100% is the stable; with two
sharing the traffic, the one deployed later (DeployedModel.create_time) is the canary, so a 50/50
step reads right. A deployed model with 0% (left by a run stopped between moving the traffic and
undeploying) is not live; deploy/promote/rollback undeploy such leftovers.

Shadow: Vertex has no traffic mirroring, and a prediction cannot be aimed at one deployed model of
a shared public endpoint (Endpoint.predict takes no deployed model; Endpoint.invoke does but only
on dedicated endpoints, Endpoint.explain does but needs an explanation spec). So the shadow is the
candidate alone at 100% on a second endpoint `<endpoint>-shadow`, and the "mirror" is the client:
VertexObserver sends every replayed batch to both endpoints. Real user traffic is NOT mirrored.
stop_shadow undeploys it (an endpoint with nothing deployed costs nothing; it is reused).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from components.common.errors import PipelineInputError
from components.common.images import SERVING_IMAGE
from components.deploy.rollout import LiveState, ModelRef, VersionStats
from components.deploy.traffic import (Answer, Batch, ReplayConfig, ReplayRows, Sender, replay_window,
                                       scalar_predictions, timed)

log = logging.getLogger(__name__)

MODEL_LABEL = "kfp-model"
VERSION_LABEL = "kfp-version"
NEW_MODEL_KEY = "0"
"""The traffic_split key of the model an Endpoint.deploy call is deploying."""
UNRECORDED = "unrecorded"
HEALTH_ROUTE = "/v2/health/ready"
_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]")


# rawPredict's answer names the DeployedModel that served it here (aiplatform reads the same header).
DEPLOYED_MODEL_ID_HEADER = "X-Vertex-AI-Deployed-Model-Id"


class VertexError(RuntimeError):
    """The endpoint is in a state this target cannot act on, or Vertex refused a change."""


def label_value(text: str) -> str:
    """A Vertex label value: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def deployed_display_name(model: ModelRef) -> str:
    return f"{model.model_name}@{model.version}"[:128]


@dataclasses.dataclass(frozen=True)
class VertexConfig:
    project: str
    location: str
    endpoint_display_name: str = ""
    """Found (or created) by display name..."""
    endpoint_name: str = ""
    """...or an existing endpoint's resource name or ID (wins when both are given)."""
    serving_container_image_uri: str = SERVING_IMAGE
    machine_type: str = "n1-standard-4"
    min_replica_count: int = 1
    max_replica_count: int = 1
    accelerator_type: str = ""
    """e.g. NVIDIA_L4 (with accelerator_count >= 1 and the GPU build of the serving image)."""
    accelerator_count: int = 0
    service_account: str = ""
    http_port: int = 8080
    shadow_suffix: str = "-shadow"

    def __post_init__(self) -> None:
        problems = []
        if not self.project or not self.location:
            problems.append("project and location are required")
        if not (self.endpoint_display_name or self.endpoint_name):
            problems.append("give endpoint_display_name or endpoint_name")
        if not 1 <= self.min_replica_count <= self.max_replica_count:
            problems.append(f"need 1 <= min_replica_count <= max_replica_count, got "
                            f"{self.min_replica_count}, {self.max_replica_count}")
        if bool(self.accelerator_type) != (self.accelerator_count > 0):
            problems.append("accelerator_type and accelerator_count >= 1 go together")
        if problems:
            raise PipelineInputError("invalid vertex config: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class Deployed:
    """One DeployedModel of an endpoint, with its share of the traffic."""

    id: str
    model_name: str
    version: str
    model_resource: str
    created: float
    percent: int


def roles(deployed: list[Deployed]) -> tuple[Deployed | None, Deployed | None, list[Deployed]]:
    """(stable, canary, leftovers with no traffic); see the module docstring."""
    serving = sorted((d for d in deployed if d.percent > 0), key=lambda d: (d.created, d.id))
    leftovers = [d for d in deployed if d.percent <= 0]
    if not serving:
        return None, None, leftovers
    if len(serving) == 1:
        return serving[0], None, leftovers
    if len(serving) == 2:
        return serving[0], serving[1], leftovers
    raise VertexError(f"the endpoint splits traffic over {len(serving)} deployed models "
                      f"({', '.join(f'{d.version}: {d.percent}%' for d in serving)}): not a stable/canary "
                      "pair this target manages; settle it by hand first")


class VertexTarget:
    """`rollout.Target` on one Vertex AI endpoint; see the module docstring."""

    name = "vertex"

    def __init__(self, config: VertexConfig, aiplatform: Any = None):
        self.config = config
        self.aip = aiplatform if aiplatform is not None else importlib.import_module("google.cloud.aiplatform")
        """google.cloud.aiplatform (tests: autospec'd Model and Endpoint classes)."""
        self._endpoints: dict[bool, Any] = {}
        self._uris: dict[str, str] = {}

    @classmethod
    def from_deploy_config(cls, config) -> "VertexTarget":
        """From a deploy.DeployConfig: vertex_endpoint is a resource name / numeric ID, else a display
        name (empty: the model name). Credentials: Application Default Credentials."""
        endpoint = config.vertex_endpoint
        by_name = endpoint.startswith("projects/") or endpoint.isdigit()
        return cls(VertexConfig(project=config.vertex_project, location=config.vertex_region,
                                endpoint_name=endpoint if by_name else "",
                                endpoint_display_name="" if by_name else (endpoint or config.model_name)))

    def deployed_model_id(self, version: str) -> str:
        """The DeployedModel id serving `version` on the endpoint ("" when none does)."""
        endpoint = self.endpoint()
        if endpoint is None:
            return ""
        return next((d.id for d in self.deployed(endpoint) if d.version == version), "")

    # -------------------------------------------------------------- lookups

    def _scope(self) -> dict:
        return {"project": self.config.project, "location": self.config.location}

    def _display_name(self, shadow: bool) -> str:
        if self.config.endpoint_display_name and not self.config.endpoint_name:
            main = self.config.endpoint_display_name
        else:
            main = self.endpoint(shadow=False).display_name
        return main + self.config.shadow_suffix if shadow else main

    def endpoint(self, shadow: bool = False, create_for: ModelRef | None = None):
        """The endpoint (or the shadow's); None when it does not exist and create_for is not given."""
        if shadow in self._endpoints:
            return self._endpoints[shadow]
        if not shadow and self.config.endpoint_name:
            found = self.aip.Endpoint(self.config.endpoint_name, **self._scope())
        else:
            display = self._display_name(shadow)
            matches = self.aip.Endpoint.list(filter=f'display_name="{display}"', **self._scope())
            if len(matches) > 1:
                raise VertexError(f"{len(matches)} endpoints are named {display!r} in {self.config.project}/"
                                  f"{self.config.location}: give endpoint_name (resource name or ID) instead")
            found = matches[0] if matches else None
            if found is None:
                if create_for is None:
                    return None
                log.info("creating endpoint %s", display)
                found = self.aip.Endpoint.create(display_name=display,
                                                 labels={MODEL_LABEL: label_value(create_for.model_name)},
                                                 **self._scope())
        self._endpoints[shadow] = found
        return found

    def deployed(self, endpoint) -> list[Deployed]:
        models = endpoint.list_models()
        split = dict(endpoint.traffic_split)
        result = []
        for dm in models:
            model_name, at, version = dm.display_name.rpartition("@")
            if not at:  # not deployed by this target
                model_name, version = dm.display_name, f"{UNRECORDED}:{dm.id}"
            created = dm.create_time.timestamp() if dm.create_time else 0.0
            result.append(Deployed(id=dm.id, model_name=model_name, version=version, model_resource=dm.model,
                                   created=created, percent=int(split.get(dm.id, 0))))
        return result

    def _uri(self, deployed: Deployed) -> str:
        if deployed.model_resource not in self._uris:
            self._uris[deployed.model_resource] = self.aip.Model(model_name=deployed.model_resource,
                                                                 **self._scope()).uri or ""
        return self._uris[deployed.model_resource]

    def _ref(self, deployed: Deployed | None) -> ModelRef | None:
        if deployed is None:
            return None
        return ModelRef(model_name=deployed.model_name, version=deployed.version, uri=self._uri(deployed))

    @staticmethod
    def _require_gcs(model: ModelRef) -> None:
        if not model.uri.startswith("gs://"):
            raise PipelineInputError(f"{model.version} is at {model.uri}: Vertex AI reads model artifacts from "
                                     "gs:// only (push to a registry on Cloud Storage)")

    def vertex_model(self, model: ModelRef):
        """The Vertex Model of `model`: the one uploaded before (by its labels), else a new upload."""
        labels = {MODEL_LABEL: label_value(model.model_name), VERSION_LABEL: label_value(model.version)}
        found = self.aip.Model.list(filter=" AND ".join(f'labels.{k}="{v}"' for k, v in labels.items()),
                                    **self._scope())
        if found:
            log.info("reusing Vertex model %s for %s", found[0].resource_name, model.version)
            self._uris[found[0].resource_name] = model.uri
            return found[0]
        uploaded = self.aip.Model.upload(
            display_name=f"{model.model_name}-{model.version}"[:128],
            artifact_uri=model.uri,
            serving_container_image_uri=self.config.serving_container_image_uri,
            serving_container_predict_route=f"/v1/models/{model.model_name}:predict",
            serving_container_health_route=HEALTH_ROUTE,
            serving_container_args=[f"--model_name={model.model_name}", "--model_dir=$(AIP_STORAGE_URI)",
                                    f"--http_port={self.config.http_port}"],
            serving_container_ports=[self.config.http_port],
            labels=labels,
            version_aliases=[model.version] if _ALIAS.fullmatch(model.version) else None,
            description=f"kfp-prod-components model {model.version} ({model.uri})",
            sync=True,
            **self._scope(),
        )
        self._uris[uploaded.resource_name] = model.uri
        return uploaded

    def _deploy_kwargs(self) -> dict:
        c = self.config
        kwargs: dict = {"machine_type": c.machine_type, "min_replica_count": c.min_replica_count,
                        "max_replica_count": c.max_replica_count, "sync": True}
        if c.accelerator_type:
            kwargs.update(accelerator_type=c.accelerator_type, accelerator_count=c.accelerator_count)
        if c.service_account:
            kwargs["service_account"] = c.service_account
        return kwargs

    def _serve_only(self, endpoint, deployed: list[Deployed], version: str, model: ModelRef | None = None) -> None:
        """`version` takes 100% of `endpoint` (deployed from `model` when not there yet); then
        everything else is undeployed, its traffic already moved away."""
        keep = next((d for d in deployed if d.version == version), None)
        if keep is None:
            if model is None:
                raise VertexError(f"{version} is not deployed and no model was given to deploy")
            vmodel = self.vertex_model(model)
            if deployed:
                endpoint.deploy(model=vmodel, deployed_model_display_name=deployed_display_name(model),
                                traffic_split={NEW_MODEL_KEY: 100}, **self._deploy_kwargs())
            else:
                endpoint.deploy(model=vmodel, deployed_model_display_name=deployed_display_name(model),
                                traffic_percentage=100, **self._deploy_kwargs())
        elif keep.percent != 100:
            endpoint.update(traffic_split={keep.id: 100})
        for other in deployed:
            if other is not keep:
                endpoint.undeploy(deployed_model_id=other.id)

    # -------------------------------------------------------------- Target

    def live(self) -> LiveState:
        stable = canary = shadow = None
        main = self.endpoint()
        if main is not None:
            stable, canary, _ = roles(self.deployed(main))
        shadow_endpoint = self.endpoint(shadow=True)
        if shadow_endpoint is not None:
            shadow = next((d for d in self.deployed(shadow_endpoint) if d.percent == 100), None)
        return LiveState(stable=self._ref(stable), canary=self._ref(canary),
                         canary_percent=canary.percent if canary else 0, shadow=self._ref(shadow))

    def deploy(self, model: ModelRef) -> None:
        self._require_gcs(model)
        endpoint = self.endpoint(create_for=model)
        self._serve_only(endpoint, self.deployed(endpoint), model.version, model)

    def set_canary(self, model: ModelRef, percent: int) -> None:
        if not 0 < percent < 100:
            raise ValueError(f"a canary share must be within (0, 100), got {percent}")
        self._require_gcs(model)
        endpoint = self.endpoint()
        deployed = self.deployed(endpoint) if endpoint is not None else []
        stable, canary, leftovers = roles(deployed)
        if stable is None:
            raise VertexError("nothing serves traffic on the endpoint: deploy a stable version first")
        if stable.version == model.version:
            raise ValueError(f"{model.version} is already the stable version: nothing to canary")
        if canary is not None and canary.version != model.version:  # another candidate's canary goes first
            self._serve_only(endpoint, deployed, stable.version)
            deployed = self.deployed(endpoint)
            stable, canary, leftovers = roles(deployed)
        existing = canary or next((d for d in leftovers if d.version == model.version), None)
        if existing is None:
            endpoint.deploy(model=self.vertex_model(model), deployed_model_display_name=deployed_display_name(model),
                            traffic_split={NEW_MODEL_KEY: percent, stable.id: 100 - percent},
                            **self._deploy_kwargs())
        elif existing.percent != percent:
            endpoint.update(traffic_split={existing.id: percent, stable.id: 100 - percent})

    def promote(self, model: ModelRef) -> None:
        self._require_gcs(model)
        endpoint = self.endpoint(create_for=model)
        self._serve_only(endpoint, self.deployed(endpoint), model.version, model)

    def rollback(self) -> None:
        endpoint = self.endpoint()
        if endpoint is None:
            return
        deployed = self.deployed(endpoint)
        stable, _, _ = roles(deployed)
        if stable is not None:
            self._serve_only(endpoint, deployed, stable.version)

    def start_shadow(self, model: ModelRef) -> None:
        self._require_gcs(model)
        endpoint = self.endpoint(shadow=True, create_for=model)
        self._serve_only(endpoint, self.deployed(endpoint), model.version, model)

    def stop_shadow(self) -> None:
        endpoint = self.endpoint(shadow=True)
        if endpoint is None:
            return
        deployed = sorted(self.deployed(endpoint), key=lambda d: d.percent)
        if len(deployed) > 1 and deployed[-1].percent != 100:
            endpoint.update(traffic_split={deployed[-1].id: 100})
        for d in deployed:  # the one with the traffic last: undeploying the last model empties the split
            endpoint.undeploy(deployed_model_id=d.id)


# ------------------------------------------------------------------------------ observer


class VertexObserver:
    """`rollout.Observer`: replayed rows through rawPredict, each answer attributed by the
    X-Vertex-AI-Deployed-Model-Id header (the DeployedModel that served it; traffic.attribute:
    failed or unplaceable answers are the candidate's errors). Shadow (percent 0): each batch goes
    to the endpoint (the stable's answers) and to the shadow endpoint (the candidate's)."""

    def __init__(self, target: VertexTarget, candidate: ModelRef, rows: list[dict], config: ReplayConfig,
                 requests_per_step: int, progress: Callable[[str], None] = print,
                 labels: list[int] | None = None):
        self.target = target
        self.candidate = candidate
        self.config = config
        self.requests_per_step = requests_per_step
        self.progress = progress
        self.replay = ReplayRows(rows, config, labels)

    def sender(self, endpoint, versions: dict[str, str]) -> Sender:
        """Batches through rawPredict, which, unlike Endpoint.predict, sends our headers:
        x-synthetic-traffic keeps replayed rows out of the monitor's traffic. The answer's
        X-Vertex-AI-Deployed-Model-Id header names the DeployedModel, `versions` its version.
        (The SDK is the transport here: it holds Google's credentials.)"""

        def send(batch: Batch) -> Answer:
            def call(answer: Answer) -> None:
                response = endpoint.raw_predict(body=json.dumps({"instances": batch.rows}).encode(),
                                                headers=self.config.headers(batch.request_id),
                                                timeout=self.config.timeout_s)
                answer.status = response.status_code
                if response.status_code == 200:
                    deployed_model_id = str(response.headers.get(DEPLOYED_MODEL_ID_HEADER, ""))
                    answer.version = versions.get(deployed_model_id, "")
                    answer.predictions = scalar_predictions(response.json()["predictions"])
                    answer.ok = True

            return timed(batch.request_id, call)

        return send

    def __call__(self, percent: int) -> tuple[VersionStats, VersionStats]:
        main = self.target.endpoint()
        if main is None:
            raise VertexError("the endpoint does not exist: nothing to send requests to")
        deployed = self.target.deployed(main)
        stable_deployed = roles(deployed)[0]
        senders = [self.sender(main, {d.id: d.version for d in deployed})]
        if percent == 0:
            shadow = self.target.endpoint(shadow=True)
            if shadow is None:
                raise VertexError("the shadow endpoint does not exist: start_shadow first")
            senders.append(self.sender(shadow, {d.id: d.version for d in self.target.deployed(shadow)}))
        stable = VersionStats(stable_deployed.version if stable_deployed else "")
        candidate = VersionStats(self.candidate.version)
        return replay_window(self.replay, self.requests_per_step, senders, self.config, stable, candidate, percent,
                             self.progress)
