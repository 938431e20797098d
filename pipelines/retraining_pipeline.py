"""The retraining pipeline: monitor (drift of the served traffic) → the training pipeline as a
sub-DAG, run only when the monitor's decision reaches `retrain_on`.

    monitor ──retrain?──▶ [ ingest → validate → transform → train → evaluate → push → deploy ]

The retrained model is gated like any other (the evaluate step compares it with the current
champion) and reaches users only through the deploy step's canary. A schedule (a KFP recurring run
or a Vertex AI PipelineJobSchedule of this pipeline) with `retrain_on="always"` retrains whatever
the drift; with "act" (the default) it retrains only on drift.

The condition is a `dsl.If`, which kfp.local cannot run; `pipelines.run_retraining` runs the same
two parts locally (the monitor component, then the local training pipeline when it says so).

Training data drifts from the champion's by design here, so the sub-DAG's drift comparators
(validate-data) default to off (1.0, the largest distance TFDV reports); schema and train/eval
skew checks still stop a bad run. The training parameters are the training pipeline's, with the
same names; the monitor's are RetrainConfig's fields.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

from kfp import dsl

from components.common.config import RETRAIN_TRAINING_DEFAULTS, RetrainConfig, VertexSpec
from components.monitor.component import monitor
from pipelines.training_pipeline import training_pipeline, vertex_training_pipeline

PIPELINE_NAME = "retraining-pipeline"
R = RetrainConfig()
TRAINING_PARAMETERS = [
    p.replace(default=RETRAIN_TRAINING_DEFAULTS.get(p.name, p.default))
    for p in inspect.signature(training_pipeline.pipeline_func).parameters.values()
]
MONITOR_PARAMETERS = [
    inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=getattr(R, f.name),
                      annotation=typing.get_type_hints(RetrainConfig)[f.name])
    for f in dataclasses.fields(RetrainConfig)
]


def _retraining_graph(training, arguments: dict) -> None:
    monitor_task = monitor(
        prediction_log_uri=arguments["prediction_log_uri"],
        registry_uri=arguments["registry_uri"],
        model_name=arguments["model_name"],
        since=arguments["monitor_since"],
        until=arguments["monitor_until"],
        warn_threshold=arguments["drift_warn_threshold"],
        act_threshold=arguments["drift_act_threshold"],
        min_rows=arguments["monitor_min_rows"],
        retrain_on=arguments["retrain_on"],
    ).set_caching_options(False)  # it reads the prediction log, which grows between runs
    with dsl.If(monitor_task.outputs["retrain"] == True, name="retrain"):  # noqa: E712 - a KFP condition
        training(**{p.name: arguments[p.name] for p in TRAINING_PARAMETERS})


def _pipeline_function(training):
    """A function whose signature is the monitor's and the training pipeline's parameters: KFP reads
    the parameters from the signature and calls the function with them in that order."""
    parameters = MONITOR_PARAMETERS + TRAINING_PARAMETERS
    order = [p.name for p in parameters]

    def retraining_pipeline(*values):
        _retraining_graph(training, dict(zip(order, values)))

    retraining_pipeline.__signature__ = inspect.Signature(parameters)
    retraining_pipeline.__doc__ = __doc__.split("\n\n")[0]
    return retraining_pipeline


def _define(training):
    return dsl.pipeline(
        name=PIPELINE_NAME,
        description="Drift monitor → (on drift) the training pipeline: gates against the champion, canary deploy.",
    )(_pipeline_function(training))


retraining_pipeline = _define(training_pipeline)


def vertex_retraining_pipeline(spec: VertexSpec = VertexSpec()):
    """The Vertex AI form: the training sub-DAG is the training pipeline's Vertex form."""
    return _define(vertex_training_pipeline(spec))
