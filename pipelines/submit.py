"""Submit a compiled pipeline to Kubeflow Pipelines or to Vertex AI Pipelines.

    python -m pipelines.submit kubeflow --host https://kfp.example.com [--config run.yaml]
    python -m pipelines.submit vertex --project my-proj --location us-central1 \
        --pipeline-root gs://bucket/pipeline_root [--config run.yaml] [--service-account sa@...]

Each backend takes its own form of the compiled pipeline (`make compile`): Kubeflow the file with
the kfp-kubernetes platform spec, Vertex AI the one-document `_vertex` file. Both take the same
arguments (`PipelineConfig.pipeline_arguments()`), so a run configured in a notebook is the run
submitted.
Nothing is submitted without an explicit host or project.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from components.common.config import PipelineConfig
from components.common.errors import PipelineInputError
from pipelines.compile import COMPILED_PIPELINE, COMPILED_VERTEX_PIPELINE
from pipelines.training_pipeline import PIPELINE_NAME


@dataclasses.dataclass(frozen=True)
class Submission:
    target: str  # "kubeflow" | "vertex"
    run_id: str
    url: str | None


PACKAGES = {"kubeflow": COMPILED_PIPELINE, "vertex": COMPILED_VERTEX_PIPELINE}


def _checked_package(package: str | Path, target: str = "kubeflow") -> str:
    path = Path(package)
    if not path.is_file():
        raise PipelineInputError(f"no compiled pipeline at {path}: run `make compile` first")
    if target == "vertex" and any(line.startswith("---") for line in path.read_text().splitlines()):
        raise PipelineInputError(f"{path} has more than one YAML document (a Kubeflow file with its platform "
                                 f"spec); Vertex AI takes {COMPILED_VERTEX_PIPELINE.name}")
    return str(path)


def submit_to_kubeflow(host: str, arguments: dict[str, Any], package: str | Path = COMPILED_PIPELINE,
                       experiment: str = PIPELINE_NAME, run_name: str | None = None,
                       namespace: str | None = None, enable_caching: bool = False,
                       client=None) -> Submission:
    """Start a run on a Kubeflow Pipelines endpoint (`client` is injectable for tests)."""
    if not host and client is None:
        raise PipelineInputError("a Kubeflow Pipelines host is required, e.g. https://<kfp-ui>/pipeline")
    if client is None:
        import kfp

        client = kfp.Client(host=host, namespace=namespace or "kubeflow")
    result = client.create_run_from_pipeline_package(
        _checked_package(package), arguments=arguments, run_name=run_name, experiment_name=experiment,
        namespace=namespace, enable_caching=enable_caching,
    )
    run_id = result.run_id
    return Submission("kubeflow", run_id, f"{host.rstrip('/')}/#/runs/details/{run_id}" if host else None)


def submit_to_vertex(project: str, location: str, pipeline_root: str, arguments: dict[str, Any],
                     package: str | Path = COMPILED_VERTEX_PIPELINE, service_account: str | None = None,
                     display_name: str = PIPELINE_NAME, enable_caching: bool = False,
                     labels: dict[str, str] | None = None, aiplatform_module=None) -> Submission:
    """Submit a Vertex AI PipelineJob and return without waiting (`aiplatform_module` for tests)."""
    problems = [name for name, value in (("project", project), ("location", location),
                                         ("pipeline_root", pipeline_root)) if not value]
    if problems:
        raise PipelineInputError(f"Vertex AI submission needs {', '.join(problems)}")
    if not pipeline_root.startswith("gs://"):
        raise PipelineInputError(f"pipeline_root must be a gs:// URI on Vertex AI, got {pipeline_root!r}")
    if aiplatform_module is None:
        from google.cloud import aiplatform as aiplatform_module
    aiplatform_module.init(project=project, location=location)
    job = aiplatform_module.PipelineJob(
        display_name=display_name, template_path=_checked_package(package, "vertex"), pipeline_root=pipeline_root,
        parameter_values=arguments, enable_caching=enable_caching, labels=labels,
        project=project, location=location,
    )
    job.submit(service_account=service_account)
    return Submission("vertex", job.resource_name, job._dashboard_uri())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["kubeflow", "vertex"])
    parser.add_argument("--config", help="YAML of PipelineConfig fields")
    parser.add_argument("--package", help=f"compiled file (default: {COMPILED_PIPELINE.name} for kubeflow, "
                                          f"{COMPILED_VERTEX_PIPELINE.name} for vertex)")
    parser.add_argument("--host", help="Kubeflow Pipelines endpoint")
    parser.add_argument("--namespace")
    parser.add_argument("--project")
    parser.add_argument("--location", default="us-central1")
    parser.add_argument("--pipeline-root")
    parser.add_argument("--service-account")
    args = parser.parse_args(argv)
    try:
        arguments = PipelineConfig.load(args.config).pipeline_arguments()
        package = args.package or PACKAGES[args.target]
        if args.target == "kubeflow":
            submission = submit_to_kubeflow(args.host, arguments, package, namespace=args.namespace)
        else:
            submission = submit_to_vertex(args.project, args.location, args.pipeline_root or "", arguments,
                                          package, service_account=args.service_account)
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"submitted to {submission.target}: {submission.run_id}" + (f"\n{submission.url}" if submission.url else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
