"""`make compile`: the pipelines' KFP IR YAML, each in its Kubeflow and its Vertex AI form.

    python -m pipelines.compile [--out-dir DIR] [--vertex-spec vertex.yaml]

- training_pipeline.yaml / retraining_pipeline.yaml: Kubeflow Pipelines (backend 2.5 or later:
  parameter-driven node selectors and tolerations), two YAML documents (the pipeline spec and the
  kfp-kubernetes platform spec).
- training_pipeline_vertex.yaml / retraining_pipeline_vertex.yaml: Vertex AI Pipelines, one
  document, machines from a VertexSpec (`--vertex-spec`, a YAML file of its fields).

The images named inside are components/common/images.py's: set $KFP_IMAGE_REPOSITORY to compile
for the repository `make images` pushed to.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from components.common.config import VertexSpec

COMPILED_DIR = Path(__file__).resolve().parent / "compiled"
COMPILED_PIPELINE = COMPILED_DIR / "training_pipeline.yaml"
COMPILED_VERTEX_PIPELINE = COMPILED_DIR / "training_pipeline_vertex.yaml"
COMPILED_RETRAINING_PIPELINE = COMPILED_DIR / "retraining_pipeline.yaml"
COMPILED_VERTEX_RETRAINING_PIPELINE = COMPILED_DIR / "retraining_pipeline_vertex.yaml"
KUBEFLOW_FILES = (COMPILED_PIPELINE, COMPILED_RETRAINING_PIPELINE)
VERTEX_FILES = (COMPILED_VERTEX_PIPELINE, COMPILED_VERTEX_RETRAINING_PIPELINE)


def compile_pipeline(path: Path = COMPILED_PIPELINE) -> Path:
    from pipelines.training_pipeline import training_pipeline

    return _compile(training_pipeline, path)


def compile_vertex_pipeline(path: Path = COMPILED_VERTEX_PIPELINE, spec: VertexSpec = VertexSpec()) -> Path:
    from pipelines.training_pipeline import vertex_training_pipeline

    return _compile(vertex_training_pipeline(spec), path)


def compile_retraining_pipeline(path: Path = COMPILED_RETRAINING_PIPELINE) -> Path:
    from pipelines.retraining_pipeline import retraining_pipeline

    return _compile(retraining_pipeline, path)


def compile_vertex_retraining_pipeline(path: Path = COMPILED_VERTEX_RETRAINING_PIPELINE,
                                       spec: VertexSpec = VertexSpec()) -> Path:
    from pipelines.retraining_pipeline import vertex_retraining_pipeline

    return _compile(vertex_retraining_pipeline(spec), path)


def _compile(pipeline, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=COMPILED_DIR)
    parser.add_argument("--vertex-spec", help="YAML file of VertexSpec fields (default: CPU n1-standard-8)")
    args = parser.parse_args()
    spec = VertexSpec.load(args.vertex_spec)
    for path in (compile_pipeline(args.out_dir / COMPILED_PIPELINE.name),
                 compile_retraining_pipeline(args.out_dir / COMPILED_RETRAINING_PIPELINE.name),
                 compile_vertex_pipeline(args.out_dir / COMPILED_VERTEX_PIPELINE.name, spec),
                 compile_vertex_retraining_pipeline(args.out_dir / COMPILED_VERTEX_RETRAINING_PIPELINE.name, spec)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
