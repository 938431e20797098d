"""The training pipeline: ingest → validate (TFDV) → transform (TFT) → train (Keras) → evaluate
(TFMA gates) and infra-validate (the model server, in the serving image) → push → deploy (canary
on `deploy_target`).

One graph, compiled in two forms (pipelines/compile.py):
- Kubeflow (`training_pipeline`): what the KFP backend runs and what kfp.local runs (`make run`,
  with host processes or each task in its image). Pod requests and the train pod's accelerator,
  node selector and tolerations are run-time parameters (kfp-kubernetes platform spec).
- Vertex AI (`vertex_training_pipeline(spec)`): one YAML document, no Kubernetes settings, CPU and
  memory limits from which Vertex picks each step's machine, and the train step as a Vertex custom
  job on the machines of a VertexSpec.

Gates live inside components (the pusher checks the blessing, the deployer deploys only what the
push published) because kfp.local cannot run dsl.If. Tasks that read state outside the pipeline
(the champion in evaluate and push, the live endpoint in deploy) never come from the cache.

Every parameter's default comes from PipelineConfig, whose field names are these parameter names.
Parameters that drive a resource setting are strings: the KFP driver resolves such placeholders
with their string value only (a number would silently set no limit).
"""

from kfp import dsl, kubernetes

from components.common import names
from components.common.config import PipelineConfig, VertexSpec, threshold_to_parameter
from components.deploy.component import deploy
from components.evaluate.component import evaluate
from components.infra_validate.component import infra_validate
from components.ingest.component import ingest
from components.push.component import push
from components.train.component import train
from components.transform.component import transform
from components.validate_data.component import validate_data

PIPELINE_NAME = "training-pipeline"
KUBEFLOW, VERTEX = "kubeflow", "vertex"
D = PipelineConfig()
DEFAULT_ARGUMENTS = D.pipeline_arguments()


def vertex_train_job(spec: VertexSpec):
    """The train component as a Vertex AI custom job on the spec's machines."""
    from google_cloud_pipeline_components.v1.custom_job import create_custom_training_job_from_component

    return create_custom_training_job_from_component(
        train, display_name=f"{PIPELINE_NAME}-train", replica_count=spec.replica_count,
        machine_type=spec.machine_type, accelerator_type=spec.accelerator_type,
        accelerator_count=spec.accelerator_count,
    )


def _define_pipeline(platform: str, spec: VertexSpec | None = None):
    """The pipeline graph, defined once for both platforms; only resource settings and the form
    of the train step differ."""
    kubeflow = platform == KUBEFLOW
    train_op = train if kubeflow else vertex_train_job(spec)

    def vertex_limits(task: dsl.PipelineTask) -> dsl.PipelineTask:
        return task.set_cpu_limit(spec.cpu_limit).set_memory_limit(spec.memory_limit)

    def resources(task: dsl.PipelineTask, cpu, memory) -> dsl.PipelineTask:
        return task.set_cpu_request(cpu).set_memory_request(memory) if kubeflow else vertex_limits(task)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="TFDV → tf.Transform → Keras → TFMA fairness gates → pusher, with lineage → canary deploy.",
    )
    def training_pipeline(
        data_uri: str = D.data_uri,
        eval_data_uri: str = D.eval_data_uri,
        label: str = D.label,
        label_kind: str = D.label_kind,
        label_threshold: str = threshold_to_parameter(D.label_threshold),
        positive_label: str = D.positive_label,
        key_column: str = D.key_column,
        eval_fraction: float = D.eval_fraction,
        validation_fraction: float = D.validation_fraction,
        slices: list = D.slices,
        slices_as_features: bool = D.slices_as_features,
        drop_columns: list = D.drop_columns,
        schema_uri: str = D.schema_uri,
        skew_jensen_shannon_threshold: float = D.skew_jensen_shannon_threshold,
        skew_linf_threshold: float = D.skew_linf_threshold,
        drift_jensen_shannon_threshold: float = D.drift_jensen_shannon_threshold,
        drift_linf_threshold: float = D.drift_linf_threshold,
        data_noise_quantile: float = D.data_noise_quantile,
        epochs: int = D.epochs,
        batch_size: int = D.batch_size,
        learning_rate: float = D.learning_rate,
        hidden_units: list = D.hidden_units,
        calibration_method: str = D.calibration_method,
        numeric_buckets: bool = D.numeric_buckets,
        l2_regularization: float = D.l2_regularization,
        linear_path: bool = D.linear_path,
        class_weighting: bool = D.class_weighting,
        dropout: float = D.dropout,
        tuning_trials: int = D.tuning_trials,
        accelerator_type: str = D.accelerator_type,
        accelerator_count: str = DEFAULT_ARGUMENTS["accelerator_count"],
        tpu_address: str = D.tpu_address,
        multi_worker: bool = D.multi_worker,
        node_selector: dict = D.node_selector,
        tolerations: list = D.tolerations,
        cpu_request: str = D.cpu_request,
        memory_request: str = D.memory_request,
        beam_cpu_request: str = D.beam_cpu_request,
        beam_memory_request: str = D.beam_memory_request,
        seed: int = D.seed,
        auc_floor: float = D.auc_floor,
        max_auc_regression: float = D.max_auc_regression,
        fairness_metric: str = D.fairness_metric,
        fairness_max_gap: float = D.fairness_max_gap,
        decision_threshold: float = D.decision_threshold,
        min_slice_examples: int = D.min_slice_examples,
        fairness_require_assessment: bool = D.fairness_require_assessment,
        calibration_min: float = D.calibration_min,
        calibration_max: float = D.calibration_max,
        max_expected_calibration_error: float = D.max_expected_calibration_error,
        baseline_auc_margin: float = D.baseline_auc_margin,
        r2_floor: float = D.r2_floor,
        max_r2_regression: float = D.max_r2_regression,
        baseline_r2_margin: float = D.baseline_r2_margin,
        gate_rule: str = D.gate_rule,
        confidence_intervals: bool = D.confidence_intervals,
        infra_validation_requests: int = D.infra_validation_requests,
        registry_uri: str = D.registry_uri,
        model_name: str = D.model_name,
        deploy_target: str = D.deploy_target,
        deploy_mode: str = D.deploy_mode,
        canary_steps: list = D.canary_steps,
        max_prediction_psi: float = D.max_prediction_psi,
        max_error_rate: float = D.max_error_rate,
        max_p99_latency_ratio: float = D.max_p99_latency_ratio,
        deploy_state_dir: str = D.deploy_state_dir,
        kserve_namespace: str = D.kserve_namespace,
        kserve_service: str = D.kserve_service,
        kserve_url: str = D.kserve_url,
        vertex_project: str = D.vertex_project,
        vertex_region: str = D.vertex_region,
        vertex_endpoint: str = D.vertex_endpoint,
        prometheus_url: str = D.prometheus_url,
        scrape_interval_s: float = D.scrape_interval_s,
        vertex_cloud_monitoring: bool = D.vertex_cloud_monitoring,
        beam_args: list = D.beam_args,
        code_version: str = D.code_version,
    ):
        ingest_task = ingest(
            data_uri=data_uri,
            label=label,
            label_kind=label_kind,
            label_threshold=label_threshold,
            positive_label=positive_label,
            key_column=key_column,
            eval_fraction=eval_fraction,
            validation_fraction=validation_fraction,
            eval_data_uri=eval_data_uri,
            slices=slices,
            slices_as_features=slices_as_features,
            drop_columns=drop_columns,
        )
        examples = ingest_task.outputs[names.EXAMPLES]

        validate_task = validate_data(
            examples=examples,
            schema_uri=schema_uri,
            registry_uri=registry_uri,
            model_name=model_name,
            skew_jensen_shannon_threshold=skew_jensen_shannon_threshold,
            skew_linf_threshold=skew_linf_threshold,
            drift_jensen_shannon_threshold=drift_jensen_shannon_threshold,
            drift_linf_threshold=drift_linf_threshold,
            data_noise_quantile=data_noise_quantile,
            beam_args=beam_args,
        )
        resources(validate_task, beam_cpu_request, beam_memory_request)

        # Data tests before training: transform waits for validation, which fails on anomalies.
        transform_task = transform(examples=examples, beam_args=beam_args).after(validate_task)
        resources(transform_task, beam_cpu_request, beam_memory_request)

        train_task = train_op(
            transformed_examples=transform_task.outputs[names.TRANSFORMED_EXAMPLES],
            transform_graph=transform_task.outputs[names.TRANSFORM_GRAPH],
            examples=examples,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            hidden_units=hidden_units,
            strategy_accelerator_type=accelerator_type if kubeflow else spec.accelerator_type,
            strategy_accelerator_count=accelerator_count if kubeflow else str(spec.accelerator_count),
            tpu_address=tpu_address,
            multi_worker=multi_worker if kubeflow or spec.replica_count == 1 else True,
            calibration_method=calibration_method,
            numeric_buckets=numeric_buckets,
            l2_regularization=l2_regularization,
            linear_path=linear_path,
            class_weighting=class_weighting,
            dropout=dropout,
            tuning_trials=tuning_trials,
            seed=seed,
        )
        if kubeflow:
            # On Kubeflow the type is a resource name ("nvidia.com/gpu"); the driver needs 2.5+ for
            # parameter-driven node selectors and tolerations. kfp.local ignores all of these.
            train_task.set_accelerator_type(accelerator_type).set_accelerator_limit(accelerator_count)
            resources(train_task, cpu_request, memory_request)
            kubernetes.add_node_selector_json(train_task, node_selector)
            kubernetes.add_toleration_json(train_task, tolerations)

        evaluate_task = evaluate(
            examples=examples,
            model=train_task.outputs[names.MODEL],
            label=label,
            slices=slices,
            registry_uri=registry_uri,
            model_name=model_name,
            auc_floor=auc_floor,
            max_auc_regression=max_auc_regression,
            fairness_metric=fairness_metric,
            fairness_max_gap=fairness_max_gap,
            decision_threshold=decision_threshold,
            min_slice_examples=min_slice_examples,
            fairness_require_assessment=fairness_require_assessment,
            calibration_min=calibration_min,
            calibration_max=calibration_max,
            max_expected_calibration_error=max_expected_calibration_error,
            baseline_auc_margin=baseline_auc_margin,
            r2_floor=r2_floor,
            max_r2_regression=max_r2_regression,
            baseline_r2_margin=baseline_r2_margin,
            gate_rule=gate_rule,
            confidence_intervals=confidence_intervals,
            beam_args=beam_args,
        )
        resources(evaluate_task, beam_cpu_request, beam_memory_request).set_caching_options(False)

        # In the serving image: the candidate must load in the model server and answer held-out rows.
        infra_task = infra_validate(model=train_task.outputs[names.MODEL], examples=examples,
                                    requests=infra_validation_requests)
        if not kubeflow:
            vertex_limits(infra_task)

        push_task = push(
            model=train_task.outputs[names.MODEL],
            transform_graph=transform_task.outputs[names.TRANSFORM_GRAPH],
            schema=validate_task.outputs[names.SCHEMA],
            statistics=validate_task.outputs[names.STATISTICS],
            blessing=evaluate_task.outputs[names.BLESSING],
            infra_blessing=infra_task.outputs[names.INFRA_BLESSING],
            examples=examples,
            registry_uri=registry_uri,
            model_name=model_name,
            code_version=code_version,
        ).set_caching_options(False)

        # Held-out rows of the eval split are the canary's observed traffic where the target has
        # no traffic of its own to observe (local; kserve with kserve_url).
        deploy_task = deploy(
            pushed_model=push_task.outputs[names.PUSHED_MODEL],
            examples=examples,
            deploy_target=deploy_target,
            registry_uri=registry_uri,
            model_name=model_name,
            deploy_mode=deploy_mode,
            canary_steps=canary_steps,
            max_prediction_psi=max_prediction_psi,
            max_error_rate=max_error_rate,
            max_p99_latency_ratio=max_p99_latency_ratio,
            local_state_dir=deploy_state_dir,
            kserve_namespace=kserve_namespace,
            kserve_service=kserve_service,
            kserve_url=kserve_url,
            vertex_project=vertex_project,
            vertex_region=vertex_region,
            vertex_endpoint=vertex_endpoint,
            prometheus_url=prometheus_url,
            scrape_interval_s=scrape_interval_s,
            vertex_cloud_monitoring=vertex_cloud_monitoring,
        )
        deploy_task.set_caching_options(False)

    return training_pipeline


training_pipeline = _define_pipeline(KUBEFLOW)
"""What Kubeflow Pipelines and kfp.local run."""


def vertex_training_pipeline(spec: VertexSpec = VertexSpec()):
    """The Vertex AI form on `spec`'s machines."""
    return _define_pipeline(VERTEX, spec)
