"""`make retrain`: the retraining pipeline on this machine with kfp.local.

    python -m pipelines.run_retraining --log out/run/deploy/state/logs --data newer.csv --label deny \
        --out out/run [--retrain-on act] [--deploy-target local]

1. the monitor component judges the prediction log against the champion's training statistics;
2. when its decision reaches --retrain-on, the training pipeline runs on --data (the newer, labelled
   rows): gated against the champion, and with --deploy-target local canary-deployed against what
   is live (OUT/deploy/state, shared with `make deploy`);
3. OUT/retrain_summary.json holds the decision, the drifted features, the reports and the training
   run's summary.

The compiled retraining pipeline branches with dsl.If, which kfp.local cannot run; this runs the
same two parts (the same components) and takes the same branch in Python.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from components.common import io as fio
from components.common import names
from components.common.config import RETRAIN_TRAINING_DEFAULTS, PipelineConfig, RetrainConfig
from components.common.errors import PipelineInputError
from pipelines import run_local

SUMMARY_FILE = "retrain_summary.json"
STATUS_NOT_TRIGGERED = "not_triggered"
STATUS_MONITOR_FAILED = "monitor_failed"


def build_parser() -> argparse.ArgumentParser:
    parser = run_local.build_parser(__doc__)
    d = RetrainConfig()
    parser.add_argument("--log", required=True, help="prediction log: a JSONL file, .gz, or a directory of them")
    parser.add_argument("--since", default=d.monitor_since, help="ISO-8601: judge predictions from then on")
    parser.add_argument("--until", default=d.monitor_until, help="ISO-8601, exclusive")
    parser.add_argument("--warn", type=float, default=d.drift_warn_threshold)
    parser.add_argument("--act", type=float, default=d.drift_act_threshold)
    parser.add_argument("--min-rows", type=int, default=d.monitor_min_rows)
    parser.add_argument("--retrain-on", default=d.retrain_on, help='"warn", "act" or "always"')
    return parser


def retrain_config_from_args(args: argparse.Namespace) -> RetrainConfig:
    return RetrainConfig(prediction_log_uri=os.path.abspath(args.log) if fio.is_local(args.log) else args.log,
                         monitor_since=args.since, monitor_until=args.until, drift_warn_threshold=args.warn,
                         drift_act_threshold=args.act, monitor_min_rows=args.min_rows, retrain_on=args.retrain_on)


def run_monitor_task(retrain: RetrainConfig, training: PipelineConfig, pipeline_root: str) -> dict:
    """The monitor component under kfp.local: its decision, retrain flag and output artifacts."""
    from components.monitor.component import monitor
    from pipelines import local_runner

    local_runner.init(local_runner.SUBPROCESS, os.path.dirname(pipeline_root), pipeline_root, raise_on_error=True)
    task = monitor(prediction_log_uri=retrain.prediction_log_uri, registry_uri=training.registry_uri,
                   model_name=training.model_name, since=retrain.monitor_since, until=retrain.monitor_until,
                   warn_threshold=retrain.drift_warn_threshold, act_threshold=retrain.drift_act_threshold,
                   min_rows=retrain.monitor_min_rows, retrain_on=retrain.retrain_on)
    drift_dir = task.outputs[names.DRIFT].path
    result = fio.read_json(fio.join(drift_dir, names.DRIFT_RESULT_FILE))
    return {
        "decision": task.outputs["decision"],
        "retrain": task.outputs["retrain"],
        "triggered": result.get("triggered", []),
        "model_version": result.get("model_version"),
        "reports": {names.DRIFT_REPORT: task.outputs[names.DRIFT_REPORT].path,
                    names.DRIFT_SUMMARY: task.outputs[names.DRIFT_SUMMARY].path,
                    names.DRIFT: drift_dir},
    }


def run(retrain: RetrainConfig, training: PipelineConfig, out_dir: str, extra: dict | None = None) -> dict:
    """Monitor, then (when it says so) the training pipeline; writes OUT/retrain_summary.json
    (with `extra`, what the caller did before, first)."""
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    started = time.time()
    summary: dict = dict(extra or {}) | {"prediction_log_uri": retrain.prediction_log_uri,
                                         "retrain_on": retrain.retrain_on, "registry_uri": training.registry_uri,
                                         "data": training.data_uri}
    try:
        summary["monitor"] = run_monitor_task(retrain, training, os.path.join(out_dir, "pipeline_root"))
    except Exception as exc:  # kfp.local raises RuntimeError naming the failed task; the reason is in FAILURE.json
        summary.update(status=STATUS_MONITOR_FAILED, error=f"{type(exc).__name__}: {exc}")
    else:
        monitor = summary["monitor"]
        print(f"monitor: {monitor['decision']} (retrain on {retrain.retrain_on}: "
              f"{'yes' if monitor['retrain'] else 'no'}); drifted: {', '.join(monitor['triggered']) or 'nothing'}")
        if monitor["retrain"]:
            summary["training"] = run_local.run(training, out_dir)
            summary["status"] = summary["training"]["status"]
        else:
            summary["status"] = STATUS_NOT_TRIGGERED
    summary["wall_seconds"] = round(time.time() - started, 2)
    path = os.path.join(out_dir, SUMMARY_FILE)
    fio.write_json_atomic(path, summary)
    print(f"retraining: {summary['status']}{': ' + summary['error'] if summary.get('error') else ''}  "
          f"(summary: {path})")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        retrain = retrain_config_from_args(args)
        training = run_local.config_from_args(args, defaults=RETRAIN_TRAINING_DEFAULTS)
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = run(retrain, training, args.out)
    ok = (STATUS_NOT_TRIGGERED, names.STATUS_BLESSED, names.STATUS_NOT_BLESSED)
    return 0 if summary["status"] in ok else 1


if __name__ == "__main__":
    sys.exit(main())
