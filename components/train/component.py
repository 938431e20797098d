"""KFP interface of train; the work is in train.py."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train(
    transformed_examples: Input[Dataset],
    transform_graph: Input[Artifact],
    examples: Input[Dataset],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: list,
    strategy_accelerator_type: str,
    strategy_accelerator_count: str,
    tpu_address: str,
    multi_worker: bool,
    calibration_method: str,
    numeric_buckets: bool,
    l2_regularization: float,
    linear_path: bool,
    class_weighting: bool,
    dropout: float,
    tuning_trials: int,
    seed: int,
    model: Output[Model],
    training_metrics: Output[Metrics],
):
    """Keras classifier on the transformed features → SavedModel (with transform) + ONNX.

    strategy_accelerator_*: the accelerator the distribution strategy is chosen for. Not named
    accelerator_*: KFP copies a parameter-driven resource setting into a task input named after
    the pipeline parameter, which would replace these values with an unresolved placeholder. The
    count is a string, like the pipeline parameter that sets the accelerator limit.
    """
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.Transform / tf-keras need Keras 2

    from components.train.train import parse_count
    from components.train.train import train as run_train

    info = run_train(
        transformed_examples_dir=transformed_examples.path,
        transform_graph_dir=transform_graph.path,
        examples_dir=examples.path,
        model_dir=model.path,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        hidden_units=[int(u) for u in hidden_units],
        accelerator_type=strategy_accelerator_type,
        accelerator_count=parse_count(strategy_accelerator_count),
        tpu_address=tpu_address,
        multi_worker=multi_worker,
        calibration_method=calibration_method,
        numeric_buckets=numeric_buckets,
        l2_regularization=l2_regularization,
        linear_path=linear_path,
        class_weighting=class_weighting,
        dropout=dropout,
        tuning_trials=tuning_trials,
        seed=seed,
    )
    if not info["chief"]:  # a multi-worker run's other workers: the chief writes the model and its outputs
        return
    for name, value in info["final_metrics"].items():
        training_metrics.log_metric(name, value)
    training_metrics.log_metric("onnx_max_abs_diff", info["onnx"]["max_abs_diff"])
    training_metrics.log_metric("epochs_run", info["epochs_run"])
    for name, value in info["calibration"]["after"].items():
        training_metrics.log_metric(f"validation_{name}", value)
    if info["tuning"]:  # the trials are in model_info.json; the UI shows the outcome
        training_metrics.log_metric("tuning_trials_run", len(info["tuning"]["trials"]))
        training_metrics.log_metric("tuning_chosen_val_loss", info["tuning"]["chosen"]["val_loss"])
        training_metrics.log_metric("tuning_default_val_loss", info["tuning"]["default"]["val_loss"])
    model.metadata.update(
        {
            "framework": "tensorflow",
            "strategy": info["strategy"],
            "onnx_inputs": info["onnx"]["inputs"],
            "label": info["label"],
            "label_kind": info["label_kind"],
        }
    )
