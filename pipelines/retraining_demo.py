"""`make retrain-demo`: the monitoring loop end to end on this machine, after `make run`.

    python -m pipelines.retraining_demo --out out/run [--shift lvrat=1.3] [--requests 300]

1. serve: the registry's champion goes live on the local target (OUT/deploy/state; a canary
   against the live version if one is, unchanged if it already is);
2. shift: the training data with one numeric column scaled (default: loan-to-value ratios up 30%),
   written to OUT/retrain/newer.csv; labelled, as the newer data retraining would train on;
3. traffic: its rows, without labels, are sent to the served model; the model servers log every
   prediction (OUT/deploy/state/logs);
4. retrain: the monitor judges the traffic since step 3 began; on "act" the training pipeline runs
   on the newer data, is gated against the champion, and the new model goes through the canary
   against the live one (pipelines.run_retraining).

OUT/retrain_summary.json holds what each step decided, with the reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import glob
import os
import sys

from components.common import names
from components.common.config import RETRAIN_TRAINING_DEFAULTS, PipelineConfig, RetrainConfig
from components.common.errors import PipelineInputError
from components.deploy.deploy import DeployConfig, resolve_candidate, run_deploy
from components.deploy.replay import ReplayObserver, feature_types_of, load_rows
from components.deploy.traffic import ReplayConfig
from pipelines import run_local, run_retraining

DEFAULT_SHIFT = ("lvrat", 1.3)
DEMO_CONFIG = "pipelines/configs/hmda_demo.yaml"


def parse_shift(text: str) -> tuple[str, float]:
    column, _, factor = text.partition("=")
    try:
        return column.strip(), float(factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shift takes COLUMN=FACTOR, got {text!r}") from None


def write_shifted(data_uri: str, column: str, factor: float, path: str) -> str:
    """The data with `column` scaled by `factor`, as CSV (the newer, labelled rows)."""
    from components.ingest.ingest import load_frame

    frame, _ = load_frame(data_uri)
    if column not in frame.columns:
        raise PipelineInputError(f"--shift column {column!r} is not in {data_uri} (columns: {list(frame.columns)})")
    if frame[column].dtype.kind not in "if":
        raise PipelineInputError(f"--shift column {column!r} is not numeric")
    frame[column] = frame[column] * factor
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def serve_champion(training: PipelineConfig, out_dir: str, progress=print) -> dict:
    """Step 1: the champion live on the local target; its eval split (else the data) is the canary's traffic."""
    examples = sorted(glob.glob(os.path.join(out_dir, "pipeline_root", "*", names.INGEST_TASK, names.EXAMPLES)))
    config = DeployConfig(target=names.DEPLOY_LOCAL, registry_uri=training.registry_uri,
                          model_name=training.model_name, data=examples[-1] if examples else training.data_uri,
                          state_dir=run_local.local_deploy_state_dir(out_dir),
                          output_dir=os.path.join(out_dir, "deploy"))
    result = run_deploy(config, progress=progress)
    return {"outcome": result.outcome, "reason": result.reason, "version": result.candidate_version}


def send_traffic(training: PipelineConfig, out_dir: str, data: str, requests: int) -> dict:
    """Step 3: `requests` V1 requests of the data's rows to the served model (through the splitter)."""
    from components.deploy.local import LocalConfig, LocalTarget

    champion = resolve_candidate(DeployConfig(target=names.DEPLOY_NONE, registry_uri=training.registry_uri,
                                              model_name=training.model_name))
    rows = load_rows(data, feature_types_of(champion.uri))
    with LocalTarget(LocalConfig(state_dir=run_local.local_deploy_state_dir(out_dir))) as target:
        # the demo's replay stands in for users: logged as real traffic, for the monitor to judge
        sender = ReplayObserver(None, training.model_name, rows, ReplayConfig(synthetic=False), requests,
                                url=target.url)
        answers = sender.send(requests)
    failed = sum(a.status != 200 for a in answers)
    return {"requests": len(answers), "failed": failed, "rows": len(answers) * ReplayConfig().rows_per_request}


def main(argv: list[str] | None = None) -> int:
    parser = run_local.build_parser(__doc__)
    parser.add_argument("--shift", type=parse_shift, default=DEFAULT_SHIFT, help="COLUMN=FACTOR (default lvrat=1.3)")
    parser.add_argument("--requests", type=int, default=300, help="shifted requests sent (8 rows each)")
    parser.add_argument("--retrain-on", default=RetrainConfig().retrain_on)
    args = parser.parse_args(argv)
    out_dir = os.path.abspath(args.out)
    try:
        champion_config = run_local.config_from_args(args)
        if not os.path.exists(os.path.join(champion_config.registry_uri, champion_config.model_name,
                                           names.CHAMPION_FILE)):
            raise PipelineInputError(
                f"no champion in {champion_config.registry_uri}: run `make run` first (on HMDA with "
                f"CONFIG={DEMO_CONFIG}: the default gates reject its model on fairness, README)")
        column, factor = args.shift
        newer = write_shifted(champion_config.data_uri, column, factor,
                              os.path.join(out_dir, "retrain", "newer.csv"))
        args.data, args.deploy_target = newer, names.DEPLOY_LOCAL
        if args.key is None:  # keep the champion's split key and slices for the newer rows
            args.key = champion_config.key_column
        if args.slices is None:
            args.slices = ",".join(champion_config.slices)
        training = run_local.config_from_args(args, defaults=RETRAIN_TRAINING_DEFAULTS)
        retrain = RetrainConfig(prediction_log_uri=os.path.join(run_local.local_deploy_state_dir(out_dir), "logs"),
                                retrain_on=args.retrain_on)
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(f"1. serve: the champion on the local target ({run_local.local_deploy_state_dir(out_dir)})")
    served = serve_champion(champion_config, out_dir)
    print(f"   {served['outcome']}: {served['reason']}")
    since = dt.datetime.now(dt.timezone.utc).isoformat()
    print(f"2. shift: {column} x {factor} -> {newer}")
    print(f"3. traffic: {args.requests} requests of shifted rows")
    sent = send_traffic(training, out_dir, newer, args.requests)
    print(f"   {sent['requests']} sent ({sent['rows']} rows), {sent['failed']} failed")
    print("4. retrain: monitor, then (on drift) the training pipeline and its canary")
    retrain = dataclasses.replace(retrain, monitor_since=since)  # the shifted traffic only
    summary = run_retraining.run(retrain, training, out_dir, extra={"served": served, "traffic": sent,
                                                                    "shift": {"column": column, "factor": factor}})
    deployed = (summary.get("training") or {}).get("deploy") or {}
    if deployed:
        print(f"   canary of {deployed['candidate_version']} against {deployed['stable_version']}: "
              f"{deployed['outcome']}: {deployed['reason']}")
    return 0 if summary["status"] in (names.STATUS_BLESSED, names.STATUS_NOT_BLESSED) else 1


if __name__ == "__main__":
    sys.exit(main())
