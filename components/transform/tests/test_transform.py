"""tf.Transform on the real HMDA sample: one Beam run (train analysed, train+eval transformed)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from components.common import names
from components.common.errors import PipelineInputError
from components.ingest.ingest import read_metadata
from components.transform import transform as T
from components.transform.tests import shared


@pytest.fixture(scope="module")
def run(transformed):
    return transformed


@pytest.fixture(scope="module")
def tft_output(run):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(run["transform_graph_dir"])


def _transformed_rows(run, split):
    files = sorted(glob.glob(T.transformed_split_pattern(run["transformed_examples_dir"], split)))
    assert files, f"no transformed {split} files"
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _column(rows, name):
    out = []
    for e in rows:
        f = e.features.feature[name]
        out.append(f.float_list.value[0] if f.float_list.value else f.int64_list.value[0])
    return np.asarray(out)


def test_outputs_layout_and_row_counts(run, tft_output):
    meta = read_metadata(run["examples_dir"])
    assert run["result"]["row_counts"] == meta["row_counts"]
    for split in names.SPLITS:
        files = glob.glob(os.path.join(run["transformed_examples_dir"], split, "data-*.tfrecord.gz"))
        assert files, split
        assert len(_transformed_rows(run, split)) == meta["row_counts"][split]
    feature_types = T.feature_types_from_metadata(meta)
    expected = set(T.transformed_feature_names(feature_types, meta["label"]))
    assert set(tft_output.transformed_feature_spec()) == expected
    # Only model inputs are transformed: no key, no slice column.
    assert meta["key_column"] not in expected and not set(meta["slices"]) & expected
    assert tft_output.transformed_feature_spec()[meta["label"]].dtype == tf.int64


def test_numeric_features_are_z_scored_and_bucketized_on_train(run):
    meta = read_metadata(run["examples_dir"])
    rows = _transformed_rows(run, names.TRAIN)
    numeric = [c for c, k in T.feature_types_from_metadata(meta).items() if k in T.NUMERIC_TYPES]
    assert numeric
    for column in numeric:
        z = _column(rows, column)
        assert abs(z.mean()) < 1e-3, column
        assert 0.95 < z.std() < 1.05, column
        buckets = _column(rows, T.bucket_name(column))
        assert buckets.min() >= 0 and buckets.max() < T.NUM_BUCKETS, column
        assert len(set(buckets)) > 1, column
    labels = _column(rows, meta["label"])
    counts = {str(v): int(n) for v, n in zip(*np.unique(labels, return_counts=True))}
    assert counts == meta["label_counts"][names.TRAIN]


def test_missing_values_are_imputed(run, tft_output):
    meta = read_metadata(run["examples_dir"])
    feature_types = T.feature_types_from_metadata(meta)
    raw_train = shared.read_examples(run["examples_dir"], names.TRAIN)
    present = [e.features.feature[shared.GAP_FLOAT].float_list.value[0]
               for e in raw_train if shared.GAP_FLOAT in e.features.feature]
    assert 0 < len(present) < len(raw_train)  # the fixture does have gaps
    train_mean = float(np.mean(present))

    # Every transformed example has every feature (absent raw values were filled).
    for row in _transformed_rows(run, names.TRAIN)[: 2 * shared.GAP_EVERY]:
        assert set(row.features.feature) == set(tft_output.transformed_feature_spec())

    template = raw_train[1]  # has every feature
    at_mean, absent = tf.train.Example(), tf.train.Example()
    at_mean.CopyFrom(template)
    absent.CopyFrom(template)
    at_mean.features.feature[shared.GAP_FLOAT].float_list.value[:] = [train_mean]
    at_mean.features.feature[shared.GAP_STRING].bytes_list.value[:] = [T.MISSING_STRING.encode()]
    for name in (shared.GAP_FLOAT, shared.GAP_STRING, shared.GAP_INT):
        del absent.features.feature[name]
    batch = tf.constant([at_mean.SerializeToString(), absent.SerializeToString()])
    parsed = tf.io.parse_example(batch, T.raw_feature_spec(feature_types))
    out = {k: v.numpy() for k, v in tft_output.transform_raw_features(parsed).items()}

    # Mean imputation over the present train values: absent → z-score of the train mean → 0.
    np.testing.assert_allclose(out[shared.GAP_FLOAT], [0.0, 0.0], atol=1e-5)
    assert out[shared.GAP_INT][1] == pytest.approx(0.0, abs=1e-5)
    # A missing string is the "__missing__" category, which is in the vocabulary (train has gaps).
    vocab = tft_output.vocabulary_by_name(shared.GAP_STRING)
    missing_id = vocab.index(T.MISSING_STRING.encode())
    assert list(out[shared.GAP_STRING]) == [missing_id, missing_id]
    for column in feature_types:
        assert np.all(np.isfinite(out[column])), column


def test_unknown_string_goes_to_the_oov_bucket(run, tft_output):
    meta = read_metadata(run["examples_dir"])
    feature_types = T.feature_types_from_metadata(meta)
    example = shared.read_examples(run["examples_dir"], names.EVAL)[1]
    example.features.feature["phist"].bytes_list.value[:] = [b"never-seen"]
    parsed = tf.io.parse_example(tf.constant([example.SerializeToString()]), T.raw_feature_spec(feature_types))
    out = tft_output.transform_raw_features(parsed)
    assert int(out["phist"][0]) == tft_output.vocabulary_size_by_name("phist")  # the one OOV id
    assert run["result"]["vocabulary_sizes"]["phist"] == tft_output.vocabulary_size_by_name("phist")


def test_missing_split_is_an_input_error(examples_dir, tmp_path):
    import shutil

    broken = str(tmp_path / "examples")
    shutil.copytree(examples_dir, broken)
    shutil.rmtree(os.path.join(broken, names.EVAL))
    with pytest.raises(PipelineInputError, match="no eval split"):
        T.run_transform(broken, str(tmp_path / "g"), str(tmp_path / "t"), beam_args=shared.TEST_BEAM_ARGS)


def test_unknown_column_type_is_an_input_error():
    with pytest.raises(PipelineInputError, match="unknown type"):
        T.raw_feature_spec({"x": "date"})


def test_component_interface():
    from components.transform.component import transform

    spec = transform.component_spec
    assert set(spec.inputs) == {names.EXAMPLES, "beam_args"}
    assert set(spec.outputs) == {names.TRANSFORM_GRAPH, names.TRANSFORMED_EXAMPLES}
    assert spec.implementation.container.image.endswith(":" + __import__("components.common.images", fromlist=["x"]).package_version())
