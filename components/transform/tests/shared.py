"""One transform run per test session, shared by the transform and train tests.

The HMDA sample has no missing values, so the run uses a copy of the session's examples in
which some examples lack a float, an int and a string feature (GAP_*): imputation is then
exercised in analysis, training, serving and the ONNX parity check.
"""

from __future__ import annotations

import functools
import os
import shutil

TEST_BEAM_ARGS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
GAP_EVERY = 7
GAP_FLOAT = "lvrat"
GAP_INT = "mhist"
GAP_STRING = "selfemp"


def read_examples(examples_dir: str, split: str) -> list:
    import tensorflow as tf

    from components.ingest.ingest import split_path

    path = split_path(examples_dir, split)
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def with_gaps(examples_dir: str, out_dir: str) -> str:
    """A copy of an examples artifact where every GAP_EVERY-th example lacks the GAP_* features."""
    import tensorflow as tf

    from components.common import names
    from components.ingest.ingest import split_path

    shutil.copytree(examples_dir, out_dir)
    for split in names.SPLITS:
        examples = read_examples(examples_dir, split)
        for i, example in enumerate(examples):
            if i % GAP_EVERY == 0:
                del example.features.feature[GAP_FLOAT]
                del example.features.feature[GAP_STRING]
            if i % GAP_EVERY == 3:
                del example.features.feature[GAP_INT]
        path = split_path(out_dir, split)
        os.remove(path)
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for example in examples:
                writer.write(example.SerializeToString())
    return out_dir


@functools.cache
def transformed_once(examples_dir: str, base_dir: str) -> dict:
    """run_transform on the session's examples (with gaps); paths and result, cached."""
    from components.transform.transform import run_transform

    out = os.path.join(base_dir, "transform")
    paths = {
        "examples_dir": with_gaps(examples_dir, os.path.join(out, "examples")),
        "transform_graph_dir": os.path.join(out, "transform_graph"),
        "transformed_examples_dir": os.path.join(out, "transformed_examples"),
    }
    result = run_transform(
        paths["examples_dir"], paths["transform_graph_dir"], paths["transformed_examples_dir"],
        beam_args=TEST_BEAM_ARGS, temp_dir=os.path.join(out, "tmp"),
    )
    return {**paths, "result": result}
