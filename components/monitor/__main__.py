"""python -m components.monitor --log predictions.jsonl --registry out/run/registry --model model \
    [--version V] [--since T] [--until T] [--warn 0.1] [--act 0.2] [--labels labels.csv] [--out DIR]

Prints the drift table and the decision (ok / warn / act). The decision is an output, not a
failure: the exit status is 0 whatever it is, 2 for unusable input (no log, no baseline, too few
predictions, a bad flag).
"""

from __future__ import annotations

import argparse
import sys

from components.common.errors import PipelineInputError
from components.monitor import report
from components.monitor.feedback import FeedbackConfig
from components.monitor.config import MonitorConfig
from components.monitor.monitor import feedback_for, run_monitor


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def build_parser() -> argparse.ArgumentParser:
    d = MonitorConfig(log_uri="-", registry_uri="-")
    p = argparse.ArgumentParser(prog="python -m components.monitor", description=__doc__.splitlines()[0])
    p.add_argument("--log", dest="log_uri", required=True, help="prediction log: JSONL file, .gz, or a directory")
    p.add_argument("--registry", dest="registry_uri", required=True)
    p.add_argument("--model", dest="model_name", default=d.model_name)
    p.add_argument("--version", dest="model_version", default="", help="default: the registry's champion")
    p.add_argument("--all-versions", action="store_true", help="judge every logged version against the baseline")
    p.add_argument("--since", default="", help="ISO-8601, inclusive")
    p.add_argument("--until", default="", help="ISO-8601, exclusive")
    p.add_argument("--features", type=_names, default=(), help="comma-separated; default: the model's raw features")
    p.add_argument("--warn", type=float, default=d.warn)
    p.add_argument("--act", type=float, default=d.act)
    p.add_argument("--min-rows", type=int, default=d.min_rows)
    p.add_argument("--reference-rows", dest="prediction_reference_rows", type=int, default=d.prediction_reference_rows,
                   help="the first N logged predictions of the version are the prediction baseline")
    p.add_argument("--prediction-baseline", dest="prediction_baseline_uri", default="",
                   help="a file of baseline predictions (probabilities, class indices or values, by the "
                        "label kind) instead of the reference window")
    p.add_argument("--chunk-rows", type=int, default=d.chunk_rows)
    p.add_argument("--labels", dest="labels_uri", default="", help="labels CSV/JSONL: prediction_id,label[,timestamp]")
    p.add_argument("--slices", dest="slice_columns", type=_names, default=(), help="comma-separated slice columns")
    p.add_argument("--threshold", type=float, default=0.5, help="decision threshold for the label feedback")
    p.add_argument("--as-of", default="", help="labels stamped later count as not yet known")
    p.add_argument("--out", dest="output_dir", default="", help="writes drift.json, report.md, report.html")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = MonitorConfig(
            log_uri=args.log_uri, registry_uri=args.registry_uri, model_name=args.model_name,
            model_version=args.model_version, all_versions=args.all_versions, since=args.since, until=args.until,
            features=args.features, warn=args.warn, act=args.act, min_rows=args.min_rows,
            prediction_reference_rows=args.prediction_reference_rows,
            prediction_baseline_uri=args.prediction_baseline_uri, chunk_rows=args.chunk_rows)
        result = run_monitor(config)
        feedback = None
        if args.labels_uri:
            feedback = feedback_for(result, config, FeedbackConfig(
                labels_uri=args.labels_uri, threshold=args.threshold, slice_columns=args.slice_columns,
                as_of=args.as_of))
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.report_markdown(result, feedback))
    if args.output_dir:
        written = report.write_outputs(result, args.output_dir, feedback)
        print("wrote " + ", ".join(written.values()))
    print(f"decision: {result.decision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
