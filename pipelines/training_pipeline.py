"""The training pipeline: ingest → validate (TFDV) → transform (TFT) → train (Keras) → evaluate
(TFMA gates) → push → deploy (canary on `deploy_target`). One compiled IR YAML serves Kubeflow Pipelines and Vertex AI Pipelines, and
`kfp.local` runs it on one machine: gates live inside components (the pusher checks the blessing,
the deployer deploys only what the push published) because kfp.local cannot run dsl.If.

Every parameter's default comes from PipelineConfig, whose field names are these parameter names.
"""


from kfp import dsl, kubernetes

from components.common import names
from components.common.config import PipelineConfig, threshold_to_parameter
from components.deploy.component import deploy
from components.evaluate.component import evaluate
from components.ingest.component import ingest
from components.push.component import push
from components.train.component import train
from components.transform.component import transform
from components.validate_data.component import validate_data

PIPELINE_NAME = "training-pipeline"
D = PipelineConfig()


def configure_train_resources(
    task: dsl.PipelineTask,
    accelerator_type,
    accelerator_count,
    cpu_request,
    memory_request,
    node_selector,
    tolerations,
) -> dsl.PipelineTask:
    """Accelerator and placement of the train pod. On Kubeflow the type is a resource name
    ("nvidia.com/gpu"); on Vertex AI a machine-spec type ("NVIDIA_L4", "TPU_V5_LITEPOD"), which
    Vertex turns into the worker's machine spec. kfp.local ignores all of these."""
    task.set_accelerator_type(accelerator_type)
    task.set_accelerator_limit(accelerator_count)
    task.set_cpu_request(cpu_request)
    task.set_memory_request(memory_request)
    kubernetes.add_node_selector_json(task, node_selector)
    kubernetes.add_toleration_json(task, tolerations)
    return task


def _define_pipeline(with_train_resources: bool):
    """The pipeline graph, defined once. KFP builds it when the function is decorated, so the
    resource choice has to be made here rather than by a parameter."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="TFDV → tf.Transform → Keras → TFMA fairness gates → pusher, with lineage → canary deploy.",
    )
    def training_pipeline(
        data_uri: str = D.data_uri,
        eval_data_uri: str = D.eval_data_uri,
        label: str = D.label,
        label_threshold: str = threshold_to_parameter(D.label_threshold),
        positive_label: str = D.positive_label,
        key_column: str = D.key_column,
        eval_fraction: float = D.eval_fraction,
        slices: list = D.slices,
        slices_as_features: bool = D.slices_as_features,
        drop_columns: list = D.drop_columns,
        schema_uri: str = D.schema_uri,
        skew_jensen_shannon_threshold: float = D.skew_jensen_shannon_threshold,
        skew_linf_threshold: float = D.skew_linf_threshold,
        drift_jensen_shannon_threshold: float = D.drift_jensen_shannon_threshold,
        drift_linf_threshold: float = D.drift_linf_threshold,
        epochs: int = D.epochs,
        batch_size: int = D.batch_size,
        learning_rate: float = D.learning_rate,
        hidden_units: list = D.hidden_units,
        accelerator_type: str = D.accelerator_type,
        accelerator_count: int = D.accelerator_count,
        tpu_address: str = D.tpu_address,
        multi_worker: bool = D.multi_worker,
        node_selector: dict = D.node_selector,
        tolerations: list = D.tolerations,
        cpu_request: str = D.cpu_request,
        memory_request: str = D.memory_request,
        seed: int = D.seed,
        auc_floor: float = D.auc_floor,
        max_auc_regression: float = D.max_auc_regression,
        fairness_metric: str = D.fairness_metric,
        fairness_max_gap: float = D.fairness_max_gap,
        decision_threshold: float = D.decision_threshold,
        min_slice_examples: int = D.min_slice_examples,
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
        beam_args: list = D.beam_args,
        code_version: str = D.code_version,
    ):
        ingest_task = ingest(
            data_uri=data_uri,
            label=label,
            label_threshold=label_threshold,
            positive_label=positive_label,
            key_column=key_column,
            eval_fraction=eval_fraction,
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
            beam_args=beam_args,
        )

        # Data tests before training: transform waits for validation, which fails on anomalies.
        transform_task = transform(examples=examples, beam_args=beam_args).after(validate_task)

        train_task = train(
            transformed_examples=transform_task.outputs[names.TRANSFORMED_EXAMPLES],
            transform_graph=transform_task.outputs[names.TRANSFORM_GRAPH],
            examples=examples,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            hidden_units=hidden_units,
            accelerator_type=accelerator_type,
            accelerator_count=accelerator_count,
            tpu_address=tpu_address,
            multi_worker=multi_worker,
            seed=seed,
        )
        if with_train_resources:
            configure_train_resources(
                train_task, accelerator_type, accelerator_count, cpu_request, memory_request,
                node_selector, tolerations,
            )

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
            beam_args=beam_args,
        )

        push_task = push(
            model=train_task.outputs[names.MODEL],
            transform_graph=transform_task.outputs[names.TRANSFORM_GRAPH],
            schema=validate_task.outputs[names.SCHEMA],
            statistics=validate_task.outputs[names.STATISTICS],
            blessing=evaluate_task.outputs[names.BLESSING],
            examples=examples,
            registry_uri=registry_uri,
            model_name=model_name,
            code_version=code_version,
        )

        # Held-out rows of the eval split are the canary's observed traffic where the target has
        # no traffic of its own to observe (local; kserve with kserve_url).
        deploy(
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
        )

    return training_pipeline


training_pipeline = _define_pipeline(with_train_resources=True)
"""What `make compile` writes and clusters run."""

# kfp 2.13's local runner fails on a parameter-driven accelerator limit (it calls int() on the
# placeholder) and ignores resource requests anyway; locally the graph is the same without them.
local_training_pipeline = _define_pipeline(with_train_resources=False)
