"""KFP interface of the drift monitor; the work is in monitor.py, feedback.py and report.py."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Markdown, Metrics, Output

from components.common.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def monitor(
    prediction_log_uri: str,
    registry_uri: str,
    model_name: str,
    drift_metrics: Output[Metrics],
    drift_report: Output[HTML],
    drift_summary: Output[Markdown],
    drift: Output[Artifact],
    model_version: str = "",
    since: str = "",
    until: str = "",
    warn_threshold: float = 0.1,
    act_threshold: float = 0.2,
    min_rows: int = 100,
    prediction_reference_rows: int = 1000,
    labels_uri: str = "",
    slice_columns: str = "",
    decision_threshold: float = 0.0,
    labels_as_of: str = "",
    retrain_on: str = "act",
) -> NamedTuple("MonitorOutputs", decision=str, retrain=bool):
    """Drift of the served traffic (the model server's prediction log) against the pushed version's
    training statistics; with labels_uri, live accuracy/AUC/FNR/FPR per slice too. Returns the
    decision ("ok", "warn" or "act") and whether it triggers retraining (`retrain_on`: "warn",
    "act", or "always" for scheduled runs), for the next task to branch on. A drift decision never
    fails the task; unusable input (no log, no baseline, too few predictions) does.
    decision_threshold 0: the threshold the monitored version was evaluated at (its blessing)."""
    import os
    from collections import namedtuple

    from components.common import names
    from components.common.failures import failure_report
    from components.monitor import report
    from components.monitor.feedback import FeedbackConfig
    from components.monitor.config import MonitorConfig
    from components.monitor.monitor import feedback_for, run_monitor, should_retrain

    os.makedirs(drift.path, exist_ok=True)
    with failure_report(drift.path):
        should_retrain(names.DRIFT_OK, retrain_on)  # a bad retrain_on fails before the log is read
        config = MonitorConfig(log_uri=prediction_log_uri, registry_uri=registry_uri, model_name=model_name,
                               model_version=model_version, since=since, until=until, warn=warn_threshold,
                               act=act_threshold, min_rows=min_rows,
                               prediction_reference_rows=prediction_reference_rows)
        result = run_monitor(config)
        feedback = None
        if labels_uri:
            from components.push import registry

            threshold = decision_threshold or registry.decision_threshold(registry_uri, model_name,
                                                                          result.model_version)
            feedback = feedback_for(result, config, FeedbackConfig(
                labels_uri=labels_uri, threshold=threshold, as_of=labels_as_of,
                slice_columns=tuple(c.strip() for c in slice_columns.split(",") if c.strip())))
        report.write_outputs(result, drift.path, feedback)
        with open(drift_summary.path, "w") as f:
            f.write(report.report_markdown(result, feedback))
        with open(drift_report.path, "w") as f:
            f.write(report.report_html(result, feedback))
        for name, value in report.metrics(result, feedback).items():
            drift_metrics.log_metric(name, value)
    retrain = should_retrain(result.decision, retrain_on)
    drift.metadata.update({"decision": result.decision, "triggered": result.triggered, "retrain": retrain,
                           "model_version": result.model_version, "predictions": result.counts.used})
    return namedtuple("MonitorOutputs", ["decision", "retrain"])(result.decision, retrain)
