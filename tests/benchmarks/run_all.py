"""`make bench`: every benchmark of the training pipeline, figures into OUT/summary.json.

- the local pipeline on the default dataset (AER/HMDA): wall time and seconds per component, as
  host processes and with every task in its image (the ratio of the two, same session);
- the images (`make images`): size and build time of each, from out/images/images.json;
- TFDV statistics throughput on nycflights13/flights against pandas describe() (bench_tfdv_stats.py);
- TFMA with 3 slicing specs on 20k rows: DirectRunner defaults against our settings, and our settings
  with against without confidence intervals, point metrics compared (bench_tfma.py);
- the KServe model server (rps, p50/p99 at concurrency 1/8/32) against the model's in-process
  inference, SavedModel vs ONNX Runtime (bench_serving.py, run with the serving env's python);
- the drift monitor (PSI + KS over every feature) on 1M logged predictions against a plain numpy
  histogram pass over the same arrays (bench_monitor.py);
- the scale curve: the whole pipeline on nycflights13/flights at 10k, 100k and 336,776 rows, each
  step's seconds and rows/s (bench_scale.py; the longest, about half an hour on 2 cores).
Each comparison is a ratio of two runs on the same machine in the same session.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# kserve and onnxruntime live only in the serving env (make setup-serving), not in .venv.
SERVING_PYTHON = ROOT / ".venv-serving" / "bin" / "python"
BENCHMARKS = ["pipeline", "pipeline_docker", "images", "bench_tfdv_stats", "bench_tfma", "bench_serving",
              "bench_monitor", "bench_scale"]
IMAGES_RECORD = ROOT / "out" / "images" / "images.json"


def _run(command: list[str], log_path: Path) -> float:
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{command[1:3]} failed (exit {completed.returncode}); see {log_path}")
    return seconds


def bench_pipeline(out: Path, runner: str = "subprocess") -> dict:
    run_out = out / ("pipeline_run" if runner == "subprocess" else f"pipeline_run_{runner}")
    seconds = _run([sys.executable, "-m", "pipelines.run_local", "--out", str(run_out), "--runner", runner],
                   out / f"{run_out.name}.log")
    summary = json.loads((run_out / "run_summary.json").read_text())
    return {
        "runner": runner,
        "dataset": summary["data"],
        "status": summary["status"],
        "wall_seconds_including_interpreter_start": round(seconds, 2),
        "pipeline_seconds": summary.get("wall_seconds"),
        "seconds_per_component": summary.get("timings_s"),
        "auc": summary.get("metrics", {}).get("auc"),
    }


def bench_images() -> dict:
    """What `make images` recorded: per image its size and build time (a rebuild from the build
    cache is far faster than a first build; `base_image` says what it was built on)."""
    if not IMAGES_RECORD.exists():
        raise SystemExit(f"{IMAGES_RECORD} missing: run 'make images' first")
    record = json.loads(IMAGES_RECORD.read_text())
    return {name: {"size_gb": round(entry["size_bytes"] / 1e9, 2), "build_seconds": entry["build_seconds"],
                   "base_image": entry["base_image"]} for name, entry in record.items()}


def bench_script(name: str, out: Path, extra: list[str] | None = None) -> dict:
    result_path = out / f"{name}.json"
    python = sys.executable
    if name == "bench_serving":
        if not SERVING_PYTHON.exists():
            raise SystemExit(f"{SERVING_PYTHON} missing: run 'make setup-serving' first")
        python = str(SERVING_PYTHON)
    _run([python, str(HERE / f"{name}.py"), "--out", str(result_path), *(extra or [])], out / f"{name}.log")
    return json.loads(result_path.read_text())


def serving_args(out: Path) -> list[str]:
    """bench_serving's default is `make run`'s champion; without one, the model this run's
    pipeline benchmark pushed (else bench_serving falls back to a stand-in and says so)."""
    pushed = out / "pipeline_run" / "registry"
    if not (ROOT / "out" / "run" / "registry" / "model" / "CHAMPION.json").exists() and \
            (pushed / "model" / "CHAMPION.json").exists():
        return ["--registry", str(pushed)]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.only or BENCHMARKS
    results = {"machine": {"cpus": os.cpu_count()}}
    for name in wanted:
        if name == "pipeline":
            results[name] = bench_pipeline(args.out)
        elif name == "pipeline_docker":
            results[name] = bench_pipeline(args.out, "docker")
            if "pipeline" in results:
                results[name]["wall_ratio_vs_subprocess"] = round(
                    results[name]["pipeline_seconds"] / results["pipeline"]["pipeline_seconds"], 3)
        elif name == "images":
            results[name] = bench_images()
        else:
            extra = serving_args(args.out) if name == "bench_serving" else None
            results[name] = bench_script(name, args.out, extra)
        print(json.dumps({name: results[name]}, indent=2), flush=True)
    (args.out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
