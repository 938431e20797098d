"""Transform: tf.Transform analysis on train, the same transform applied to every split.

Everything is derived from the ingest metadata.json (column types, label, feature columns):

* numeric (int/float) feature `x` → missing values imputed with the train mean of the present
  values, then `x` = z-score and `x_bucket` = decile bucket id (int64 in [0, NUM_BUCKETS)).
* string feature `s` → missing values become "__missing__", then `s` = vocabulary id (int64; the
  vocabulary file is named `s`, ids >= vocabulary size are the one out-of-vocabulary bucket).
* the label is passed through: int64 (a class index) or float32 (a regression target).

Key and slice columns are not model inputs and are not transformed. One Beam pipeline analyses
train and transforms every split; `beam_args` choose the runner (DirectRunner locally,
Dataflow/Flink/Spark at scale).
"""

from __future__ import annotations

import logging
import tempfile
from typing import Callable

from components.common import io as fio
from components.common import names
from components.common.errors import PipelineInputError
from components.ingest.ingest import read_metadata, split_path

log = logging.getLogger(__name__)

NUM_BUCKETS = 10
NUM_OOV_BUCKETS = 1
MISSING_STRING = "__missing__"
BUCKET_SUFFIX = "_bucket"
NUMERIC_TYPES = ("int", "float")
TRANSFORMED_PREFIX = "data"
TRANSFORMED_SUFFIX = ".tfrecord.gz"


def bucket_name(feature: str) -> str:
    return f"{feature}{BUCKET_SUFFIX}"


def feature_types_from_metadata(metadata: dict) -> dict[str, str]:
    """{feature column: int|float|string} for the model inputs named in ingest metadata."""
    types = metadata["column_types"]
    missing = [c for c in metadata["feature_columns"] if c not in types]
    if missing:
        raise PipelineInputError(f"metadata.json: no column type for feature columns {missing}")
    return {c: types[c] for c in metadata["feature_columns"]}


def raw_feature_spec(feature_types: dict[str, str], label: str | None = None, label_type: str = "int") -> dict:
    """Parsing spec of raw examples: every feature VarLen (values may be absent), the label fixed
    (int64 class index, or float32 for a regression label)."""
    import tensorflow as tf

    dtypes = {"int": tf.int64, "float": tf.float32, "string": tf.string}
    spec = {}
    for column, kind in feature_types.items():
        if kind not in dtypes:
            raise PipelineInputError(f"column {column!r} has unknown type {kind!r}")
        spec[column] = tf.io.VarLenFeature(dtypes[kind])
    if label:
        spec[label] = tf.io.FixedLenFeature([], dtypes[label_type])
    return spec


def transformed_feature_names(feature_types: dict[str, str], label: str | None = None) -> list[str]:
    out = []
    for column, kind in feature_types.items():
        out.append(column)
        if kind in NUMERIC_TYPES:
            out.append(bucket_name(column))
    return out + ([label] if label else [])


def _to_dense(x, default_value):
    """A [batch, <=1] SparseTensor as a [batch] dense tensor, absent values = default_value."""
    import tensorflow as tf
    import tensorflow_transform as tft

    dense = tft.sparse_tensor_to_dense_with_shape(x, [None, 1], default_value=default_value)
    return tf.squeeze(dense, axis=1)


def make_preprocessing_fn(feature_types: dict[str, str], label: str, label_type: str = "int") -> Callable[[dict], dict]:
    """The tf.Transform preprocessing_fn for these raw feature types (see the module doc)."""

    def preprocessing_fn(inputs: dict) -> dict:
        import tensorflow as tf
        import tensorflow_transform as tft

        outputs = {}
        for column, kind in feature_types.items():
            x = inputs[column]
            if kind in NUMERIC_TYPES:
                if isinstance(x, tf.SparseTensor):
                    x = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
                    mean = tft.mean(x, name=f"{column}_mean")  # over the present values only
                    dense = _to_dense(x, mean)
                else:
                    dense = tf.cast(x, tf.float32)
                outputs[column] = tft.scale_to_z_score(dense, name=f"{column}_z")
                outputs[bucket_name(column)] = tft.bucketize(
                    dense, num_buckets=NUM_BUCKETS, name=f"{column}_bucketize"
                )
            else:
                dense = _to_dense(x, MISSING_STRING) if isinstance(x, tf.SparseTensor) else x
                outputs[column] = tft.compute_and_apply_vocabulary(
                    dense, num_oov_buckets=NUM_OOV_BUCKETS, vocab_filename=column, name=f"{column}_vocab"
                )
        outputs[label] = tf.cast(inputs[label], tf.float32 if label_type == "float" else tf.int64)
        return outputs

    return preprocessing_fn


def run_transform(
    examples_dir: str,
    transform_graph_dir: str,
    transformed_examples_dir: str,
    beam_args: list[str] | None = None,
    temp_dir: str | None = None,
) -> dict:
    """Analyse train, transform train and eval in one Beam pipeline; write graph and examples.

    Returns {"row_counts": {split: n}, "transformed_features": [...], "label": ..., ...}.
    """
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx_bsl.public import tfxio

    metadata = read_metadata(examples_dir)
    label = metadata["label"]
    feature_types = feature_types_from_metadata(metadata)
    label_type = metadata["column_types"][label]
    spec = raw_feature_spec(feature_types, label, label_type)
    schema = schema_utils.schema_from_feature_spec(spec)
    for split in names.SPLITS:
        if not fio.exists(split_path(examples_dir, split)):
            raise PipelineInputError(f"{examples_dir}: no {split} split ({split_path(examples_dir, split)})")

    options = PipelineOptions(list(beam_args or []))
    # tf.Transform's scratch space: given, else the runner's --temp_location (shared storage that
    # Dataflow workers can reach), else a local temporary directory (DirectRunner).
    temp_dir = temp_dir or options.view_as(GoogleCloudOptions).temp_location or tempfile.mkdtemp(prefix="tft-")
    fio.makedirs(transform_graph_dir)
    preprocessing_fn = make_preprocessing_fn(feature_types, label, label_type)

    pipeline = beam.Pipeline(options=options)
    with tft_beam.Context(temp_dir=temp_dir):
        sources = {}
        for split in names.SPLITS:
            source = tfxio.TFExampleRecord(
                file_pattern=split_path(examples_dir, split),
                schema=schema,
                telemetry_descriptors=["kfp-prod-components", "transform"],
            )
            sources[split] = (
                pipeline | f"Read{split}" >> source.BeamSource(),
                source.TensorAdapterConfig(),
            )
        transformed_train, transform_fn = sources[names.TRAIN] | "AnalyzeAndTransform" >> (
            tft_beam.AnalyzeAndTransformDataset(preprocessing_fn, output_record_batches=True)
        )
        transformed = {names.TRAIN: transformed_train}
        for split in names.SPLITS:
            if split != names.TRAIN:  # the train split's analysis, applied as is
                transformed[split] = (sources[split], transform_fn) | f"Transform{split}" >> (
                    tft_beam.TransformDataset(output_record_batches=True)
                )
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(transform_graph_dir)

        for split, (data, _meta) in transformed.items():
            examples = data | f"Encode{split}" >> beam.FlatMap(_encode_record_batch, split)
            _ = examples | f"Write{split}" >> beam.io.WriteToTFRecord(
                fio.join(transformed_examples_dir, split, TRANSFORMED_PREFIX),
                file_name_suffix=TRANSFORMED_SUFFIX,
                compression_type=CompressionTypes.GZIP,
            )
    outcome = pipeline.run()
    outcome.wait_until_finish()

    tft_output = tft.TFTransformOutput(transform_graph_dir)
    transformed = sorted(tft_output.transformed_feature_spec())
    row_counts = {split: _counter(outcome, split) for split in names.SPLITS}
    for split, n in row_counts.items():
        if n == 0:
            raise PipelineInputError(f"{examples_dir}: the {split} split has no examples")
    result = {
        "row_counts": row_counts,
        "transformed_features": transformed,
        "raw_features": feature_types,
        "label": label,
        "vocabulary_sizes": {
            c: tft_output.vocabulary_size_by_name(c) for c, k in feature_types.items() if k == "string"
        },
    }
    log.info("transform: %s", result)
    return result


COUNTER_NAMESPACE = "transform"


def _encode_record_batch(batch_and_passthrough, split):
    """Serialized tf.Examples from a transformed (RecordBatch, passthrough) pair; counts rows."""
    import apache_beam as beam
    from tfx_bsl.coders import example_coder

    record_batch, _passthrough = batch_and_passthrough
    beam.metrics.Metrics.counter(COUNTER_NAMESPACE, f"rows_{split}").inc(record_batch.num_rows)
    return example_coder.RecordBatchToExamples(record_batch)


def _counter(outcome, split: str) -> int:
    from apache_beam.metrics.metric import MetricsFilter

    query = outcome.metrics().query(
        MetricsFilter().with_namespace(COUNTER_NAMESPACE).with_name(f"rows_{split}")
    )
    counters = query["counters"]
    committed = [c.committed for c in counters if c.committed is not None]
    values = committed or [c.attempted for c in counters]
    return int(sum(values))


def transformed_split_pattern(transformed_examples_dir: str, split: str) -> str:
    return fio.join(transformed_examples_dir, split, f"{TRANSFORMED_PREFIX}*{TRANSFORMED_SUFFIX}")
