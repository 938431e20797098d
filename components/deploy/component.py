"""KFP interface of deploy; the work is in deploy.py (and gate.py for the push gate)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.common.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def deploy(
    pushed_model: Input[Model],
    examples: Input[Dataset],
    deploy_target: str,
    registry_uri: str,
    model_name: str,
    deploy_report: Output[Markdown],
    deploy_html: Output[HTML],
    deploy_metrics: Output[Metrics],
    deployment: Output[Artifact],
    deploy_mode: str = "canary",
    canary_steps: list = [10, 50, 100],
    requests_per_step: int = 400,
    min_requests: int = 30,
    max_error_rate: float = 0.01,
    max_error_rate_increase: float = 0.005,
    max_p99_latency_ratio: float = 1.5,
    p99_latency_slack_ms: float = 25.0,
    max_prediction_psi: float = 0.2,
    max_auc_drop: float = 0.05,
    rows_per_request: int = 8,
    concurrency: int = 4,
    local_state_dir: str = "",
    kserve_namespace: str = "",
    kserve_service: str = "",
    kserve_url: str = "",
    vertex_project: str = "",
    vertex_region: str = "",
    vertex_endpoint: str = "",
    prometheus_url: str = "",
    scrape_interval_s: float = 15.0,
    vertex_cloud_monitoring: bool = False,
    fail_on_rollback: bool = False,
):
    """Roll the pushed model out on `deploy_target` (local | kserve | vertex | none) by canary steps
    with automatic analysis and rollback; held-out rows of `examples` (eval split) are the traffic.
    A model the push did not publish (not blessed) is not deployed; that is recorded, not a failure.
    A rollback is recorded too (outcome, metrics, reports); with fail_on_rollback the task then
    fails, at the price of KFP not keeping this task's output artifacts. An aborted rollout (a
    configuration or infrastructure error; the stable version serves 100% again and the champion
    is left alone) always fails the task with its cause, once the reports are written."""
    import os

    from components.common.failures import failure_report
    from components.deploy import analysis
    from components.deploy.deploy import DeployConfig, run_deploy, skipped, write_outputs
    from components.deploy.gate import push_gate

    os.makedirs(deployment.path, exist_ok=True)
    with failure_report(deployment.path):
        deploy_now, candidate_version, reason = push_gate(pushed_model.path, dict(pushed_model.metadata))
        config = DeployConfig(
            target=deploy_target if deploy_now else "none", model_name=model_name, registry_uri=registry_uri,
            candidate_version=candidate_version, output_dir=deployment.path, mode=deploy_mode,
            steps=tuple(canary_steps),
            requests_per_step=requests_per_step, min_requests=min_requests, max_error_rate=max_error_rate,
            max_error_rate_increase=max_error_rate_increase, max_p99_latency_ratio=max_p99_latency_ratio,
            p99_latency_slack_ms=p99_latency_slack_ms, max_prediction_psi=max_prediction_psi,
            max_auc_drop=max_auc_drop,
            data=examples.path, rows_per_request=rows_per_request, concurrency=concurrency,
            state_dir=local_state_dir or os.path.join(deployment.path, "state"),
            kserve_namespace=kserve_namespace, kserve_service=kserve_service, kserve_url=kserve_url,
            vertex_project=vertex_project, vertex_region=vertex_region, vertex_endpoint=vertex_endpoint,
            prometheus_url=prometheus_url, scrape_interval_s=scrape_interval_s,
            vertex_cloud_monitoring=vertex_cloud_monitoring,
        )
        if deploy_now:
            result = run_deploy(config)
        else:
            result = skipped(config, reason, candidate_version)
            write_outputs(result, deployment.path)
        with open(deploy_report.path, "w") as f:
            f.write(analysis.report_markdown(result))
        with open(deploy_html.path, "w") as f:
            f.write(analysis.report_html(result))
        for name, value in analysis.metrics(result).items():
            deploy_metrics.log_metric(name, value)
    deployment.metadata.update({"outcome": result.outcome, "reason": result.reason, "target": result.target,
                                "candidate_version": result.candidate_version,
                                "stable_version": result.stable_version or "", "succeeded": result.succeeded})
    from components.deploy.rollout import ABORTED

    if result.outcome == ABORTED or (fail_on_rollback and not result.succeeded
                                     and result.outcome != analysis.NOT_DEPLOYED):
        raise RuntimeError(f"deploy {result.outcome}: {result.reason}")
