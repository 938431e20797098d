"""Vertex AI target against autospec'd aiplatform.Endpoint / aiplatform.Model classes whose
behaviour follows the Vertex API's traffic rules (splits sum to 100, "0" names the model being
deployed, a model is undeployed only once its traffic moved away), starting from hand-built
resource shapes (shapes/vertex_*.json, parsed strictly into the v1 protos). No network."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import re
import types
from pathlib import Path
from unittest import mock

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import aiplatform
from google.cloud.aiplatform_v1.types import DeployedModel
from google.cloud.aiplatform_v1.types import Endpoint as EndpointProto
from google.cloud.aiplatform_v1.types import Model as ModelProto

from components.common import names
from components.common.errors import PipelineInputError
from components.common.images import SERVING_IMAGE
from components.deploy import analysis
from components.deploy import vertex as vx
from components.deploy.traffic import ReplayConfig
from components.deploy.rollout import (
    FIRST_DEPLOY, PROMOTED, ROLLED_BACK, SHADOW, SHADOW_PASSED, UNCHANGED, LiveState, ModelRef, RolloutPolicy,
    rollout,
)
from components.deploy.tests.fakes import ScriptedObserver

SHAPES = Path(__file__).parent / "shapes"
REGISTRY = "gs://kfp-prod-registry/registry/model/versions"
V1 = ModelRef("model", "v20261120T093000Z-5d1e2f3a", f"{REGISTRY}/v20261120T093000Z-5d1e2f3a")
V2 = ModelRef("model", "v20261123T001142Z-c48fedb3", f"{REGISTRY}/v20261123T001142Z-c48fedb3")
PROJECT = "projects/123456789012/locations/us-central1"
STABLE_ID, CANARY_ID = "1029384756102938475", "5647382910564738291"
SCOPE = {"project": "my-project", "location": "us-central1"}
POLICY = RolloutPolicy(steps=(10, 50, 100), requests_per_step=400, min_requests=30)
MUTATING = ("deploy", "update", "undeploy")


def shaped_endpoint() -> EndpointProto:
    return EndpointProto.from_json((SHAPES / "vertex_endpoint_canary10.json").read_text(),
                                   ignore_unknown_fields=False)


def shaped_models() -> list[ModelProto]:
    v2 = ModelProto.from_json((SHAPES / "vertex_model_v2.json").read_text(), ignore_unknown_fields=False)
    v1 = ModelProto.from_json((SHAPES / "vertex_model_v2.json").read_text().replace(V2.version, V1.version)
                              .replace(V2.version.lower(), V1.version.lower())
                              .replace("1122334455667788990", "7766554433221100998")
                              .replace(CANARY_ID, STABLE_ID), ignore_unknown_fields=False)
    return [v1, v2]


class FakeEndpoint:
    """One endpoint's state behind an autospec'd aiplatform.Endpoint instance."""

    def __init__(self, vertex: "FakeVertex", proto: EndpointProto):
        self.vertex = vertex
        self.name, self.display_name = proto.name, proto.display_name
        self.deployed: list[DeployedModel] = list(proto.deployed_models)
        self.split: dict[str, int] = dict(proto.traffic_split)
        self.mock = mock.create_autospec(aiplatform.Endpoint, instance=True)
        self.mock.resource_name, self.mock.display_name = proto.name, proto.display_name
        self.mock.list_models.side_effect = lambda: list(self.deployed)
        self.mock.deploy.side_effect = self.deploy
        self.mock.update.side_effect = self.update
        self.mock.undeploy.side_effect = self.undeploy
        self.mock.raw_predict.side_effect = self.raw_predict
        self.requests = 0
        self.request_headers: list[dict] = []
        self._publish()

    def _publish(self) -> None:
        self.mock.traffic_split = dict(self.split)

    def _check(self, split: dict[str, int], allowed: set[str]) -> None:
        if sum(split.values()) != 100 or any(v < 0 for v in split.values()):
            raise gexc.InvalidArgument(f"traffic split {split} does not sum to 100")
        unknown = set(split) - allowed
        if unknown:
            raise gexc.InvalidArgument(f"traffic split names unknown deployed models {unknown}")

    def deploy(self, model, deployed_model_display_name=None, traffic_percentage=None, traffic_split=None,
               **kwargs):
        if traffic_split is not None and traffic_percentage is not None:
            raise AssertionError("deploy got both traffic_percentage and traffic_split")
        new_id = str(next(self.vertex.ids))
        if traffic_split is not None:
            self._check(traffic_split, {d.id for d in self.deployed} | {vx.NEW_MODEL_KEY})
            if vx.NEW_MODEL_KEY not in traffic_split:
                raise gexc.InvalidArgument('the model being deployed must be key "0"')
            split = {(new_id if k == vx.NEW_MODEL_KEY else k): v for k, v in traffic_split.items()}
        else:  # the SDK's own rule: others scaled down to make room
            split = aiplatform.Endpoint._allocate_traffic(self.split, traffic_percentage or 0)
            split[new_id] = split.pop(vx.NEW_MODEL_KEY)
        self.deployed.append(DeployedModel(id=new_id, model=model.resource_name, model_version_id="1",
                                           display_name=deployed_model_display_name,
                                           create_time=self.vertex.tick()))
        self.split = {k: v for k, v in split.items() if v}
        self._publish()

    def update(self, traffic_split=None, **kwargs):
        self._check(traffic_split, {d.id for d in self.deployed})
        self.split = {k: v for k, v in traffic_split.items() if v}
        self._publish()

    def undeploy(self, deployed_model_id, traffic_split=None, **kwargs):
        assert traffic_split is None, "this target moves traffic first, never inside undeploy"
        if deployed_model_id not in {d.id for d in self.deployed}:
            raise gexc.NotFound(f"deployed model {deployed_model_id} not found")
        if self.split.get(deployed_model_id) and len(self.deployed) > 1:
            raise gexc.FailedPrecondition(f"deployed model {deployed_model_id} still has "
                                          f"{self.split[deployed_model_id]}% of the traffic")
        self.deployed = [d for d in self.deployed if d.id != deployed_model_id]
        self.split.pop(deployed_model_id, None)
        self._publish()

    def raw_predict(self, body, headers, timeout=None, **kwargs):
        """Endpoint.raw_predict: a requests.Response, the serving DeployedModel in its header."""
        self.requests += 1
        self.request_headers.append(dict(headers))
        instances = json.loads(body)["instances"]
        ordered = sorted(self.split.items(), key=lambda kv: -kv[1])  # stable first, canary last
        n, chosen, cumulative = self.requests % 100, ordered[-1][0], 0
        for deployed_id, percent in reversed(ordered):
            cumulative += percent
            if n < cumulative:
                chosen = deployed_id
                break
        version = next(d.display_name for d in self.deployed if d.id == chosen).rpartition("@")[2]
        response = requests.models.Response()
        if version in self.vertex.broken or (self.vertex.fail_every and self.requests % self.vertex.fail_every == 0):
            response.status_code, response._content = 503, b"upstream connect error"
            return response
        response.status_code = 200
        response._content = json.dumps({"predictions": [0.25] * len(instances)}).encode()
        response.headers[vx.DEPLOYED_MODEL_ID_HEADER] = chosen
        return response

    def mutations(self) -> list[tuple]:
        return [(c[0], c.args, c.kwargs) for c in self.mock.method_calls if c[0] in MUTATING]


class FakeVertex:
    """The aiplatform module as VertexTarget uses it: autospec'd Endpoint and Model classes."""

    def __init__(self, endpoint: EndpointProto | None = None, models: list[ModelProto] = (),
                 broken: set[str] = frozenset(), fail_every: int = 0):
        self.ids = itertools.count(9000000000000000001)
        self.clock = dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)
        self.endpoints: list[FakeEndpoint] = []
        self.models: list = []
        self.broken, self.fail_every = broken, fail_every
        self.Endpoint = mock.create_autospec(aiplatform.Endpoint)
        self.Model = mock.create_autospec(aiplatform.Model)
        self.Endpoint.side_effect = self._endpoint_by_name
        self.Endpoint.list.side_effect = self._list_endpoints
        self.Endpoint.create.side_effect = self._create_endpoint
        self.Model.side_effect = self._model_by_name
        self.Model.list.side_effect = self._list_models
        self.Model.upload.side_effect = self._upload
        self.module = types.SimpleNamespace(Endpoint=self.Endpoint, Model=self.Model)
        if endpoint is not None:
            self.endpoints.append(FakeEndpoint(self, endpoint))
        for proto in models:
            self._add_model(proto.name, dict(proto.labels), proto.artifact_uri)

    def tick(self) -> dt.datetime:
        self.clock += dt.timedelta(minutes=1)
        return self.clock

    def _add_model(self, name: str, labels: dict, uri: str):
        model = mock.create_autospec(aiplatform.Model, instance=True)
        model.resource_name, model.labels, model.uri = name, labels, uri
        self.models.append(model)
        return model

    def _endpoint_by_name(self, endpoint_name, project=None, location=None, credentials=None):
        for e in self.endpoints:
            if endpoint_name in (e.name, e.name.rsplit("/", 1)[1]):
                return e.mock
        raise gexc.NotFound(f"endpoint {endpoint_name}")

    def _list_endpoints(self, filter=None, order_by=None, project=None, location=None, credentials=None):
        (name,) = re.fullmatch(r'display_name="(.*)"', filter).groups()
        return [e.mock for e in self.endpoints if e.display_name == name]

    def _create_endpoint(self, display_name=None, labels=None, project=None, location=None, **kwargs):
        proto = EndpointProto(name=f"{PROJECT}/endpoints/{next(self.ids)}", display_name=display_name,
                              labels=labels or {})
        self.endpoints.append(FakeEndpoint(self, proto))
        return self.endpoints[-1].mock

    def _model_by_name(self, model_name, project=None, location=None, credentials=None, version=None):
        return next(m for m in self.models if m.resource_name == model_name)

    def _list_models(self, filter=None, order_by=None, project=None, location=None, credentials=None):
        wanted = dict(re.findall(r'labels\.([\w-]+)="([^"]*)"', filter))
        return [m for m in self.models if wanted.items() <= m.labels.items()]

    def _upload(self, **kwargs):
        return self._add_model(f"{PROJECT}/models/{next(self.ids)}", kwargs["labels"], kwargs["artifact_uri"])

    def endpoint(self, display_name: str = "model") -> FakeEndpoint:
        return next(e for e in self.endpoints if e.display_name == display_name)

    def class_mutations(self) -> int:
        return self.Model.upload.call_count + self.Endpoint.create.call_count


def stable_endpoint() -> EndpointProto:
    proto = shaped_endpoint()
    del proto.deployed_models[1]
    proto.traffic_split = {STABLE_ID: 100}
    return proto


def make(endpoint: EndpointProto | None = None, models=None, **kwargs) -> tuple[FakeVertex, vx.VertexTarget]:
    vertex = FakeVertex(endpoint, shaped_models() if models is None else models, **kwargs)
    return vertex, vx.VertexTarget(vx.VertexConfig(endpoint_display_name="model", machine_type="n1-standard-4",
                                                   min_replica_count=1, max_replica_count=3, **SCOPE),
                                   aiplatform=vertex.module)


DEPLOY_KWARGS = {"machine_type": "n1-standard-4", "min_replica_count": 1, "max_replica_count": 3, "sync": True}


# ------------------------------------------------------------------------------ shapes


def test_hand_built_shapes_parse_strictly_and_read_as_a_10_percent_canary():
    endpoint = shaped_endpoint()
    assert sum(endpoint.traffic_split.values()) == 100
    assert {d.id for d in endpoint.deployed_models} == set(endpoint.traffic_split)
    _, target = make(endpoint)
    assert target.live() == LiveState(stable=V1, canary=V2, canary_percent=10)


def test_roles_read_a_50_50_split_by_deployment_time_and_refuse_three_models():
    old = vx.Deployed("a", "model", V1.version, "m1", created=1.0, percent=50)
    new = vx.Deployed("b", "model", V2.version, "m2", created=2.0, percent=50)
    leftover = vx.Deployed("c", "model", "v0", "m0", created=0.5, percent=0)
    assert vx.roles([new, leftover, old]) == (old, new, [leftover])
    with pytest.raises(vx.VertexError, match="over 3 deployed models"):
        vx.roles([old, new, dataclasses.replace(leftover, percent=10)])


def test_fake_enforces_the_vertex_rules_it_is_trusted_for():
    vertex, _ = make(shaped_endpoint())
    endpoint = vertex.endpoint().mock
    with pytest.raises(gexc.FailedPrecondition, match="still has 90%"):
        endpoint.undeploy(deployed_model_id=STABLE_ID)
    with pytest.raises(gexc.InvalidArgument, match="does not sum to 100"):
        endpoint.update(traffic_split={STABLE_ID: 80, CANARY_ID: 10})
    with pytest.raises(AssertionError, match="both"):
        endpoint.deploy(vertex.models[0], traffic_percentage=10, traffic_split={"0": 100})


# ------------------------------------------------------------------------------ operations


def test_first_deploy_creates_the_endpoint_uploads_once_and_deploys_at_100():
    vertex, target = make(None, models=[])
    assert target.live() == LiveState()
    target.deploy(V1)
    vertex.Endpoint.create.assert_called_once_with(display_name="model", labels={"kfp-model": "model"}, **SCOPE)
    vertex.Model.upload.assert_called_once_with(
        display_name=f"model-{V1.version}", artifact_uri=V1.uri, serving_container_image_uri=SERVING_IMAGE,
        serving_container_predict_route="/v1/models/model:predict",
        serving_container_health_route="/v2/health/ready",
        serving_container_args=["--model_name=model", "--model_dir=$(AIP_STORAGE_URI)", "--http_port=8080"],
        serving_container_ports=[8080],
        labels={"kfp-model": "model", "kfp-version": V1.version.lower()},
        version_aliases=[V1.version], description=f"kfp-prod-components model {V1.version} ({V1.uri})",
        sync=True, **SCOPE)
    uploaded = vertex.models[-1]
    vertex.endpoint().mock.deploy.assert_called_once_with(
        model=uploaded, deployed_model_display_name=f"model@{V1.version}", traffic_percentage=100, **DEPLOY_KWARGS)
    assert target.live() == LiveState(stable=V1)
    # A re-run finds everything in place.
    target.deploy(V1)
    assert vertex.Model.upload.call_count == 1 and len(vertex.endpoint().mutations()) == 1


def test_an_uploaded_version_is_reused_not_uploaded_again():
    proto = stable_endpoint()
    vertex, target = make(proto)
    target.set_canary(V2, 10)
    vertex.Model.upload.assert_not_called()
    vertex.Model.list.assert_called_once_with(
        filter=f'labels.kfp-model="model" AND labels.kfp-version="{V2.version.lower()}"', **SCOPE)
    assert vertex.endpoint().mock.deploy.call_args.kwargs["model"] is vertex.models[1]


def test_canary_10_deploys_the_candidate_with_key_0_and_a_split_summing_to_100():
    vertex, target = make(stable_endpoint())
    target.set_canary(V2, 10)
    (call,) = vertex.endpoint().mutations()
    assert call == ("deploy", (), {"model": vertex.models[1], "deployed_model_display_name": f"model@{V2.version}",
                                   "traffic_split": {"0": 10, STABLE_ID: 90}, **DEPLOY_KWARGS})
    assert "traffic_percentage" not in call[2]
    state = target.live()
    assert state == LiveState(stable=V1, canary=V2, canary_percent=10)


def test_step_50_only_updates_the_split():
    vertex, target = make(shaped_endpoint())
    target.set_canary(V2, 50)
    assert vertex.endpoint().mutations() == [("update", (), {"traffic_split": {CANARY_ID: 50, STABLE_ID: 50}})]
    assert target.live() == LiveState(stable=V1, canary=V2, canary_percent=50), "50/50 read by deployment time"


def test_promote_moves_the_traffic_before_undeploying_the_old_stable():
    vertex, target = make(shaped_endpoint())
    target.promote(V2)
    assert vertex.endpoint().mutations() == [
        ("update", (), {"traffic_split": {CANARY_ID: 100}}),
        ("undeploy", (), {"deployed_model_id": STABLE_ID}),
    ]
    assert vertex.endpoint().split == {CANARY_ID: 100}
    assert target.live() == LiveState(stable=V2)


def test_rollback_moves_the_traffic_back_before_undeploying_the_canary():
    vertex, target = make(shaped_endpoint())
    target.rollback()
    assert vertex.endpoint().mutations() == [
        ("update", (), {"traffic_split": {STABLE_ID: 100}}),
        ("undeploy", (), {"deployed_model_id": CANARY_ID}),
    ]
    assert target.live() == LiveState(stable=V1)


@pytest.mark.parametrize(("start", "operation"), [
    ("stable", lambda t: t.deploy(V1)),
    ("stable", lambda t: t.promote(V1)),
    ("stable", lambda t: t.rollback()),
    ("stable", lambda t: t.stop_shadow()),
    ("canary", lambda t: t.set_canary(V2, 10)),
], ids=["deploy", "promote", "rollback", "stop_shadow", "set_canary"])
def test_rerunning_an_operation_that_is_already_done_makes_no_call(start, operation):
    vertex, target = make(stable_endpoint() if start == "stable" else shaped_endpoint())
    before = target.live()
    operation(target)
    assert vertex.endpoint().mutations() == [] and vertex.class_mutations() == 0
    assert target.live() == before


def test_a_leftover_at_zero_percent_is_reused_for_the_canary_and_cleaned_by_rollback():
    proto = shaped_endpoint()
    proto.traffic_split = {STABLE_ID: 100}  # a run stopped after moving the traffic, before the undeploy
    vertex, target = make(proto)
    assert target.live() == LiveState(stable=V1)
    target.set_canary(V2, 10)
    assert vertex.endpoint().mutations() == [("update", (), {"traffic_split": {CANARY_ID: 10, STABLE_ID: 90}})]
    target.rollback()
    target.rollback()
    assert vertex.endpoint().mutations()[1:] == [("update", (), {"traffic_split": {STABLE_ID: 100}}),
                                                 ("undeploy", (), {"deployed_model_id": CANARY_ID})]


def test_a_canary_of_another_candidate_is_taken_out_first():
    vertex, target = make(shaped_endpoint())
    v3 = ModelRef("model", "v20261124T000000Z-0a0a0a0a", f"{REGISTRY}/v20261124T000000Z-0a0a0a0a")
    target.set_canary(v3, 10)
    calls = vertex.endpoint().mutations()
    assert [c[0] for c in calls] == ["update", "undeploy", "deploy"]
    assert calls[2][2]["traffic_split"] == {"0": 10, STABLE_ID: 90}
    assert target.live() == LiveState(stable=V1, canary=v3, canary_percent=10)


def test_local_registry_paths_are_refused_before_any_call():
    vertex, target = make(None, models=[])
    local = ModelRef("model", V1.version, f"/registry/model/versions/{V1.version}")
    for operation in (lambda: target.deploy(local), lambda: target.set_canary(local, 10),
                      lambda: target.start_shadow(local)):
        with pytest.raises(PipelineInputError, match="gs:// only"):
            operation()
    assert vertex.Endpoint.method_calls == [] and vertex.Model.method_calls == []


# ------------------------------------------------------------------------------ the rollout loop


def test_rollout_promotes_with_every_split_summing_to_100():
    vertex, target = make(stable_endpoint())
    result = rollout(target, V2, POLICY, ScriptedObserver(), analysis.analyse, lambda line: None)
    assert result.outcome == PROMOTED
    calls = vertex.endpoint().mutations()
    assert [c[0] for c in calls] == ["deploy", "update", "update", "undeploy"]
    new_id = vertex.endpoint().split and next(iter(vertex.endpoint().split))
    assert calls[0][2]["traffic_split"] == {"0": 10, STABLE_ID: 90}
    assert calls[1][2] == {"traffic_split": {new_id: 50, STABLE_ID: 50}}
    assert calls[2][2] == {"traffic_split": {new_id: 100}}
    assert calls[3][2] == {"deployed_model_id": STABLE_ID}
    splits = [c[2]["traffic_split"] for c in calls if "traffic_split" in c[2]]
    assert all(sum(s.values()) == 100 for s in splits)
    assert target.live() == LiveState(stable=V2)
    again = rollout(target, V2, POLICY, ScriptedObserver(), analysis.analyse, lambda line: None)
    assert again.outcome == UNCHANGED and len(vertex.endpoint().mutations()) == 4


def test_rollout_rolls_back_on_a_breach():
    vertex, target = make(stable_endpoint())
    result = rollout(target, V2, POLICY, ScriptedObserver({10: {"canary_errors": 10}}), analysis.analyse,
                     lambda line: None)
    assert result.outcome == ROLLED_BACK and result.reason.startswith("at 10%")
    calls = vertex.endpoint().mutations()
    assert [c[0] for c in calls] == ["deploy", "update", "undeploy"]
    assert calls[1][2] == {"traffic_split": {STABLE_ID: 100}}
    assert target.live() == LiveState(stable=V1)


def test_rollout_first_deploy_then_shadow_on_a_second_endpoint():
    vertex, target = make(None, models=[])
    assert rollout(target, V1, POLICY, ScriptedObserver(), analysis.analyse, lambda l: None).outcome == FIRST_DEPLOY
    main_calls = len(vertex.endpoint().mutations())
    result = rollout(target, V2, dataclasses.replace(POLICY, mode=SHADOW), ScriptedObserver(), analysis.analyse,
                     lambda line: None)
    assert result.outcome == SHADOW_PASSED
    assert len(vertex.endpoint().mutations()) == main_calls, "the served endpoint is never touched"
    shadow = vertex.endpoint("model-shadow")
    assert [c[0] for c in shadow.mutations()] == ["deploy", "undeploy"]
    assert shadow.mutations()[0][2]["traffic_percentage"] == 100 and shadow.deployed == []
    assert target.live() == LiveState(stable=V1)
    target.start_shadow(V2)
    assert target.live() == LiveState(stable=V1, shadow=V2)
    assert vertex.Model.upload.call_count == 2, "each version uploaded once"


# ------------------------------------------------------------------------------ observer

ROWS = [{"lvrat": 0.8, "chist": 5}, {"lvrat": 0.6, "chist": 1}, {"lvrat": 0.95, "chist": 2}]


def observer_for(target, requests: int) -> vx.VertexObserver:
    return vx.VertexObserver(target, V2, ROWS, ReplayConfig(rows_per_request=2, concurrency=1), requests,
                             progress=lambda line: None)


def test_observer_attributes_by_deployed_model_id_and_failures_to_the_canary():
    vertex, target = make(shaped_endpoint(), fail_every=25)
    stable, canary = observer_for(target, 100)(10)
    assert vertex.endpoint().requests == 100
    assert (stable.version, canary.version) == (V1.version, V2.version)
    # n % 100 < 10 → canary (requests 1..9 and 100); 25, 50, 75, 100 fail: 3 taken from the stable.
    assert (canary.requests, canary.errors) == (13, 4)
    assert (stable.requests, stable.errors) == (87, 0)
    assert len(canary.predictions) == 9 * 2 and len(stable.latencies_ms) == 87
    # Replayed rows are marked synthetic, so the monitor leaves them out of users' traffic.
    sent = vertex.endpoint().request_headers
    assert all(h.get(names.SYNTHETIC_TRAFFIC_HEADER) == "replay" and h.get("x-request-id") for h in sent)


def test_observer_sends_unmarked_requests_where_replay_stands_in_for_users():
    vertex, target = make(shaped_endpoint())
    vx.VertexObserver(target, V2, ROWS, ReplayConfig(rows_per_request=2, concurrency=1, synthetic=False), 10,
                      progress=lambda line: None)(10)
    assert not any(names.SYNTHETIC_TRAFFIC_HEADER in h for h in vertex.endpoint().request_headers)


def test_observer_mirrors_batches_to_the_shadow_endpoint():
    vertex, target = make(stable_endpoint(), broken={V2.version})
    target.start_shadow(V2)
    stable, shadow = observer_for(target, 30)(0)
    assert vertex.endpoint().requests == 30 and vertex.endpoint("model-shadow").requests == 30
    assert (stable.requests, stable.errors) == (30, 0)
    assert (shadow.requests, shadow.errors) == (30, 30)


@pytest.mark.parametrize(("broken", "outcome"), [(set(), PROMOTED), ({V2.version}, ROLLED_BACK)])
def test_rollout_with_the_observer_end_to_end(broken, outcome):
    vertex, target = make(stable_endpoint(), broken=broken)
    policy = RolloutPolicy(steps=(10, 50, 100), requests_per_step=200, min_requests=10)
    result = rollout(target, V2, policy, observer_for(target, 200), analysis.analyse, lambda line: None)
    assert result.outcome == outcome
    assert target.live() == LiveState(stable=V2 if outcome == PROMOTED else V1)


# ------------------------------------------------------------------------------ wiring


@pytest.mark.parametrize(("endpoint", "name", "display"), [
    ("", "", "model"), ("fraud-endpoint", "", "fraud-endpoint"), ("4321098765432109876", "4321098765432109876", ""),
    (f"{PROJECT}/endpoints/1", f"{PROJECT}/endpoints/1", ""),
])
def test_built_from_the_deploy_config(endpoint, name, display):
    from components.deploy import deploy

    config = deploy.DeployConfig(target="vertex", registry_uri="gs://r", vertex_project="my-project",
                                 vertex_region="us-central1", vertex_endpoint=endpoint)
    target = deploy.build_target(config)
    assert isinstance(target, vx.VertexTarget) and target.aip is aiplatform
    assert (target.config.project, target.config.location) == ("my-project", "us-central1")
    assert (target.config.endpoint_name, target.config.endpoint_display_name) == (name, display)
    assert target.config.serving_container_image_uri == SERVING_IMAGE
