"""Drift monitor throughput on a synthetic 1M-prediction log, against plain numpy histograms.

The log: --rows records in the model server's format (serving/model_server.py), features drawn
resampled from the HMDA sample (tests/fixtures/hmda_sample.csv; floats sent with 4 decimals), ~1% of
one numeric and one categorical feature missing, a few malformed lines (writes cut short); the baseline: the sample's
TFDV statistics (components/monitor/tests/data) in a temporary registry. In one process:

  parse       JSONL → prediction records → per-chunk column arrays (components.monitor:
              read_log + extract_columns), timed alone;
  statistics  the monitor's counts over those arrays (DriftAccumulator.add) and the figures
              (rows()): numeric PSI + KS alone, then everything (categorical, prediction);
  numpy       over the same arrays, `np.histogram` per numeric feature and chunk, (a) with the
              PSI bins' edges and (b) 10 equal-width bins over a fixed range (numpy's fast path);
  exact       drift.psi + drift.ks_statistic per numeric feature on the whole columns against the
              raw 800 baseline rows (what a sample-based monitor without streaming counts would do);
  end to end  run_monitor (parse and statistics in one pass, as the component runs).

Rows per second for each; ratios of the numeric PSI + KS pass to (a), (b) and exact. Statistics
passes run --repeat times (median). Writes --out (JSON) and prints it.

    .venv/bin/python tests/benchmarks/bench_monitor.py --out out/bench/bench_monitor.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def write_log(path: Path, rows: int, malformed: int, seed: int = 0) -> int:
    """A synthetic log of `rows` records (+ `malformed` bad lines); returns its size in bytes."""
    import orjson

    from components.monitor.tests import helpers as h

    rng = np.random.default_rng(seed)
    sample = h.hmda_rows()
    floats = [n for n, k in h.FEATURE_TYPES.items() if k == "float"]
    bad_at = set(rng.choice(rows, size=malformed, replace=False).tolist()) if malformed else set()
    block = 100_000
    with open(path, "wb") as f:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            picks = rng.integers(0, len(sample), n).tolist()
            missing = (rng.random((n, 2)) < 0.01).tolist()
            lines = []
            for j in range(n):
                row = dict(sample[picks[j]])
                for name in floats:  # as a client sends them
                    row[name] = round(row[name], 4)
                if missing[j][0]:
                    row["hirat"] = None
                if missing[j][1]:
                    row["phist"] = None
                i = start + j
                record = h.log_record(i, row, h.probability(row))
                if i in bad_at:
                    lines.append(orjson.dumps(record)[:57])  # a write cut short
                lines.append(orjson.dumps(record))
            f.write(b"\n".join(lines) + b"\n")
    return path.stat().st_size


def _median_time(fn, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--malformed", type=int, default=5, help="bad lines in the log")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-log", type=Path, default=None, help="write the log here and keep it")
    args = parser.parse_args()

    from components.common import drift
    from components.monitor import baseline as mbase
    from components.monitor import config as mcfg
    from components.monitor import drift_counts as mcounts
    from components.monitor import monitor as mon
    from components.monitor.tests import helpers as h

    work = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    log = args.keep_log or work / "predictions.jsonl"
    started = time.perf_counter()
    size = write_log(log, args.rows, args.malformed)
    generate_s = time.perf_counter() - started
    registry = h.make_registry(work / "registry")
    config = mcfg.MonitorConfig(log_uri=str(log), registry_uri=registry, chunk_rows=args.chunk_rows)
    baseline = mbase.load_baseline(config)
    numeric = list(baseline.numeric)

    # parse: file → records → column arrays (kept for the statistics passes)
    counts = mon.LogCounts()
    started = time.perf_counter()
    chunks = [mcounts.extract_columns(records, flags, baseline) for records, flags in
              mon.read_log(config.log_uri, mon.log_filter(config, baseline.version), counts, config.chunk_rows)]
    parse_s = time.perf_counter() - started
    rows = counts.used
    assert rows == args.rows and counts.malformed == args.malformed, (rows, counts.malformed)

    def numeric_pass():
        bins = {name: mcounts.BinCounts(baseline.numeric[name]) for name in numeric}
        for chunk in chunks:
            for name in numeric:
                bins[name].add(chunk.numeric[name])
        return {name: (b.psi(), b.ks()) for name, b in bins.items()}

    def full_pass():
        accumulator = mcounts.DriftAccumulator(baseline, config)
        for chunk in chunks:
            accumulator.add(chunk)
        return accumulator.rows()

    psi_edges = {name: np.concatenate([[-np.inf], b.grid[b.edge_cells].astype(np.float64), [np.inf]])
                 for name, b in baseline.numeric.items()}
    ranges = {name: (float(b.grid[0]), float(b.grid[-2])) for name, b in baseline.numeric.items()}

    def numpy_same_edges():
        totals = {name: np.zeros(len(psi_edges[name]) - 1, dtype=np.int64) for name in numeric}
        for chunk in chunks:
            for name in numeric:
                totals[name] += np.histogram(chunk.numeric[name], bins=psi_edges[name])[0]
        return totals

    def numpy_uniform():
        totals = {name: np.zeros(10, dtype=np.int64) for name in numeric}
        for chunk in chunks:
            for name in numeric:
                totals[name] += np.histogram(chunk.numeric[name], bins=10, range=ranges[name])[0]
        return totals

    raw_baseline = {name: np.array([r[name] for r in h.hmda_rows()], dtype=np.float64) for name in numeric}

    def exact_sample_based():
        out = {}
        for name in numeric:
            column = np.concatenate([chunk.numeric[name] for chunk in chunks]).astype(np.float64)
            out[name] = (drift.psi(raw_baseline[name], column), drift.ks_statistic(raw_baseline[name], column))
        return out

    numeric_s, figures = _median_time(numeric_pass, args.repeat)
    full_s, (drift_rows, _) = _median_time(full_pass, args.repeat)
    same_edges_s, _ = _median_time(numpy_same_edges, args.repeat)
    uniform_s, _ = _median_time(numpy_uniform, args.repeat)
    exact_s, exact = _median_time(exact_sample_based, 1)

    # the streamed counts are the plain binning of the whole column (same bins, same side)
    for name in numeric:
        base = baseline.numeric[name]
        column = np.concatenate([chunk.numeric[name] for chunk in chunks])
        finite = column[np.isfinite(column)]
        edges = base.grid[base.edge_cells]
        direct = np.append(drift.binned_fractions(finite, edges) * finite.size, column.size - finite.size) / column.size
        counts_pass = mcounts.BinCounts(base)
        for chunk in chunks:
            counts_pass.add(chunk.numeric[name])
        assert np.allclose(counts_pass.fractions(), direct, rtol=0, atol=1e-12), name

    del chunks
    started = time.perf_counter()
    result = mon.run_monitor(config, baseline)
    end_to_end_s = time.perf_counter() - started

    def rate(seconds: float) -> float:
        return round(rows / seconds, 1)

    summary = {
        "benchmark": "monitor",
        "rows": rows,
        "log_bytes": size,
        "chunk_rows": args.chunk_rows,
        "numeric_features": numeric,
        "categorical_features": list(baseline.categorical),
        "malformed_lines": counts.malformed,
        "generate_s": round(generate_s, 2),
        "parse": {"seconds": round(parse_s, 3), "rows_per_s": rate(parse_s),
                  "what": "read + JSON decode + filter + column arrays"},
        "statistics_numeric_psi_ks": {"seconds": round(numeric_s, 4), "rows_per_s": rate(numeric_s),
                                      "what": "searchsorted + bincount per numeric feature and chunk, PSI and KS"},
        "statistics_all": {"seconds": round(full_s, 4), "rows_per_s": rate(full_s),
                           "what": "numeric + categorical counts (Counter) + prediction reference/bins, all figures"},
        "numpy_histogram_same_edges": {"seconds": round(same_edges_s, 4), "rows_per_s": rate(same_edges_s)},
        "numpy_histogram_uniform_10": {"seconds": round(uniform_s, 4), "rows_per_s": rate(uniform_s)},
        "exact_sample_based": {"seconds": round(exact_s, 4), "rows_per_s": rate(exact_s),
                               "what": "drift.psi + drift.ks_statistic on whole columns (sorts)"},
        "ratio_numeric_vs_numpy_same_edges": round(same_edges_s / numeric_s, 3),
        "ratio_numeric_vs_numpy_uniform": round(uniform_s / numeric_s, 3),
        "ratio_numeric_vs_exact_sample_based": round(exact_s / numeric_s, 3),
        "end_to_end": {"seconds": round(end_to_end_s, 3), "rows_per_s": rate(end_to_end_s),
                       "decision": result.decision, "figures": len(result.rows)},
        "share_of_end_to_end_in_parse": round(parse_s / (parse_s + full_s), 3),
        "figures_vs_exact": {name: {"psi": round(figures[name][0], 5), "psi_raw_baseline": round(exact[name][0], 5),
                                    "ks": round(figures[name][1], 5), "ks_exact": round(exact[name][1], 5)}
                             for name in numeric},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "platform": platform.platform(), "cpus": os.cpu_count(),
                        "json": "orjson" if mon._orjson is not None else "json"},
    }
    assert len(drift_rows) == len(result.rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if args.keep_log is None:
        log.unlink()


if __name__ == "__main__":
    main()
