"""Train: a Keras (Keras 2 / tf-keras) model over tf.Transform outputs for the label's kind (a
binary or multi-class classifier, or a regressor: heads.py), exported with the transform graph as
one SavedModel plus an ONNX file checked for parity.

Model: z-scored numeric features (with numeric_buckets, also one-hot encodings of their decile
bucket ids) concatenated with one-hot encodings (embeddings for more than ONE_HOT_MAX values) of the
vocabulary ids of string features
→ Dense(relu) hidden layers (L2-penalised, optionally with dropout) → a logit, plus (linear_path,
wide & deep) a linear logit over the same features → the kind's output: a calibrated
"probability" (binary), calibrated class "probabilities" (multiclass, temperature scaling) or a
"value" (regression).
With tuning_trials, KerasTuner chooses hidden units, learning rate and dropout on the validation
split first (tuning.py).
Class imbalance: the calibrator handles the prior; optionally (class_weighting) Keras class weights
n / (K * n_class) from the train label counts, whose prior shift is undone before calibration.
Early stopping watches the validation loss; a calibrator (calibration.py) fitted on validation then
replaces the sigmoid in the exported model, so served scores are calibrated probabilities. The
eval split is never seen here except by the ONNX parity check.

Export contract (`<model_dir>/saved_model`), OUTPUT = the kind's output name (label_kinds.py):
  serving_default     examples: tf.string [None] serialized RAW tf.Example (label ignored)
                      → {OUTPUT: float32 [None, 1] ("probability", "value") or [None, K] ("probabilities")}
  serving_raw         one [None] tensor per raw feature column (float32 / int64 / string)
                      → the same
                      Missing values (RAW_MISSING): NaN for floats and INT_MISSING (int64 min)
                      for ints become absent features, so the transform imputes the train mean
                      exactly as for a tf.Example without the feature; a missing string is passed
                      as "__missing__", the transform's own fill value (same result as absent).
  transform_features  examples: tf.string [None] → the transformed features (label excluded)
`<model_dir>/model.onnx`: serving_raw converted with tf2onnx (or, if tf2onnx cannot convert the
raw path, the Keras model over transformed features; model_info.json says which and why), checked
against the SavedModel on the whole eval split. Only a conversion that is not possible falls
back (OnnxConversionError); an ONNX model that answers differently from the SavedModel beyond
ONNX_TOLERANCE fails training (OnnxParityError), and then no model_info.json is written.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from typing import Any, Sequence

from components.common import io as fio
from components.common import label_kinds, names
from components.common.errors import PipelineInputError
from components.common.failures import failure_report
from components.train import calibration, heads, tuning
from components.ingest.ingest import read_metadata, split_path
from components.transform.transform import (
    MISSING_STRING,
    NUM_BUCKETS,
    NUM_OOV_BUCKETS,
    NUMERIC_TYPES,
    bucket_name,
    feature_types_from_metadata,
    raw_feature_spec,
    transformed_split_pattern,
)

log = logging.getLogger(__name__)

PROBABILITY = "probability"  # the binary output (label_kinds.OUTPUT_NAMES has every kind's)
LOGIT = heads.LOGIT
SERVING_DEFAULT = "serving_default"
SERVING_RAW = "serving_raw"
TRANSFORM_FEATURES = "transform_features"
EXAMPLES_INPUT = "examples"
INT_MISSING = -(2**63)
STRING_MISSING = MISSING_STRING  # "__missing__", the transform's fill value
RAW_MISSING = {"float": "NaN", "int": str(INT_MISSING), "string": MISSING_STRING}
ONNX_OPSET = 15
ONNX_TOLERANCE = 1e-4
EARLY_STOPPING_PATIENCE = 10

KIND_TPU = "tpu"
KIND_MULTI_WORKER = "multi_worker"
KIND_MIRRORED = "mirrored"
KIND_DEFAULT = "default"


# --------------------------------------------------------------------------- strategy


def parse_count(text: str | int) -> int:
    """An accelerator count from its pipeline parameter (a string, see the train component)."""
    try:
        count = int(str(text).strip() or "0")
    except ValueError as exc:
        raise PipelineInputError(f"accelerator_count must be a whole number, got {text!r}") from exc
    if count < 0:
        raise PipelineInputError(f"accelerator_count must be >= 0, got {count}")
    return count


def _is_tpu(accelerator_type: str, tpu_address: str) -> bool:
    return bool(tpu_address) or accelerator_type.upper().startswith("TPU")


def gpu_requested(accelerator_type: str, accelerator_count: int, tpu_address: str = "") -> bool:
    return not _is_tpu(accelerator_type, tpu_address) and (bool(accelerator_type) or accelerator_count > 0)


def strategy_kind(
    accelerator_type: str,
    accelerator_count: int,
    tpu_address: str = "",
    multi_worker: bool = False,
    visible_gpus: int | None = None,
    tf_config: str | None = None,
) -> str:
    """Which distribution strategy the request maps to; raises RuntimeError if it cannot be met.

    `visible_gpus` / `tf_config` default to what this process sees (GPU devices, $TF_CONFIG).
    """
    if accelerator_count < 0:
        raise PipelineInputError(f"accelerator_count must be >= 0, got {accelerator_count}")
    if _is_tpu(accelerator_type, tpu_address):
        if multi_worker:
            raise PipelineInputError("multi_worker cannot be combined with a TPU (TPUStrategy spans the pod)")
        return KIND_TPU
    if visible_gpus is None:
        import tensorflow as tf

        visible_gpus = len(tf.config.list_physical_devices("GPU"))
    wants_gpu = gpu_requested(accelerator_type, accelerator_count, tpu_address)
    if wants_gpu and visible_gpus == 0:
        raise RuntimeError(
            f"a GPU was requested (accelerator_type={accelerator_type!r}, "
            f"accelerator_count={accelerator_count}) but TensorFlow sees no GPU "
            "(visible: CPU only); check the node's GPU resources, the NVIDIA driver and that the "
            "train image has CUDA-enabled TensorFlow"
        )
    if multi_worker:
        tf_config = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
        if not tf_config:
            raise RuntimeError(
                "multi_worker=True needs TF_CONFIG (set by the Kubeflow Training Operator or "
                "Vertex AI for each worker); it is not set"
            )
        try:
            cluster = json.loads(tf_config).get("cluster", {})
        except ValueError as exc:
            raise RuntimeError(f"TF_CONFIG is not valid JSON: {exc}") from exc
        if not cluster:
            raise RuntimeError("TF_CONFIG has no 'cluster' entry")
        return KIND_MULTI_WORKER
    if wants_gpu:
        return KIND_MIRRORED
    return KIND_DEFAULT


def choose_strategy(
    accelerator_type: str,
    accelerator_count: int,
    tpu_address: str = "",
    multi_worker: bool = False,
):
    """The tf.distribute.Strategy for the requested accelerator (see strategy_kind)."""
    kind = strategy_kind(accelerator_type, accelerator_count, tpu_address, multi_worker)
    return _make_strategy(kind, accelerator_count, tpu_address)


def _make_strategy(kind: str, accelerator_count: int = 0, tpu_address: str = ""):
    import tensorflow as tf

    if kind == KIND_TPU:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if kind == KIND_MULTI_WORKER:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == KIND_MIRRORED:
        gpus = [f"/gpu:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]
        if accelerator_count and accelerator_count < len(gpus):
            gpus = gpus[:accelerator_count]
        elif accelerator_count > len(gpus):
            log.warning("%d GPUs requested, %d visible; using those", accelerator_count, len(gpus))
        return tf.distribute.MirroredStrategy(devices=gpus)
    return tf.distribute.get_strategy()


def is_chief(kind: str, tf_config: str | None = None) -> bool:
    """Whether this process writes the model: always, but in a multi-worker run only the chief
    (task "chief", or worker 0 of a cluster without one, as Vertex and the Training Operator set it)."""
    if kind != KIND_MULTI_WORKER:
        return True
    config = json.loads(os.environ.get("TF_CONFIG", "{}") if tf_config is None else tf_config)
    task, cluster = config.get("task") or {}, config.get("cluster") or {}
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def _strategy_devices(strategy) -> list[str]:
    try:
        devices = list(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError, NotImplementedError):  # the default strategy
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        devices = [gpus[0].name] if gpus else [d.name for d in tf.config.list_logical_devices("CPU")[:1]]
    return [str(d) for d in devices]


# --------------------------------------------------------------------------- data


def make_dataset(pattern: str, feature_spec: dict, label: str, batch_size: int,
                 shuffle: bool, seed: int, drop_remainder: bool = False):
    """(features, label) batches from GZIP TFRecords of transformed tf.Examples."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise PipelineInputError(f"no transformed examples match {pattern}")
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def _parse(serialized):
        parsed = tf.io.parse_example(serialized, feature_spec)
        target = parsed.pop(label)
        return parsed, target

    options = tf.data.Options()
    options.deterministic = True
    # Multi-worker: each split is one file, too few to shard by file; each worker takes every
    # n-th batch instead (the default, FILE-based, fails with "only has 1 file(s)").
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.map(_parse).with_options(options).prefetch(tf.data.AUTOTUNE)


def _count_labels(dataset) -> dict[str, int]:
    import numpy as np

    counts: dict[str, int] = {}
    for _, y in dataset:
        values, n = np.unique(y.numpy(), return_counts=True)
        for v, c in zip(values, n):
            counts[str(int(v))] = counts.get(str(int(v)), 0) + int(c)
    return counts


# --------------------------------------------------------------------------- model


ONE_HOT_MAX = 16  # ids with at most this many values are one-hot encoded, more get an embedding


def embedding_dim(size: int) -> int:
    return max(2, min(8, int(math.ceil(math.sqrt(size))) + 1))


def build_model(feature_types: dict[str, str], vocab_sizes: dict[str, int],
                hidden_units: Sequence[int], learning_rate: float, seed: int,
                numeric_buckets: bool = False, l2_regularization: float = 0.0,
                linear_path: bool = False, dropout: float = 0.0, head: heads.Head = heads.Head("binary")):
    """Functional Keras 2 model over the transformed features (one [None] input per feature);
    numeric_buckets adds each numeric feature's decile one-hot beside its z-score, l2_regularization
    an L2 penalty on the hidden kernels, dropout a Dropout after each hidden layer, linear_path a
    linear logit over the features (wide & deep); `head` the kind's output, loss and metric."""
    import tensorflow as tf
    import tf_keras as keras

    inputs, parts = {}, []
    for column, kind in feature_types.items():
        if kind in NUMERIC_TYPES:
            z = keras.Input(shape=(), dtype=tf.float32, name=column)
            inputs[column] = z
            parts.append(keras.layers.Reshape((1,), name=f"{column}_z")(z))
            if not numeric_buckets:
                continue
            bucket = bucket_name(column)
            ids = keras.Input(shape=(), dtype=tf.int64, name=bucket)
            inputs[bucket] = ids
            size = NUM_BUCKETS
        else:
            ids = keras.Input(shape=(), dtype=tf.int64, name=column)
            inputs[column] = ids
            size = vocab_sizes[column] + NUM_OOV_BUCKETS
            bucket = column
        if size <= ONE_HOT_MAX:  # one-hot: a frozen identity "embedding" (an ONNX Gather)
            embed = keras.layers.Embedding(
                size, size, name=f"{bucket}_one_hot", trainable=False,
                embeddings_initializer=keras.initializers.Identity(),
            )
        else:
            embed = keras.layers.Embedding(
                size, embedding_dim(size), name=f"{bucket}_embedding",
                embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed),
            )
        parts.append(embed(ids))
    features = keras.layers.Concatenate(name="features")(parts)
    x = features
    penalty = keras.regularizers.L2(l2_regularization) if l2_regularization else None
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(
            int(units), activation="relu", name=f"hidden_{i}", kernel_regularizer=penalty,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i + 1),
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + i + 1, name=f"dropout_{i}")(x)
    deep = keras.layers.Dense(
        head.units, name="deep_logit" if linear_path else LOGIT,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1000),
    )(x)
    if linear_path:  # starts as the deep logit alone: the linear weights start at zero
        linear = keras.layers.Dense(head.units, name="linear_logit", kernel_initializer="zeros")(features)
        logit = keras.layers.Add(name=LOGIT)([deep, linear])
    else:
        logit = deep
    model = keras.Model(inputs=inputs, outputs=head.output(logit), name=head.kind)
    head.compile(model, learning_rate)
    return model


def _progress_callback():
    import tf_keras as keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            text = " ".join(f"{k}={v:.4f}" for k, v in sorted(logs.items()))
            print(f"epoch {epoch + 1}/{self.params.get('epochs')}: {text}", flush=True)

    return Progress()


# --------------------------------------------------------------------------- export


def _model_inputs(model, transformed: dict) -> dict:
    return {name: transformed[name] for name in model.input_names}


def _raw_to_sparse(x, kind: str):
    """A dense [None] raw column → the [None, 1] SparseTensor a tf.Example parse would give.

    NaN floats and INT_MISSING ints become absent values (imputed by the transform). Strings are
    all present: a missing string is passed as MISSING_STRING, the transform's own fill value
    (ONNX has no string equality below opset 19 in tf2onnx, so "" cannot be detected portably).
    """
    import tensorflow as tf

    n = tf.shape(x, out_type=tf.int64)[0]
    if kind == "string":
        rows = tf.expand_dims(tf.range(n), 1)
        values = x
    else:
        if kind == "float":
            present = tf.logical_not(tf.math.is_nan(x))
        else:
            present = tf.not_equal(x, tf.constant(INT_MISSING, tf.int64))
        rows = tf.where(present)  # [k, 1] int64
        values = tf.gather_nd(x, rows)
    indices = tf.concat([rows, tf.zeros_like(rows)], axis=1)
    return tf.SparseTensor(indices, values, tf.stack([n, tf.constant(1, tf.int64)]))


def raw_input_dtypes(feature_types: dict[str, str]) -> dict:
    import tensorflow as tf

    return {c: {"int": tf.int64, "float": tf.float32, "string": tf.string}[k] for c, k in feature_types.items()}


def export_saved_model(model, tft_output, feature_types: dict[str, str], export_dir: str,
                       multi_worker: bool = False, output_name: str = PROBABILITY) -> None:
    """SavedModel with the transform graph and the three signatures of the module doc."""
    import tensorflow as tf

    model.tft_layer = tft_output.transform_features_layer()
    raw_spec = raw_feature_spec(feature_types)  # features only: a label in the input is ignored

    def _transform(parsed: dict) -> dict:
        return model.tft_layer(parsed)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples):
        transformed = _transform(tf.io.parse_example(examples, raw_spec))
        return {output_name: model(_model_inputs(model, transformed), training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def transform_features(examples):
        transformed = _transform(tf.io.parse_example(examples, raw_spec))
        return {k: v for k, v in transformed.items() if k in set(model.input_names)}

    @tf.function
    def serve_raw(**features):
        sparse = {c: _raw_to_sparse(features[c], k) for c, k in feature_types.items()}
        transformed = _transform(sparse)
        return {output_name: model(_model_inputs(model, transformed), training=False)}

    raw_specs = {c: tf.TensorSpec([None], d, name=c) for c, d in raw_input_dtypes(feature_types).items()}
    signatures = {
        SERVING_DEFAULT: serve_examples.get_concrete_function(),
        SERVING_RAW: serve_raw.get_concrete_function(**raw_specs),
        TRANSFORM_FEATURES: transform_features.get_concrete_function(),
    }
    # Every worker of a multi-worker run saves (the save reads variables collectively); there the
    # host's job is "worker", not "localhost".
    options = None if multi_worker else tf.saved_model.SaveOptions(experimental_io_device="/job:localhost")
    model.save(export_dir, save_format="tf", signatures=signatures, options=options, include_optimizer=False)


def _string_hash_one_bucket_handler(ctx, node, name, args):
    """tf2onnx handler: StringToHashBucketFast with num_buckets=1 is always 0.

    tf.Transform's vocabulary lookup with one OOV bucket hashes unknown strings into bucket
    `hash % 1 == 0`; ONNX has no string hash op, but with one bucket none is needed.
    """
    from onnx import TensorProto, helper

    num_buckets = node.get_attr_value("num_buckets")
    if num_buckets != 1:
        raise NotImplementedError(f"StringToHashBucketFast with {num_buckets} buckets has no ONNX equivalent")
    outputs, shapes, dtypes = node.output, [ctx.get_shape(node.output[0])], [ctx.get_dtype(node.output[0])]
    shape = ctx.make_node("Shape", [node.input[0]], op_name_scope=name).output[0]
    ctx.remove_node(node.name)
    ctx.make_node(
        "ConstantOfShape", [shape], outputs=outputs, shapes=shapes, dtypes=dtypes, name=name,
        attr={"value": helper.make_tensor("value", TensorProto.INT64, [1], [0])},
    )


def _searchsorted_handler(ctx, node, name, args):
    """tf2onnx handler for UpperBound/LowerBound (tf.searchsorted, used by tft.bucketize).

    out[b, n] = #{m : s[b, m] <= v[b, n]} (UpperBound) or #{m : s[b, m] < v[b, n]} (LowerBound),
    built from Unsqueeze, a broadcast comparison and ReduceSum.
    """
    from onnx import TensorProto
    from tf2onnx.graph_builder import GraphBuilder

    compare = "LessOrEqual" if node.type == "UpperBound" else "Less"
    builder = GraphBuilder(ctx)
    sorted_inputs, values = node.input[0], node.input[1]
    out_dtype = ctx.get_dtype(node.output[0])
    outputs, shapes = node.output, [ctx.get_shape(node.output[0])]
    bounds = builder.make_unsqueeze({"data": sorted_inputs, "axes": [1]}, op_name_scope=name)  # [B,1,M]
    points = builder.make_unsqueeze({"data": values, "axes": [2]}, op_name_scope=name)  # [B,N,1]
    hits = ctx.make_node(compare, [bounds, points], op_name_scope=name).output[0]  # [B,N,M]
    counts = ctx.make_node("Cast", [hits], attr={"to": TensorProto.INT64}, op_name_scope=name).output[0]
    ctx.remove_node(node.name)
    total = builder.make_reduce_sum(
        {"data": counts, "axes": [2], "keepdims": 0, "noop_with_empty_axes": 1}, op_name_scope=name
    )
    ctx.make_node("Cast", [total], attr={"to": out_dtype}, outputs=outputs, shapes=shapes,
                  dtypes=[out_dtype], name=name)


ONNX_CUSTOM_HANDLERS = {
    "StringToHashBucketFast": (_string_hash_one_bucket_handler, []),
    "UpperBound": (_searchsorted_handler, []),
    "LowerBound": (_searchsorted_handler, []),
}


class OnnxConversionError(RuntimeError):
    """tf2onnx cannot convert a graph to ONNX: it raised, or left ops it has no ONNX form for.

    The only ONNX failure the raw-feature export falls back on (to the model over transformed
    features); `onnx_inputs` names the form ("raw" or "transformed"), `reason` the cause.
    """

    def __init__(self, onnx_inputs: str, reason: str):
        super().__init__(f"tf2onnx cannot convert the {onnx_inputs}-feature ONNX form: {reason}")
        self.onnx_inputs = onnx_inputs
        self.reason = reason


class OnnxParityError(RuntimeError):
    """The converted ONNX model answers differently from the SavedModel beyond the tolerance.

    Fails training (no fallback): the figures are attributes and in the message.
    """

    def __init__(self, onnx_inputs: str, max_abs_diff: float, tolerance: float, rows_checked: int,
                 detail: str = ""):
        super().__init__(
            f"ONNX parity check failed ({onnx_inputs}-feature ONNX form): max |SavedModel - ONNX| = "
            f"{max_abs_diff:.3g} > tolerance {tolerance:g} over {rows_checked} eval rows"
            + (f"; {detail}" if detail else "")
        )
        self.onnx_inputs = onnx_inputs
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.rows_checked = rows_checked


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def _checked_write_onnx(proto, onnx_path: str, onnx_inputs: str) -> None:
    """Write a tf2onnx result, refusing a graph with ops tf2onnx could not convert.

    With continue_on_error=False tf2onnx still only logs "Unsupported ops" for TF ops it has no
    handler for and leaves them in the graph; the ONNX checker names them.
    """
    import onnx
    import tensorflow as tf

    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise OnnxConversionError(onnx_inputs, _reason(exc)) from exc
    with tf.io.gfile.GFile(onnx_path, "wb") as f:
        f.write(proto.SerializeToString())


def export_onnx_raw(saved_model_dir: str, onnx_path: str, opset: int = ONNX_OPSET):
    """tf2onnx conversion of the serving_raw signature (transform + model) of the SavedModel.

    Raises OnnxConversionError when tf2onnx cannot convert it (nothing is written then).
    """
    import tf2onnx
    from tf2onnx import tf_loader

    try:
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            saved_model_dir, None, None, tag="serve", signatures=[SERVING_RAW],
            return_initialized_tables=True, return_tensors_to_rename=True,
        )
        # tf2onnx has no public API for a SavedModel signature with lookup tables; this is what
        # `python -m tf2onnx.convert --saved-model DIR --signature_def serving_raw` runs.
        proto, _ = tf2onnx.convert._convert_common(  # pylint: disable=protected-access
            graph_def, name="serving_raw", continue_on_error=False, opset=opset,
            custom_op_handlers=dict(ONNX_CUSTOM_HANDLERS),
            input_names=inputs, output_names=outputs, tensors_to_rename=renames,
            initialized_tables=tables,
        )
    except Exception as exc:  # tf2onnx's converter raises plain ValueError/NotImplementedError/...
        raise OnnxConversionError("raw", _reason(exc)) from exc
    _checked_write_onnx(proto, onnx_path, "raw")
    return proto


def export_onnx_transformed(model, onnx_path: str, opset: int = ONNX_OPSET):
    """tf2onnx conversion of the Keras model alone (inputs: transformed features).

    Raises OnnxConversionError when tf2onnx cannot convert it (nothing is written then).
    """
    import tensorflow as tf
    import tf2onnx

    spec = tuple(
        {name: tf.TensorSpec([None], t.dtype, name=name) for name, t in zip(model.input_names, model.inputs)}
        for _ in [0]
    )
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as exc:  # as in export_onnx_raw: only the tf2onnx call is inside
        raise OnnxConversionError("transformed", _reason(exc)) from exc
    _checked_write_onnx(proto, onnx_path, "transformed")
    return proto


def _read_raw_columns(examples_dir: str, feature_types: dict[str, str]) -> tuple[list[bytes], dict]:
    """Serialized eval examples and their columns as serving_raw inputs (missing → RAW_MISSING)."""
    import numpy as np
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(split_path(examples_dir, names.EVAL), compression_type="GZIP")]
    columns: dict[str, list] = {c: [] for c in feature_types}
    for record in records:
        example = tf.train.Example.FromString(record)
        for column, kind in feature_types.items():
            feature = example.features.feature.get(column)
            if kind == "float":
                values = feature.float_list.value if feature is not None else []
                columns[column].append(values[0] if values else np.nan)
            elif kind == "int":
                values = feature.int64_list.value if feature is not None else []
                columns[column].append(values[0] if values else INT_MISSING)
            else:
                values = feature.bytes_list.value if feature is not None else []
                columns[column].append(values[0].decode() if values else STRING_MISSING)
    dtypes = {"float": np.float32, "int": np.int64, "string": object}
    arrays = {c: np.asarray(v, dtype=dtypes[feature_types[c]]) for c, v in columns.items()}
    return records, arrays


def check_onnx_parity(onnx_path: str, saved_model_dir: str, examples_dir: str,
                      feature_types: dict[str, str], onnx_inputs: str,
                      tolerance: float = ONNX_TOLERANCE, output_name: str = PROBABILITY) -> dict:
    """Max |p_savedmodel - p_onnx| over the whole eval split (every output of every row);
    OnnxParityError if above tolerance."""
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    records, raw = _read_raw_columns(examples_dir, feature_types)
    if not records:
        raise RuntimeError("ONNX parity check: the eval split has no rows to compare")
    expected = loaded.signatures[SERVING_DEFAULT](examples=tf.constant(records))[output_name].numpy()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    if onnx_inputs == "raw":
        feeds = raw
    else:
        transformed = loaded.signatures[TRANSFORM_FEATURES](examples=tf.constant(records))
        feeds = {k: v.numpy() for k, v in transformed.items()}
    input_names = {i.name for i in session.get_inputs()}
    missing = input_names - set(feeds)
    if missing:
        raise RuntimeError(f"ONNX inputs {sorted(missing)} have no data")
    output_name = session.get_outputs()[0].name
    got = np.asarray(session.run([output_name], {k: feeds[k] for k in input_names})[0], np.float64).reshape(-1)
    want = expected.astype(np.float64).reshape(-1)
    rows = len(records)
    if got.shape != want.shape:  # no broadcasting: every row must have its own answer
        raise OnnxParityError(onnx_inputs, float("nan"), tolerance, rows,
                              f"ONNX returned {got.size} values, the SavedModel {want.size}")
    errors = np.abs(got - want)
    diff = float(np.max(errors))
    if not np.isfinite(diff) or diff > tolerance:
        worst = int(np.argmax(np.where(np.isnan(errors), np.inf, errors)))
        raise OnnxParityError(onnx_inputs, diff, tolerance, rows,
                              f"worst eval row {worst}: SavedModel {want[worst]:.6g}, ONNX {got[worst]:.6g}")
    return {"max_abs_diff": diff, "tolerance": tolerance, "rows_checked": rows}


# --------------------------------------------------------------------------- train


def _predict(model, dataset):
    """(model outputs [N, units], labels [N]) over a dataset as float64 arrays."""
    import numpy as np

    outputs, labels = [], []
    for features, target in dataset:
        out = model(features, training=False).numpy()
        outputs.append(out.reshape(len(out), -1))
        labels.append(target.numpy().ravel())
    return np.concatenate(outputs).astype(np.float64), np.concatenate(labels).astype(np.float64)


def _calibration_report(calibrator, method: str, rows: int, before: dict, after: dict,
                        decision_threshold: float | None = None) -> dict:
    return {**calibrator.to_dict(), "requested": method, "fitted_on": names.VALIDATION, "rows": rows,
            "before": before, "after": after, "decision_threshold": decision_threshold}


def _fit_calibrator(model, validation_ds, method: str, weights: dict[int, float], head: heads.Head):
    """The calibrator fitted on validation, and its figures before and after (calibration.py)."""
    import numpy as np
    import tf_keras as keras

    logit_model = keras.Model(model.inputs, model.get_layer(LOGIT).output)
    logits, labels = _predict(logit_model, validation_ds)
    rows = int(len(labels))
    if head.kind == label_kinds.REGRESSION:
        values = head.label_std * logits[:, 0] + head.label_mean
        linear = calibration.fit_linear(values, labels, method)
        return linear, _calibration_report(linear, method, rows, calibration.regression_summary(values, labels),
                                           calibration.regression_summary(linear.apply(values), labels))
    if head.kind == label_kinds.MULTICLASS:  # the predicted class is the most probable one: no threshold
        softmax = calibration.fit_softmax(logits, labels, method, calibration.prior_shifts(weights, head.units))
        return softmax, _calibration_report(softmax, method, rows,
                                            calibration.multiclass_summary(calibration.softmax(logits), labels),
                                            calibration.multiclass_summary(softmax.apply(logits), labels))
    logits = logits[:, 0]
    calibrator = calibration.fit(logits, labels, method, calibration.prior_shift(weights))
    calibrated = calibrator.apply(logits)
    return calibrator, _calibration_report(calibrator, method, rows,
                                           calibration.summary(1.0 / (1.0 + np.exp(-logits)), labels),
                                           calibration.summary(calibrated, labels),
                                           calibration.youden_threshold(calibrated, labels))


def calibrated_model(model, calibrator, head: heads.Head):
    """The trained model with its output layer replaced by the calibrator, named by the kind."""
    import tf_keras as keras

    logit = model.get_layer(LOGIT).output
    if head.kind == label_kinds.REGRESSION:
        out = calibration.linear_layer(calibrator, logit, head.label_std, head.label_mean, head.output_name)
    elif head.kind == label_kinds.MULTICLASS:
        out = calibration.softmax_layers(calibrator, logit, head.output_name)
    else:
        out = calibration.calibration_layers(calibrator, logit, head.output_name)
    calibrated = keras.Model(model.inputs, out, name=f"calibrated_{head.kind}")
    head.compile(calibrated)
    return calibrated


def train(
    transformed_examples_dir: str,
    transform_graph_dir: str,
    examples_dir: str,
    model_dir: str,
    *,
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 0.01,
    hidden_units: Sequence[int] = (32, 16),
    accelerator_type: str = "",
    accelerator_count: int = 0,
    tpu_address: str = "",
    multi_worker: bool = False,
    calibration_method: str = calibration.METHOD_AUTO,
    numeric_buckets: bool = False,
    l2_regularization: float = 0.0,
    linear_path: bool = False,
    class_weighting: bool = False,
    dropout: float = 0.0,
    tuning_trials: int = 0,
    seed: int = 42,
) -> dict:
    """Train, export SavedModel + ONNX, check parity; returns (and writes) model_info.json."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras as keras

    if epochs < 1 or batch_size < 1:
        raise PipelineInputError("epochs and batch_size must be >= 1")
    if not hidden_units:
        raise PipelineInputError("hidden_units must name at least one layer")
    if not 0.0 <= dropout < 1.0:
        raise PipelineInputError(f"dropout must be in [0, 1), got {dropout}")
    tuning.validate_trials(tuning_trials, multi_worker)
    metadata = read_metadata(examples_dir)
    label = metadata["label"]
    head = heads.head_for(metadata)
    feature_types = feature_types_from_metadata(metadata)
    tft_output = tft.TFTransformOutput(transform_graph_dir)
    spec = dict(tft_output.transformed_feature_spec())
    expected = {c for c in feature_types} | {bucket_name(c) for c, k in feature_types.items() if k in NUMERIC_TYPES}
    absent = sorted(expected - set(spec))
    if absent or label not in spec:
        raise PipelineInputError(
            f"the transform graph lacks features {absent + ([label] if label not in spec else [])}; "
            "was it made from these examples?"
        )
    vocab_sizes = {c: tft_output.vocabulary_size_by_name(c) for c, k in feature_types.items() if k not in NUMERIC_TYPES}

    kind = strategy_kind(accelerator_type, accelerator_count, tpu_address, multi_worker)
    strategy = _make_strategy(kind, accelerator_count, tpu_address)
    replicas = strategy.num_replicas_in_sync
    global_batch = batch_size * replicas
    drop_remainder = kind == KIND_TPU  # TPUs need static batch shapes

    def build(setting: tuning.Setting):
        keras.utils.set_random_seed(seed)  # every fit, a trial's included, starts from the same seed
        with strategy.scope():
            return build_model(feature_types, vocab_sizes, setting.hidden_units, setting.learning_rate, seed,
                               numeric_buckets, l2_regularization, linear_path, setting.dropout, head)

    default = tuning.Setting.of_values(hidden_units, learning_rate, dropout)
    model = build(default)
    used = {name: spec[name] for name in [*model.input_names, label]}  # parse only what the model takes
    datasets = {
        split: make_dataset(transformed_split_pattern(transformed_examples_dir, split), used, label, global_batch,
                            shuffle=split == names.TRAIN, seed=seed, drop_remainder=drop_remainder)
        for split in names.SPLITS
    }
    train_ds, validation_ds = datasets[names.TRAIN], datasets[names.VALIDATION]
    weights = None
    if class_weighting:
        label_counts = metadata.get("label_counts", {}).get(names.TRAIN) or _count_labels(train_ds)
        weights = heads.class_weights(head, label_counts)  # also refuses a train split missing a class
    print(f"label={label} ({head.kind}) strategy={kind} replicas={replicas} "
          f"devices={_strategy_devices(strategy)} class_weights={weights}", flush=True)

    def fit(model, progress: bool) -> tuning.Fitted:
        # Early stopping (and calibration, tuning) watch the validation split; eval is left to the
        # gates. The validation loss (a proper scoring rule) judges probabilities, not only ranking.
        callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=EARLY_STOPPING_PATIENCE,
                                                   restore_best_weights=True)]
        history = model.fit(train_ds, validation_data=validation_ds, epochs=epochs, class_weight=weights,
                            callbacks=callbacks + ([_progress_callback()] if progress else []), verbose=0)
        return tuning.Fitted(model, {k: [float(v) for v in vs] for k, vs in history.history.items()})

    started = time.monotonic()
    tuning_record = None
    if tuning_trials:
        unfitted = [model]  # the default's model, built above, is the default trial's

        def fit_trial(setting: tuning.Setting) -> tuning.Fitted:
            return fit(unfitted.pop() if unfitted and setting == default else build(setting), progress=False)

        tuned = tuning.tune(fit_trial, default, tuning_trials, seed)
        fitted, chosen, tuning_record = tuned.best, tuned.best_setting, tuned.record
        hidden_units, learning_rate, dropout = list(chosen.hidden_units), chosen.learning_rate, chosen.dropout
    else:
        fitted = fit(model, progress=True)
    model, history = fitted.model, fitted.history
    train_seconds = time.monotonic() - started
    final = {}
    for split, ds in datasets.items():
        loss, figure = model.evaluate(ds, verbose=0)
        final[f"{split}_loss"], final[f"{split}_{head.metric_name}"] = float(loss), float(figure)
    print(f"final: {final}", flush=True)

    calibrator, calibration_report = _fit_calibrator(model, validation_ds, calibration_method, weights, head)
    with strategy.scope():
        model = calibrated_model(model, calibrator, head)
    print(f"calibration: {calibration_report}", flush=True)

    chief = is_chief(kind)
    if not chief:  # saves too, to a scratch directory of its own, and leaves the model to the chief
        scratch = tempfile.mkdtemp(prefix="train-worker-")
        try:
            export_saved_model(model, tft_output, feature_types, os.path.join(scratch, names.SAVED_MODEL_DIR),
                               multi_worker=True, output_name=head.output_name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print("not the chief worker: the chief writes the model", flush=True)
        return {"chief": False, "strategy": kind, "replicas": replicas, "final_metrics": final}
    saved_model_dir = fio.join(model_dir, names.SAVED_MODEL_DIR)
    onnx_path = fio.join(model_dir, names.ONNX_FILE)
    info_path = fio.join(model_dir, names.MODEL_INFO_FILE)
    fio.makedirs(model_dir)
    if tf.io.gfile.exists(info_path):  # an earlier run's: it must not outlive a failure of this one
        tf.io.gfile.remove(info_path)
    # FAILURE.json (e.g. an OnnxParityError with its figures) for run_summary.json, then re-raised
    with failure_report(model_dir):
        export_saved_model(model, tft_output, feature_types, saved_model_dir, multi_worker=kind == KIND_MULTI_WORKER,
                           output_name=head.output_name)
        onnx_info = _export_and_check_onnx(model, saved_model_dir, onnx_path, examples_dir, feature_types,
                                           head.output_name)

    info: dict[str, Any] = {
        "chief": True,
        "strategy": kind,
        "devices": _strategy_devices(strategy),
        "replicas": replicas,
        "global_batch_size": global_batch,
        "epochs_requested": epochs,
        "epochs_run": len(history.get("loss", [])),
        "history": history,
        "final_metrics": final,
        "train_seconds": round(train_seconds, 3),
        "class_weights": {str(k): v for k, v in weights.items()} if weights else None,
        "calibration": calibration_report,
        # evaluate's default decision threshold (decision_threshold 0): chosen on validation
        "decision_threshold": (calibration_report or {}).get("decision_threshold"),
        "parameters": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                       "hidden_units": [int(u) for u in hidden_units], "seed": seed,
                       "accelerator_type": accelerator_type, "accelerator_count": accelerator_count,
                       "tpu_address": tpu_address, "multi_worker": multi_worker,
                       "calibration_method": calibration_method, "numeric_buckets": numeric_buckets,
                       "l2_regularization": l2_regularization, "linear_path": linear_path,
                       "class_weighting": class_weighting, "dropout": dropout, "tuning_trials": tuning_trials},
        "tuning": tuning_record,
        "onnx": onnx_info,
        "raw_feature_types": feature_types,
        "raw_missing_values": {c: RAW_MISSING[k] for c, k in feature_types.items()},
        "label": label,
        "label_kind": head.kind,
        "classes": list(head.classes),
        "output": head.output_name,
        "signatures": {SERVING_DEFAULT: {"inputs": [EXAMPLES_INPUT], "outputs": [head.output_name]},
                       SERVING_RAW: {"inputs": list(feature_types), "outputs": [head.output_name]},
                       TRANSFORM_FEATURES: {"inputs": [EXAMPLES_INPUT], "outputs": sorted(model.input_names)}},
        "tensorflow_version": tf.__version__,
    }
    fio.write_json_atomic(info_path, info)  # last, once every check has passed
    return info


def _export_and_check_onnx(model, saved_model_dir: str, onnx_path: str, examples_dir: str,
                           feature_types: dict[str, str], output_name: str = PROBABILITY) -> dict:
    """Raw-feature ONNX if tf2onnx can convert the transform, else the model over transformed inputs.

    Only OnnxConversionError of the raw form falls back (its reason goes into the result as
    raw_export_error). OnnxParityError of either form, or a conversion error of the fallback,
    propagates: training fails, and the ONNX file that failed parity is removed.
    """
    import tensorflow as tf

    inputs, reason = "raw", ""
    try:
        export_onnx_raw(saved_model_dir, onnx_path)
    except OnnxConversionError as exc:
        reason = exc.reason
        log.warning("tf2onnx cannot convert the raw-feature ONNX form (%s); exporting the model over "
                    "transformed features", reason)
        if tf.io.gfile.exists(onnx_path):
            tf.io.gfile.remove(onnx_path)
        inputs = "transformed"
        export_onnx_transformed(model, onnx_path)
    try:
        parity = check_onnx_parity(onnx_path, saved_model_dir, examples_dir, feature_types, inputs,
                                   tolerance=ONNX_TOLERANCE, output_name=output_name)
    except OnnxParityError:
        if tf.io.gfile.exists(onnx_path):
            tf.io.gfile.remove(onnx_path)
        raise
    info = {"inputs": inputs, "opset": ONNX_OPSET, "output": output_name, **parity}
    if reason:
        info["raw_export_error"] = reason
    print(f"onnx: {info}", flush=True)
    return info
