"""Kill switch: 100% of traffic to the previous version now, on any target, with who and why.

    make rollback REASON="p99 alarms since 14:02" [TARGET=local] [BY=alice]
    python -m components.deploy.kill_switch --target kserve --registry gs://.../registry \
        --kserve-namespace ml-models --reason "..." [--by alice]
    pull(target, registry_uri, model_name, reason=..., by=...)   # from Python or a component

"Previous" is what users had before the newest change:
- a canary or a shadow is out → it is taken out; the stable version serves 100% (its standing
  untouched: no analysis judged it);
- otherwise → the registry's version before the one live (CHAMPION.json "previous", else the
  newest older version) is deployed at 100%, and the registry's champion becomes that version, so
  the next gates compare with, and the monitor watches, what users get.

Every pull is appended to `<registry>/<model>/incidents.jsonl` (time, who, why, from, to, action).
Pulling again changes nothing while the live version is the one the last pull chose (idempotent:
a second pull never walks back one more version).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import json
import sys

from components.common import io as fio
from components.common.errors import PipelineInputError
from components.deploy.deploy import KSERVE, LOCAL, VERTEX, DeployConfig, build_target, previous_version
from components.deploy.rollout import LiveState, Target
from components.push import registry

INCIDENTS_FILE = "incidents.jsonl"
CANARY_REMOVED, PREVIOUS_DEPLOYED, UNCHANGED = "canary_removed", "previous_deployed", "unchanged"


@dataclasses.dataclass
class Incident:
    at: str
    by: str
    reason: str
    target: str
    action: str          # canary_removed | previous_deployed | unchanged
    live_before: str | None
    live_after: str | None
    removed: str | None  # the canary/shadow taken out, or the version replaced


def incidents_uri(registry_uri: str, model_name: str) -> str:
    return fio.join(registry.model_root(registry_uri, model_name), INCIDENTS_FILE)


def read_incidents(registry_uri: str, model_name: str) -> list[dict]:
    uri = incidents_uri(registry_uri, model_name)
    if not fio.exists(uri):
        return []
    return [json.loads(line) for line in fio.read_text(uri).splitlines() if line.strip()]


def _record(registry_uri: str, model_name: str, incident: Incident) -> None:
    # Rewritten whole (atomically): object stores cannot append, and the file stays small.
    lines = [json.dumps(i, sort_keys=True) for i in read_incidents(registry_uri, model_name)]
    lines.append(json.dumps(dataclasses.asdict(incident), sort_keys=True))
    fio.write_text_atomic(incidents_uri(registry_uri, model_name), "\n".join(lines) + "\n")


def pull(target: Target, registry_uri: str, model_name: str, *, reason: str, by: str = "") -> Incident:
    """Route 100% of traffic to the previous version (see the module docstring)."""
    if not reason.strip():
        raise PipelineInputError("the kill switch needs a reason (it is recorded with the incident)")
    by = by or getpass.getuser()
    live: LiveState = target.live()
    stable = live.stable
    if stable is None:
        raise PipelineInputError(f"nothing is live on {target.name}: nothing to roll back")

    def done(action: str, after: str | None, removed: str | None) -> Incident:
        incident = Incident(at=dt.datetime.now(dt.timezone.utc).isoformat(), by=by, reason=reason,
                            target=target.name, action=action, live_before=stable.version,
                            live_after=after, removed=removed)
        _record(registry_uri, model_name, incident)
        return incident

    if live.canary is not None or live.shadow is not None:
        out = live.canary or live.shadow
        target.rollback()
        if live.shadow is not None:
            target.stop_shadow()
        return done(CANARY_REMOVED, stable.version, out.version)
    last = next((i for i in reversed(read_incidents(registry_uri, model_name))
                 if i["action"] == PREVIOUS_DEPLOYED), None)
    if last is not None and last["live_after"] == stable.version:
        return done(UNCHANGED, stable.version, None)  # already pulled: do not walk back further
    previous = previous_version(registry_uri, model_name, stable)
    if previous is None:
        raise PipelineInputError(f"{stable.version} is the oldest version of {model_name} in {registry_uri}: "
                                 "there is no previous version to route traffic to")
    target.deploy(previous)
    registry.restore_champion(registry_uri, model_name, previous.version, rolled_back=stable.version,
                              reason=f"kill switch by {by}: {reason}")
    return done(PREVIOUS_DEPLOYED, previous.version, stable.version)


def _build_target(args) -> Target:
    if args.target == LOCAL:
        from components.deploy.local import LocalConfig, LocalTarget

        return LocalTarget(LocalConfig(state_dir=args.state_dir, serving_python=args.serving_python))
    if args.target in (KSERVE, VERTEX):
        return build_target(DeployConfig(
            target=args.target, registry_uri=args.registry_uri, model_name=args.model_name,
            kserve_namespace=args.kserve_namespace, kserve_service=args.kserve_service,
            vertex_project=args.vertex_project, vertex_region=args.vertex_region,
            vertex_endpoint=args.vertex_endpoint))
    raise PipelineInputError(f"no kill switch for target {args.target!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m components.deploy.kill_switch", description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=("local", "kserve", "vertex"), required=True)
    p.add_argument("--registry", dest="registry_uri", required=True)
    p.add_argument("--model", dest="model_name", default="model")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", default="")
    p.add_argument("--state-dir", default="out/run/deploy/state", help="local target state")
    p.add_argument("--serving-python", default="")
    for name in ("kserve_namespace", "kserve_service", "vertex_project", "vertex_region", "vertex_endpoint"):
        p.add_argument(f"--{name.replace('_', '-')}", default="")
    args = p.parse_args(argv)
    try:
        target = _build_target(args)
        try:
            incident = pull(target, args.registry_uri, args.model_name, reason=args.reason, by=args.by)
        finally:
            close = getattr(target, "close", None)
            if close is not None:
                close()
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(incident), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
