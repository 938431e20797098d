"""Every split's statistics in one pass (split_statistics.py) against tfdv.GenerateStatistics per split."""

from __future__ import annotations

import math

import pytest

from components.validate_data.validate import generate_statistics, split_files, stats_options

BEAM_ARGS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


def _per_split_reference(examples_dir: str, out_dir: str) -> dict:
    """What validate computed before: one tfdv.GenerateStatistics per split."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public import tfxio

    outputs = {}
    with beam.Pipeline(options=PipelineOptions(BEAM_ARGS)) as pipeline:
        for split, pattern in split_files(examples_dir).items():
            outputs[split] = f"{out_dir}/{split}.pb"
            _ = (pipeline
                 | f"Read[{split}]" >> tfxio.TFExampleRecord(pattern).BeamSource()
                 | f"Stats[{split}]" >> tfdv.GenerateStatistics(stats_options())
                 | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(outputs[split]))
    return {split: tfdv.load_stats_binary(path) for split, path in outputs.items()}


def _assert_close(a, b, where: str = "") -> None:
    """Equal, but floats to 1e-12 relative: the generators' accumulators merge in another order."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            _assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), f"{where}: {a} vs {b}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def test_one_pass_equals_generate_statistics_per_split(examples_dir, tmp_path):
    from google.protobuf.json_format import MessageToDict

    one_pass = generate_statistics(examples_dir, str(tmp_path / "statistics"), BEAM_ARGS)
    reference = _per_split_reference(examples_dir, str(tmp_path))
    assert set(one_pass) == set(reference) == set(split_files(examples_dir))
    for split, expected in reference.items():
        got = one_pass[split]
        assert len(got.datasets) == 1 and got.datasets[0].name == "" and got.datasets[0].num_examples > 0
        _assert_close(MessageToDict(got), MessageToDict(expected), split)
    counts = {split: one_pass[split].datasets[0].num_examples for split in one_pass}
    assert len(set(counts.values())) > 1, counts  # each split its own rows, not one copy for all


def test_a_split_without_rows_gets_empty_statistics():
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from components.validate_data.split_statistics import _one_split

    both = statistics_pb2.DatasetFeatureStatisticsList()
    both.datasets.add(name="train", num_examples=7)
    assert _one_split(both, "train").datasets[0].num_examples == 7
    empty = _one_split(both, "eval")
    assert len(empty.datasets) == 1 and empty.datasets[0].num_examples == 0


def test_options_it_cannot_apply_are_refused():
    import tensorflow_data_validation as tfdv

    from components.validate_data.split_statistics import SplitStatistics

    with pytest.raises(ValueError, match="sample_rate"):
        SplitStatistics(tfdv.StatsOptions(sample_rate=0.5))
