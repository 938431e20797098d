"""The kill switch on a fake target and a registry on disk: what it routes, records and refuses."""

from __future__ import annotations

import json

import pytest

from components.common import names
from components.common.errors import PipelineInputError
from components.deploy import kill_switch as ks
from components.deploy.deploy import version_ref
from components.deploy.rollout import LiveState
from components.deploy.tests.fakes import FakeTarget
from components.deploy.tests.test_deploy import make_registry

OLD, NEW = "v20250101T000000Z-a", "v20250102T000000Z-b"


@pytest.fixture
def registry(tmp_path):
    return make_registry(tmp_path / "registry", [OLD, NEW], champion=NEW, previous=OLD)


def test_a_promoted_version_is_replaced_by_the_previous_and_a_second_pull_changes_nothing(registry, tmp_path):
    old, new = version_ref(registry, "model", OLD), version_ref(registry, "model", NEW)
    target = FakeTarget(LiveState(stable=new))
    incident = ks.pull(target, registry, "model", reason="p99 alarms", by="alice")
    assert (incident.action, incident.live_before, incident.live_after) == (ks.PREVIOUS_DEPLOYED, NEW, OLD)
    assert target.calls == [("deploy", OLD)] and target.live() == LiveState(stable=old)
    champion = json.loads((tmp_path / "registry" / "model" / names.CHAMPION_FILE).read_text())
    assert champion["version"] == OLD and champion["rolled_back"] == NEW and "alice: p99 alarms" in champion["reason"]

    again = ks.pull(target, registry, "model", reason="still paging", by="bob")
    assert again.action == ks.UNCHANGED and target.calls == [("deploy", OLD)]  # not one version further back
    recorded = ks.read_incidents(registry, "model")
    assert [(i["by"], i["action"]) for i in recorded] == [("alice", ks.PREVIOUS_DEPLOYED), ("bob", ks.UNCHANGED)]


def test_a_canary_out_is_removed_and_the_stable_keeps_its_standing(registry, tmp_path):
    old, new = version_ref(registry, "model", OLD), version_ref(registry, "model", NEW)
    target = FakeTarget(LiveState(stable=old, canary=new, canary_percent=50))
    incident = ks.pull(target, registry, "model", reason="errors on real traffic", by="alice")
    assert (incident.action, incident.live_after, incident.removed) == (ks.CANARY_REMOVED, OLD, NEW)
    assert target.calls == [("rollback",)] and target.live() == LiveState(stable=old)
    champion = json.loads((tmp_path / "registry" / "model" / names.CHAMPION_FILE).read_text())
    assert champion["version"] == NEW  # untouched: removing a canary judges nothing


def test_nothing_live_no_previous_or_no_reason_is_refused(registry, tmp_path):
    with pytest.raises(PipelineInputError, match="nothing is live"):
        ks.pull(FakeTarget(), registry, "model", reason="x")
    oldest = FakeTarget(LiveState(stable=version_ref(registry, "model", OLD)))
    with pytest.raises(PipelineInputError, match="no previous version"):
        ks.pull(oldest, registry, "model", reason="x")
    with pytest.raises(PipelineInputError, match="needs a reason"):
        ks.pull(oldest, registry, "model", reason=" ")
    assert oldest.calls == [] and ks.read_incidents(registry, "model") == []
