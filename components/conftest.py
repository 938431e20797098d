"""Fixtures shared by every component's tests (and re-exported by tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# TFT and TFMA need Keras 2; set before TensorFlow is first imported in the test process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
HMDA_SAMPLE_CSV = FIXTURES / "hmda_sample.csv"  # 800 real rows of AER/HMDA


@pytest.fixture(scope="session")
def hmda_csv() -> Path:
    return HMDA_SAMPLE_CSV


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory) -> str:
    """The HMDA sample ingested once per session: <dir>/{train,eval}/data.tfrecord.gz + metadata."""
    from components.ingest.ingest import ingest

    out = str(tmp_path_factory.mktemp("examples"))
    ingest(str(HMDA_SAMPLE_CSV), out, label="deny", key_column="rownames", slices=["afam"])
    return out
