"""Shared test data: the HMDA sample as a model's training baseline, a registry holding it, and
prediction logs in the model server's format (serving/model_server.py `_record`)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import numpy as np

from components.conftest import HMDA_SAMPLE_CSV
from serving.tests import stand_in

DATA = Path(__file__).resolve().parent / "data"
# TFDV statistics of the 800-row sample, as validate_data computes them (regenerate with
# `python -m components.monitor.tests.helpers`; test_monitor_slow.py checks it is current).
STATS_FIXTURE = DATA / "hmda_sample_train_stats.pbtxt"
VERSION = "v20260101T000000Z-test"
# The raw feature types `make run`'s model declares in model_info.json.
FEATURE_TYPES = {"pirat": "float", "hirat": "float", "lvrat": "float", "unemp": "float", "chist": "int",
                 "mhist": "int", "phist": "string", "selfemp": "string", "insurance": "string",
                 "condomin": "string", "single": "string", "hschool": "string"}
START = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def hmda_rows() -> list[dict]:
    """The sample's rows with model-typed features (floats as the float32 the model sees), plus
    rownames, deny and afam."""
    rows = []
    with open(HMDA_SAMPLE_CSV, newline="") as f:
        for raw in csv.DictReader(f):
            row = {"rownames": raw["rownames"], "deny": raw["deny"], "afam": raw["afam"]}
            for name, kind in FEATURE_TYPES.items():
                value = raw[name]
                if value in ("", "NA"):
                    row[name] = None
                elif kind == "float":
                    row[name] = float(np.float32(value))
                elif kind == "int":
                    row[name] = int(float(value))
                else:
                    row[name] = value
            rows.append(row)
    return rows


def statistics_from_rows(rows: list[dict]):
    """TFDV statistics of rows with validate_data's options (in memory; as its Beam pipeline)."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from components.validate_data.validate import stats_options

    frame = pd.DataFrame([{k: row[k] for k in (*FEATURE_TYPES, "afam")} for row in rows])
    for name, kind in FEATURE_TYPES.items():
        if kind == "float":
            frame[name] = frame[name].astype(np.float32)
    return tfdv.generate_statistics_from_dataframe(frame, stats_options())


def fixture_statistics():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import statistics_pb2

    return text_format.Parse(STATS_FIXTURE.read_text(), statistics_pb2.DatasetFeatureStatisticsList())


def make_registry(root: Path, model_name: str = "model", version: str = VERSION, stats=None,
                  feature_types: dict | None = None, champion: bool = True) -> str:
    """<root>/<model>/versions/<version>/{stats.tfrecord, model_info.json} (+ CHAMPION.json)."""
    version_dir = root / model_name / "versions" / version
    version_dir.mkdir(parents=True)
    stats = stats if stats is not None else fixture_statistics()
    (version_dir / "stats.tfrecord").write_bytes(stats.SerializeToString())
    (version_dir / "model_info.json").write_text(json.dumps(
        {"raw_feature_types": feature_types or FEATURE_TYPES, "label": "deny"}))
    if champion:
        (root / model_name / "CHAMPION.json").write_text(json.dumps(
            {"version": version, "path": f"versions/{version}", "previous": None}))
    return str(root)


def probability(row: dict, bias: float = stand_in.BIAS) -> float:
    """serving/tests/stand_in.py's model in numpy (lvrat, chist, selfemp; missing imputed)."""
    lvrat = stand_in.LVRAT_MEAN if row.get("lvrat") is None else row["lvrat"]
    chist = stand_in.CHIST_MEAN if row.get("chist") is None else row["chist"]
    z = (stand_in.W_LVRAT * (lvrat - stand_in.LVRAT_MEAN) / stand_in.LVRAT_STD
         + stand_in.W_CHIST * (chist - stand_in.CHIST_MEAN)
         + stand_in.SELFEMP_VOCAB.get(row.get("selfemp"), stand_in.SELFEMP_OOV) + bias)
    return 1.0 / (1.0 + math.exp(-z))


def log_record(i: int, row: dict, p: float, version: str = VERSION, when: dt.datetime | None = None) -> dict:
    """One prediction log record as the model server writes it (features: the model's raw features)."""
    return {"prediction_id": f"p{i:06d}", "request_id": f"r{i // 4:06d}", "model_name": "model",
            "model_version": version, "backend": "onnx",
            "timestamp": (when or START + dt.timedelta(seconds=i)).isoformat(),
            "features": {k: row.get(k) for k in FEATURE_TYPES}, "probability": p}


def write_log(path: Path, records: list[dict], extra_lines: dict[int, str] | None = None) -> Path:
    """JSONL; extra_lines {position: raw text} are inserted before the record at that position."""
    extra_lines = extra_lines or {}
    with open(path, "w") as f:
        for i, record in enumerate(records):
            if i in extra_lines:
                f.write(extra_lines[i] + "\n")
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    return path


def sample_rows(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [dict(rows[i]) for i in rng.integers(0, len(rows), n)]


if __name__ == "__main__":  # regenerate the statistics fixture
    from google.protobuf import text_format

    STATS_FIXTURE.write_text(text_format.MessageToString(statistics_from_rows(hmda_rows())))
    print(f"wrote {STATS_FIXTURE}")
