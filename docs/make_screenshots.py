"""Screenshots of the reports a reviewer sees in the KFP UI, for the docs (docs/<report>.png).

    .venv/bin/python docs/make_screenshots.py                 # from the last `make run` (out/run)
    .venv/bin/python docs/make_screenshots.py --run out/run extra.html deploy=out/run/deploy/report.html

The reports are rebuilt with the current code from a finished run's outputs: validate_data on the
run's examples (schema and skew; no drift check: the run's champion is the same data, and a
champion whose statistics were made with other histogram settings shows spurious drift), the gates
re-applied to the run's TFMA output (PipelineConfig defaults, the run's slices), the push summary
from the run's push result and lineage. One more validation page shows anomalies: the HMDA fixture with lvrat shifted in its eval
split. The canary analysis and the drift report are the run's own (after `make retrain-demo`). Extra HTML files given on the command line (`name=path` to name the PNG) are screenshot too.
Needs Chromium (`make browser`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BEAM_ARGS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


def _latest_run_dir(run: str) -> str:
    dirs = sorted(d for d in glob.glob(os.path.join(run, "pipeline_root", "*")) if os.path.isdir(d))
    if not dirs:
        raise SystemExit(f"no pipeline run under {run}/pipeline_root: run `make run` first")
    return dirs[-1]


def validation_page(examples_dir: str, work: str, registry_uri: str = "", model_name: str = "model") -> str:
    """validate() on an examples dir; the path of the report.html it wrote."""
    from components.common import names
    from components.common.config import PipelineConfig
    from components.validate_data.validate import thresholds_of, validate

    validate(examples_dir, os.path.join(work, "statistics"), os.path.join(work, "schema"),
             os.path.join(work, "anomalies"), registry_uri=registry_uri, model_name=model_name,
             beam_args=BEAM_ARGS, raise_on_anomalies=False, **thresholds_of(PipelineConfig()))
    return os.path.join(work, "anomalies", names.REPORT_HTML_FILE)


def anomalies_page(work: str) -> str:
    import pandas as pd

    from components.ingest.ingest import ingest

    frame = pd.read_csv(os.path.join(ROOT, "tests", "fixtures", "hmda_sample.csv"))
    frame.iloc[:600].to_csv(os.path.join(work, "train.csv"), index=False)
    frame.iloc[600:].assign(lvrat=lambda d: d["lvrat"] * 3 + 2).to_csv(os.path.join(work, "eval.csv"), index=False)
    ingest(os.path.join(work, "train.csv"), os.path.join(work, "examples"), label="deny", key_column="rownames",
           slices=["afam"], eval_data_uri=os.path.join(work, "eval.csv"))
    return validation_page(os.path.join(work, "examples"), os.path.join(work, "validation"))


def fairness_page(run_dir: str, summary: dict, work: str) -> str:
    from components.common.config import PipelineConfig
    from components.evaluate import evaluate as ev

    config = PipelineConfig()
    baseline = summary.get("baseline_version")
    ev.bless(os.path.join(run_dir, "evaluate", "evaluation"), work, slices=list(summary.get("slices") or config.slices),
             has_baseline=baseline is not None, baseline_version=baseline or "",
             policy=config.gate_policy().with_model_threshold(summary.get("decision_threshold")),
             simple_baselines=summary.get("simple_baselines"))
    return os.path.join(work, ev.FAIRNESS_HTML_FILE)


def push_page(run_dir: str, work: str) -> str:
    from components.common import names
    from components.push import push
    from tests.browser import markdown_page

    with open(os.path.join(run_dir, "push", names.PUSHED_MODEL, names.PUSH_RESULT_FILE)) as f:
        result = push.PushResult(**json.load(f))
    blessing = push.read_blessing(os.path.join(run_dir, "evaluate", names.BLESSING))
    path = os.path.join(work, "push_report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(markdown_page(push.report_markdown(result, blessing, push.read_lineage(result)), "Push summary"))
    return path


def rollout_and_drift_pages(run: str, work: str) -> list[str]:
    """The newest canary analysis that had steps (a pipeline's deploy task, else `make deploy`'s)
    and the newest drift report (`make retrain-demo` / `make retrain`), where the run has them;
    copied into `work` as .html files (KFP writes its HTML artifacts without an extension)."""
    import shutil

    found = []
    canaries = [os.path.join(os.path.dirname(result), "..", "deploy_html")
                for result in sorted(glob.glob(os.path.join(run, "pipeline_root", "*", "deploy", "deployment",
                                                            "result.json")))
                if json.load(open(result)).get("steps")]
    standalone = os.path.join(run, "deploy", "report.html")
    if canaries or os.path.exists(standalone):
        found.append(("deploy_report", os.path.normpath(canaries[-1]) if canaries else standalone))
    drift = sorted(glob.glob(os.path.join(run, "pipeline_root", "monitor-*", "monitor", "drift_report")))
    if drift:
        found.append(("drift_report", drift[-1]))
    pages = []
    for name, path in found:
        copy = os.path.join(work, f"{name}.html")
        shutil.copyfile(path, copy)
        pages.append(f"{name}={copy}")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("extra", nargs="*", help="more HTML files (or name=file.html) to screenshot")
    parser.add_argument("--run", default=os.path.join(ROOT, "out", "run"), help="a `make run` OUT directory")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs"), help="where the PNGs go")
    parser.add_argument("--keep-html", default="", help="also copy the built HTML pages here")
    args = parser.parse_args(argv)

    from tests import browser

    if browser.chromium_path() is None:
        print(f"chromium not found: {browser.INSTALL_HINT}", file=sys.stderr)
        return 2
    run_dir = _latest_run_dir(args.run)
    with open(os.path.join(args.run, "run_summary.json")) as f:
        summary = json.load(f)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as work:
        parts = {name: os.path.join(work, name) for name in ("validation", "anomalies", "fairness", "push")}
        for path in parts.values():
            os.makedirs(path)
        pages = [
            f"validation_report={validation_page(os.path.join(run_dir, 'ingest', 'examples'), parts['validation'])}",
            f"validation_report_anomalies={anomalies_page(parts['anomalies'])}",
            f"fairness_report={fairness_page(run_dir, summary, parts['fairness'])}",
            f"push_report={push_page(run_dir, parts['push'])}",
            *rollout_and_drift_pages(args.run, work),
            *args.extra,
        ]
        if args.keep_html:
            import shutil

            os.makedirs(args.keep_html, exist_ok=True)
            for spec in pages:
                name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
                shutil.copyfile(path, os.path.join(args.keep_html, f"{name or os.path.basename(path)}.html"))
        for png, size in browser.screenshots(pages, args.out):
            print(f"{os.path.relpath(png, ROOT)}: {size / 1000:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
