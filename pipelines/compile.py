"""`make compile`: write the training pipeline's KFP IR YAML (one file for Kubeflow and Vertex AI)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

COMPILED_PIPELINE = Path(__file__).resolve().parent / "compiled" / "training_pipeline.yaml"


def compile_pipeline(path: Path = COMPILED_PIPELINE) -> Path:
    from pipelines.training_pipeline import training_pipeline

    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=training_pipeline, package_path=str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=COMPILED_PIPELINE)
    print(f"wrote {compile_pipeline(parser.parse_args().out)}")


if __name__ == "__main__":
    main()
