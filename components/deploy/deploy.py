"""Deploy: take the registry's champion live on a target by canary (or shadow) rollout.

    config = DeployConfig(target="local", registry_uri="out/run/registry", data="tests/fixtures/hmda_sample.csv",
                          output_dir="out/run/deploy")
    result = run_deploy(config)          # RolloutResult; result.json, report.md, report.html written

The candidate is the registry's CHAMPION (or `candidate_version`). What it is compared with is
what the target serves now. On the local target with nothing live, the registry's previous
version (CHAMPION.json "previous", else the newest older version directory) is deployed first as
the stable version, so a run shows a canary of the last pushed model against the one before it;
the result's `notes` say so. Traffic for the local target is replayed held-out rows (replay.py).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

from components.common import io as fio
from components.common import names
from components.common.errors import PipelineInputError
from components.common.rollout_policy import SCRAPE_INTERVAL_S
from components.deploy import analysis, local_prometheus
from components.deploy.prometheus import PrometheusError, PrometheusProvider, ServedMetricsObserver
from components.deploy.replay import ReplayObserver, load_replay
from components.deploy.rollout import (
    MODES,
    ROLLED_BACK,
    ModelRef,
    Observer,
    RolloutPolicy,
    RolloutResult,
    Target,
    rollout,
)
from components.deploy.traffic import ReplayConfig
from components.push import registry

log = logging.getLogger(__name__)

LOCAL, KSERVE, VERTEX, NONE = names.DEPLOY_LOCAL, names.DEPLOY_KSERVE, names.DEPLOY_VERTEX, names.DEPLOY_NONE
TARGETS = names.DEPLOY_TARGETS
RESULT_FILE = names.DEPLOY_RESULT_FILE
REPORT_MD_FILE = names.REPORT_MD_FILE
REPORT_HTML_FILE = names.REPORT_HTML_FILE


@dataclasses.dataclass(frozen=True)
class DeployConfig:
    target: str
    """local | kserve | vertex | none (skip, recorded)."""
    model_name: str = "model"
    registry_uri: str = ""
    candidate_version: str = ""
    """A registry version to deploy; empty = the registry's CHAMPION."""
    output_dir: str = ""
    """Where result.json, report.md and report.html go (empty: not written)."""

    # Rollout policy: RolloutPolicy's own defaults (components/common/rollout_policy.py).
    mode: str = RolloutPolicy.mode
    steps: tuple[int, ...] = RolloutPolicy.steps
    requests_per_step: int = RolloutPolicy.requests_per_step
    min_requests: int = RolloutPolicy.min_requests
    max_error_rate: float = RolloutPolicy.max_error_rate
    max_error_rate_increase: float = RolloutPolicy.max_error_rate_increase
    max_p99_latency_ratio: float = RolloutPolicy.max_p99_latency_ratio
    p99_latency_slack_ms: float = RolloutPolicy.p99_latency_slack_ms
    max_prediction_psi: float = RolloutPolicy.max_prediction_psi
    max_auc_drop: float = RolloutPolicy.max_auc_drop

    # Replayed traffic.
    data: str = ""
    """Held-out rows: a CSV file, a TFRecord of tf.Examples or an ingest examples dir (eval split)."""
    rows_per_request: int = 8
    concurrency: int = 4
    max_rows: int = 0
    seed: int = 0

    # Served traffic from a metrics provider, judged beside the replay (components/deploy/prometheus.py).
    prometheus_url: str = ""
    """A Prometheus query API that scrapes the revisions (queue-proxy on KServe, the splitter
    locally); empty = the steps are judged on the replayed requests only."""
    scrape_interval_s: float = SCRAPE_INTERVAL_S
    local_prometheus: bool = True
    """local, without prometheus_url: run a Prometheus on loopback scraping the splitter when the
    `prometheus` binary is on PATH (`make prometheus`), so the steps judge served traffic locally
    with the cluster's PromQL."""

    # local target.
    state_dir: str = ""
    serving_python: str = ""
    backend: str = "savedmodel"
    deploy_previous: bool = True
    """local, nothing live: deploy the registry's previous version as stable first."""
    ready_timeout_s: float = 180.0
    log_sink_output: str = ""
    """local: where a log sink writes the served traffic from the splitter's payload CloudEvents
    (as KServe's logger and manifests/base/log-sink.yaml do on a cluster); "" = no sink."""

    # kserve target (components/deploy/kserve.py).
    kserve_namespace: str = ""
    kserve_service: str = ""
    """InferenceService name; empty = model_name."""
    kserve_url: str = ""
    """Where replayed traffic goes (the InferenceService's ingress URL); empty = no replay."""

    # vertex target (components/deploy/vertex.py).
    vertex_project: str = ""
    vertex_region: str = ""
    vertex_endpoint: str = ""
    vertex_cloud_monitoring: bool = False
    """Also judge what each DeployedModel served from Cloud Monitoring (components/deploy/
    cloud_monitoring.py; needs roles/monitoring.viewer, and scrape_interval_s >= 240: Vertex's
    metrics are sampled each minute and readable up to 3 minutes later)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(int(s) for s in self.steps))
        problems = []
        if self.target not in TARGETS:
            problems.append(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.target != NONE:
            if not self.model_name:
                problems.append("model_name is required")
            if not self.registry_uri:
                problems.append("registry_uri is required (the registry the push step writes)")
            if self.mode not in MODES:
                problems.append(f"mode must be one of {MODES}, got {self.mode!r}")
            if self.prometheus_url and not self.scrape_interval_s > 0:
                problems.append(f"scrape_interval_s must be > 0, got {self.scrape_interval_s}")
            if self.rows_per_request < 1 or self.concurrency < 1 or self.max_rows < 0:
                problems.append("rows_per_request and concurrency must be >= 1, max_rows >= 0")
        if self.target == LOCAL:
            if not self.state_dir:
                problems.append("the local target needs state_dir (where its live state is kept)")
            if not self.data:
                problems.append("the local target needs data: held-out rows to replay as traffic")
            if self.backend not in ("savedmodel", "onnx"):
                problems.append(f"backend must be savedmodel or onnx, got {self.backend!r}")
        if self.target == KSERVE and not self.kserve_namespace:
            problems.append("the kserve target needs kserve_namespace")
        if self.target == VERTEX and not (self.vertex_project and self.vertex_region):
            problems.append("the vertex target needs vertex_project and vertex_region")
        if problems:
            raise PipelineInputError("invalid deploy config: " + "; ".join(problems))
        if self.target != NONE:
            try:
                self.policy()
            except ValueError as exc:
                raise PipelineInputError(str(exc)) from None

    def policy(self) -> RolloutPolicy:
        return RolloutPolicy(mode=self.mode, steps=self.steps, requests_per_step=self.requests_per_step,
                             min_requests=self.min_requests, max_error_rate=self.max_error_rate,
                             max_error_rate_increase=self.max_error_rate_increase,
                             max_p99_latency_ratio=self.max_p99_latency_ratio,
                             p99_latency_slack_ms=self.p99_latency_slack_ms,
                             max_prediction_psi=self.max_prediction_psi, max_auc_drop=self.max_auc_drop)

    def replay(self) -> ReplayConfig:
        return ReplayConfig(rows_per_request=self.rows_per_request, concurrency=self.concurrency,
                            seed=self.seed, max_rows=self.max_rows)


# ------------------------------------------------------------------------------ registry


def version_ref(registry_uri: str, model_name: str, version: str) -> ModelRef:
    uri = fio.join(registry.versions_root(registry_uri, model_name), version)
    if not fio.exists(uri):
        raise PipelineInputError(f"version {version} of {model_name} is not in the registry ({uri} is missing)")
    if not registry.is_complete(uri):
        raise PipelineInputError(f"version {version} of {model_name} is incomplete: its push did not finish "
                                 f"(no {names.VERSION_COMPLETE_FILE} in {uri})")
    return ModelRef(model_name=model_name, version=version, uri=uri)


def resolve_candidate(config: DeployConfig) -> ModelRef:
    if config.candidate_version:
        return version_ref(config.registry_uri, config.model_name, config.candidate_version)
    champion = registry.read_champion(config.registry_uri, config.model_name)
    if champion is None:
        raise PipelineInputError(f"no champion for {config.model_name} in {config.registry_uri}: nothing "
                                 "was pushed yet (run the pipeline first)")
    return ModelRef(model_name=config.model_name, version=champion.version, uri=champion.uri)


def previous_version(registry_uri: str, model_name: str, candidate: ModelRef) -> ModelRef | None:
    """The version pushed before `candidate`: CHAMPION.json "previous" when it names it, else the
    newest complete version older than the candidate (versions are v<UTC timestamp>-<hash>)."""
    pointer = registry.champion_pointer_uri(registry_uri, model_name)
    if fio.exists(pointer):
        record = fio.read_json(pointer)
        previous = record.get("previous")
        if record.get("version") == candidate.version and previous and previous != candidate.version:
            try:
                return version_ref(registry_uri, model_name, previous)
            except PipelineInputError:
                log.warning("CHAMPION.json names previous version %s, which is missing", previous)
    older = [v for v in registry.list_complete_versions(registry_uri, model_name) if v < candidate.version]
    return version_ref(registry_uri, model_name, older[-1]) if older else None


# ------------------------------------------------------------------------------ targets


def build_target(config: DeployConfig) -> Target:
    if config.target == LOCAL:
        from components.deploy.local import LocalConfig, LocalTarget

        return LocalTarget(LocalConfig(state_dir=config.state_dir, serving_python=config.serving_python,
                                       backend=config.backend, seed=config.seed,
                                       ready_timeout_s=config.ready_timeout_s,
                                       log_sink_output=config.log_sink_output,
                                       prometheus=config.local_prometheus and not config.prometheus_url
                                       and local_prometheus.binary() is not None))
    # Imported lazily: their client libraries (kubernetes, google-cloud-aiplatform) are heavy.
    if config.target == KSERVE:
        from components.deploy.kserve import KServeTarget

        return KServeTarget.from_deploy_config(config)
    if config.target == VERTEX:
        from components.deploy.vertex import VertexTarget

        return VertexTarget.from_deploy_config(config)
    raise PipelineInputError(f"no target to build for {config.target!r}")


def build_observer(config: DeployConfig, target: Target, candidate: ModelRef, stable: Callable[[], str | None],
                   progress: Callable[[str], None], monitoring_client: Any = None) -> Observer:
    """Replayed rows through the target (traffic.py), and a metrics provider for what each
    revision served, users' traffic included: Prometheus with `prometheus_url` (on the local
    target without one, its own loopback Prometheus); Cloud Monitoring on Vertex with
    `vertex_cloud_monitoring` (`monitoring_client`: tests pass an autospec'd one)."""
    observer = _replay_observer(config, target, candidate, stable, progress)
    if config.target == VERTEX:
        return _cloud_monitoring(config, target, observer, monitoring_client) if config.vertex_cloud_monitoring \
            else observer
    url, interval = config.prometheus_url, config.scrape_interval_s
    if not url and config.target == LOCAL:
        interval = local_prometheus.SCRAPE_INTERVAL_S
        try:
            url = getattr(target, "prometheus_url", "")
        except PrometheusError as exc:  # an optional helper here: the replay still judges each step
            progress(f"the local Prometheus failed ({exc}): the steps are judged on the replayed requests only")
        else:
            if not url:
                progress("no local Prometheus (`make prometheus` installs it; local_prometheus): "
                         "the steps are judged on the replayed requests only")
    if not url:
        return observer
    progress(f"each step also judges the revisions' served traffic from {url}")
    # KServe names revisions <isvc>-predictor-NNNNN; the local splitter labels them by version
    revision_of = getattr(target, "revision_of", None) or (lambda version: version)
    return ServedMetricsObserver(observer, PrometheusProvider(url), interval, revision_of=revision_of)


def _cloud_monitoring(config: DeployConfig, target: Target, replay: Observer, client: Any) -> Observer:
    from components.deploy.cloud_monitoring import CloudMonitoringProvider

    endpoint = target.endpoint()
    if endpoint is None:
        raise PipelineInputError("the Vertex endpoint does not exist: no served traffic to measure")
    endpoint_id = endpoint.resource_name.rsplit("/", 1)[-1]  # projects/P/locations/L/endpoints/ID
    provider = CloudMonitoringProvider(target.config.project, endpoint_id, client=client)
    return ServedMetricsObserver(replay, provider, config.scrape_interval_s, revision_of=target.deployed_model_id)


def _replay_observer(config: DeployConfig, target: Target, candidate: ModelRef, stable: Callable[[], str | None],
                     progress: Callable[[str], None]) -> Observer:
    """KServe and Vertex: attribution by the version each answer names (mirrored to the shadow in
    shadow mode); local: exact, from the splitter's records; a URL: by the V1 model_version."""
    rows, labels = load_replay(config.data, candidate.uri, config.max_rows, config.target)
    progress(f"replaying {len(rows)} {'labelled ' if labels else ''}rows from {config.data}: "
             f"{config.requests_per_step} requests per step, {config.rows_per_request} rows each, "
             f"concurrency {config.concurrency}")
    if config.target == KSERVE:
        from components.deploy.kserve import KServeReplayObserver

        return KServeReplayObserver(target, candidate, rows, config.replay(), config.requests_per_step,
                                    progress=progress, labels=labels)
    if config.target == VERTEX:
        from components.deploy.vertex import VertexObserver

        return VertexObserver(target, candidate, rows, config.replay(), config.requests_per_step,
                              progress=progress, labels=labels)
    versions = lambda: (stable(), candidate.version)  # noqa: E731
    if hasattr(target, "records"):
        return ReplayObserver(target, config.model_name, rows, config.replay(), config.requests_per_step,
                              versions=versions, progress=progress, labels=labels)
    url = config.kserve_url or getattr(target, "url", "")
    if not url:
        raise PipelineInputError(f"no URL to send replayed traffic to on the {config.target} target")
    return ReplayObserver(None, config.model_name, rows, config.replay(), config.requests_per_step, url=url,
                          versions=versions, progress=progress, labels=labels)


# ------------------------------------------------------------------------------ run


def write_outputs(result: RolloutResult, output_dir: str) -> None:
    """result.json, report.md, report.html; each file whole or absent (atomic writes), JSON last."""
    if not output_dir:
        return
    fio.write_text_atomic(fio.join(output_dir, REPORT_MD_FILE), analysis.report_markdown(result))
    fio.write_text_atomic(fio.join(output_dir, REPORT_HTML_FILE), analysis.report_html(result))
    fio.write_json_atomic(fio.join(output_dir, RESULT_FILE), result.to_dict())


def skipped(config: DeployConfig, reason: str, candidate_version: str = "") -> RolloutResult:
    return RolloutResult(target=config.target, model_name=config.model_name, mode=config.mode,
                         candidate_version=candidate_version, stable_version=None,
                         outcome=analysis.NOT_DEPLOYED, reason=reason)


def restore_champion_after_rollback(config: DeployConfig, result: RolloutResult,
                                    progress: Callable[[str], None]) -> None:
    """A rolled-back candidate that the registry names champion gives the title back to the
    version still serving: the champion is what users get."""
    if result.outcome != ROLLED_BACK or not result.stable_version:
        return
    champion = registry.read_champion(config.registry_uri, config.model_name)
    if champion is None or champion.version != result.candidate_version:
        return
    registry.restore_champion(config.registry_uri, config.model_name, result.stable_version,
                              rolled_back=result.candidate_version, reason=result.reason)
    note = (f"the registry's champion is {result.stable_version} again (still serving); "
            f"{result.candidate_version} stays in the registry, rolled back")
    progress(note)
    result.notes.append(note)


def _lazy(build: Callable[[], Observer]) -> Observer:
    """Build the observer on its first use: an unchanged re-run reads no data."""
    built: list[Observer] = []

    def observe(percent: int):
        if not built:
            built.append(build())
        return built[0](percent)

    return observe


def run_deploy(config: DeployConfig, progress: Callable[[str], None] = print, target: Target | None = None,
               observer: Observer | None = None) -> RolloutResult:
    """Resolve the candidate, prepare the target, roll out, write the outputs. A given `target` is
    used as is (and not closed); one built here is closed on the way out, whatever happens."""
    if config.target == NONE:
        result = skipped(config, "not deployed: deploy target is none")
        progress(result.reason)
        write_outputs(result, config.output_dir)
        return result
    candidate = resolve_candidate(config)
    progress(f"candidate: {config.model_name} {candidate.version} ({candidate.uri})")
    owned = target is None
    target = build_target(config) if owned else target
    try:
        notes = []
        live = target.live()
        stable = live.stable
        if live.stable is None and config.target == LOCAL and config.deploy_previous:
            previous = previous_version(config.registry_uri, config.model_name, candidate)
            if previous is not None:
                progress(f"nothing live on {target.name}: deploying the previous version {previous.version} "
                         "as stable first")
                target.deploy(previous)
                stable = previous
                notes.append(f"nothing was live: deployed the registry's previous version {previous.version} "
                             f"as stable first, to canary {candidate.version} against it")
            else:
                notes.append("nothing was live and the registry has no older version: first deploy")
        if observer is None:
            observer = _lazy(lambda: build_observer(config, target, candidate,
                                                    lambda: (target.live().stable or candidate).version, progress))
        # Both versions' label kinds decide what their predictions are compared on.
        kinds = analysis.prediction_kind(candidate.uri, stable.uri if stable else None)
        result = rollout(target, candidate, config.policy(), observer,
                         functools.partial(analysis.analyse, prediction=kinds), progress)
        result.notes[:0] = notes
        restore_champion_after_rollback(config, result, progress)
    finally:
        if owned:
            close = getattr(target, "close", None)
            if close is not None:
                close()
    write_outputs(result, config.output_dir)
    return result
