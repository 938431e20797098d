"""TFDV statistics of several splits in one Beam graph: one pass over every split's rows.

`tfdv.GenerateStatistics` once per split builds and runs its whole graph (some twenty fused
stages, each with Beam's per-stage set-up) once per split: on small and mid-sized data that
set-up, not the rows, is most of validate's statistics time (tests/benchmarks/bench_tfdv_stats.py). Here each
split's record batches are keyed by the split's name and go through TFDV's own sliced statistics
(`stats_impl.GenerateSlicedStatisticsImpl`, what `GenerateStatistics` runs after it has made slice
keys), so the generators run once over all the rows, keyed by split. Each split's result is then
the DatasetFeatureStatisticsList `GenerateStatistics` would have written for it alone (one dataset,
no name). What `GenerateStatistics` adds before slicing (sampling, a feature allowlist, features
derived from a schema) is not used with these options, and `SplitStatistics` refuses options
that ask for it.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam


def _keyed(record_batch, split: str):
    return split, record_batch


def _one_split(statistics_list, split: str):
    """The split's dataset alone, unnamed; an empty one for a split that had no rows."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    result = statistics_pb2.DatasetFeatureStatisticsList()
    for dataset in statistics_list.datasets:
        if dataset.name == split:
            result.datasets.add().CopyFrom(dataset)
            result.datasets[0].ClearField("name")
    if not result.datasets:
        result.datasets.add(num_examples=0)
    return result


class SplitStatistics(beam.PTransform):
    """{split: PCollection of Arrow record batches} → {split: PCollection holding that split's
    DatasetFeatureStatisticsList}, computed in one pass."""

    def __init__(self, options: Any) -> None:
        super().__init__()
        unsupported = [name for name in ("sample_rate", "feature_allowlist", "schema", "slicing_config",
                                         "experimental_slice_functions", "experimental_slice_sqls")
                       if getattr(options, name, None)]
        if unsupported:
            raise ValueError(f"SplitStatistics does not apply StatsOptions {unsupported}; use tfdv.GenerateStatistics")
        self._options = options

    def expand(self, splits: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        from tensorflow_data_validation.statistics import stats_impl

        keyed = [batches | f"Key[{split}]" >> beam.Map(_keyed, split) for split, batches in splits.items()]
        statistics = (keyed
                      | "AllSplits" >> beam.Flatten()
                      | "Statistics" >> stats_impl.GenerateSlicedStatisticsImpl(self._options,
                                                                                is_slicing_enabled=True))
        return {split: statistics | f"Pick[{split}]" >> beam.Map(_one_split, split) for split in splits}
