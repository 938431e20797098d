"""KFP interface of transform; the work is in transform.py."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components.common.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def transform(
    examples: Input[Dataset],
    beam_args: list,
    transform_graph: Output[Artifact],
    transformed_examples: Output[Dataset],
):
    """tf.Transform: analyse train, transform train/eval (z-score, buckets, vocabularies)."""
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.Transform needs Keras 2

    from components.common import io as fio
    from components.transform.transform import run_transform

    result = run_transform(
        examples_dir=fio.beam_location(examples),
        transform_graph_dir=fio.beam_location(transform_graph),
        transformed_examples_dir=fio.beam_location(transformed_examples),
        beam_args=[str(a) for a in beam_args],
    )
    transform_graph.metadata.update(
        {"transformed_features": result["transformed_features"], "label": result["label"]}
    )
    transformed_examples.metadata.update({"row_counts": result["row_counts"]})
