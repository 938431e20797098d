"""`make compile`: write the pipelines' KFP IR YAML (one file each for Kubeflow and Vertex AI):
the training pipeline and the retraining pipeline (monitor → training pipeline on drift)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

COMPILED_DIR = Path(__file__).resolve().parent / "compiled"
COMPILED_PIPELINE = COMPILED_DIR / "training_pipeline.yaml"
COMPILED_RETRAINING_PIPELINE = COMPILED_DIR / "retraining_pipeline.yaml"


def compile_pipeline(path: Path = COMPILED_PIPELINE) -> Path:
    from pipelines.training_pipeline import training_pipeline

    return _compile(training_pipeline, path)


def compile_retraining_pipeline(path: Path = COMPILED_RETRAINING_PIPELINE) -> Path:
    from pipelines.retraining_pipeline import retraining_pipeline

    return _compile(retraining_pipeline, path)


def _compile(pipeline, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out-dir", type=Path, default=COMPILED_DIR)
    out_dir = parser.parse_args().out_dir
    for compile_one, default in ((compile_pipeline, COMPILED_PIPELINE),
                                 (compile_retraining_pipeline, COMPILED_RETRAINING_PIPELINE)):
        print(f"wrote {compile_one(out_dir / default.name)}")


if __name__ == "__main__":
    main()
