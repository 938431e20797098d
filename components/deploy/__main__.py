"""python -m components.deploy --target local --registry out/run/registry --model model \
    --data tests/fixtures/hmda_sample.csv [--state-dir DIR] [--out DIR] [policy flags]

Prints each step's figures and the decision; exit status 0 when the candidate serves (or already
did), 1 when it was rolled back or failed in shadow, 2 for bad arguments or data.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from components.common.errors import PipelineInputError
from components.deploy import analysis
from components.deploy.deploy import TARGETS, DeployConfig, run_deploy


def _steps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps must be comma-separated percentages, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    defaults = DeployConfig(target="none")
    p = argparse.ArgumentParser(prog="python -m components.deploy", description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=TARGETS, required=True)
    p.add_argument("--registry", dest="registry_uri", required=True)
    p.add_argument("--model", dest="model_name", default=defaults.model_name)
    p.add_argument("--version", dest="candidate_version", default="", help="default: the registry's CHAMPION")
    p.add_argument("--data", default="", help="held-out rows: CSV, tf.Example TFRecord or ingest examples dir")
    p.add_argument("--out", dest="output_dir", default="", help="writes result.json, report.md, report.html")
    p.add_argument("--state-dir", default="", help="local target state (default: <out>/state or out/deploy/state)")
    p.add_argument("--serving-python", default="", help="default: .venv-serving/bin/python")
    p.add_argument("--backend", choices=("savedmodel", "onnx"), default=defaults.backend)
    p.add_argument("--no-deploy-previous", dest="deploy_previous", action="store_false",
                   help="local, nothing live: do not deploy the registry's previous version first")
    p.add_argument("--no-local-prometheus", dest="local_prometheus", action="store_false",
                   help="local: do not run a Prometheus on loopback to judge served traffic")
    p.add_argument("--vertex-cloud-monitoring", action="store_true",
                   help="vertex: also judge each DeployedModel's served traffic from Cloud Monitoring")
    p.add_argument("--mode", choices=("canary", "shadow"), default=defaults.mode)
    p.add_argument("--steps", type=_steps, default=defaults.steps, help="e.g. 10,50,100")
    for name in ("requests_per_step", "min_requests", "rows_per_request", "concurrency", "max_rows", "seed"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("max_error_rate", "max_error_rate_increase", "max_p99_latency_ratio", "p99_latency_slack_ms",
                 "max_prediction_psi", "max_auc_drop", "ready_timeout_s", "scrape_interval_s"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    for name in ("kserve_namespace", "kserve_service", "kserve_url", "vertex_project", "vertex_region",
                 "vertex_endpoint", "prometheus_url", "log_sink_output"):
        p.add_argument(f"--{name.replace('_', '-')}", default="")
    return p


def _terminate(signum, frame):  # SIGTERM unwinds like Ctrl-C: finally blocks stop the servers
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.state_dir and args.target == "local":
        args.state_dir = os.path.join(args.output_dir or os.path.join("out", "deploy"), "state")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        config = DeployConfig(**vars(args))
        result = run_deploy(config, progress=lambda line: print(line, flush=True))
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(analysis.report_markdown(result))
    if config.output_dir:
        print(f"wrote {config.output_dir}/{{result.json,report.md,report.html}}")
    return 0 if result.succeeded or result.outcome == analysis.NOT_DEPLOYED else 1


if __name__ == "__main__":
    sys.exit(main())
