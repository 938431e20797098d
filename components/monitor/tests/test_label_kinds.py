"""The monitor for multiclass and regression versions: prediction drift on the kind's logged
prediction (the predicted class over one bin per class, the value over quantile bins) against the
version's reference window, and label feedback per kind (accuracy, MAE). Records are written with
the model server's own prediction_fields (serving/prediction_log.py), predictions by the stand-in
model versions' function (serving/tests/stand_in.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from components.monitor import config as mcfg
from components.monitor import monitor as mon
from components.monitor.feedback import FeedbackConfig, slice_headers, slice_table
from components.monitor.report import metrics, report_markdown
from components.monitor.tests import helpers as h
from serving import prediction_log

N = 3000
BROKEN = {"multiclass": {"permutation": (1, 2, 0)}, "regression": {"shift": 8.0}}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return h.hmda_rows()


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def registry(kind, tmp_path_factory) -> str:
    return kind_registry(kind, tmp_path_factory)


def kind_registry(kind: str, tmp_path_factory) -> str:
    """A registry whose version's model_info.json names the kind, its classes and output."""
    root = h.make_registry(tmp_path_factory.mktemp(f"registry-{kind}"))
    info_path = Path(root) / "model" / "versions" / h.VERSION / "model_info.json"
    info = json.loads(info_path.read_text())
    classes = list(h.stand_in.CLASSES) if kind == "multiclass" else []
    info_path.write_text(json.dumps({**info, "label_kind": kind, "classes": classes,
                                     "output": h.stand_in.OUTPUT_NAMES[kind]}))
    return root


def answers(kind: str, rows: list[dict], **changes) -> np.ndarray:
    return h.stand_in.head(np.array([h.stand_in.score(r) for r in rows]), kind, **changes)


def write_log(path: Path, kind: str, rows: list[dict], broken_after: int | None = None) -> Path:
    """The rows' records; from `broken_after` on, the broken version's answers."""
    healthy, broken = answers(kind, rows), answers(kind, rows, **BROKEN[kind])
    records = []
    for i, row in enumerate(rows):
        answer = broken[i] if broken_after is not None and i >= broken_after else healthy[i]
        record = h.log_record(i, row, 0.0)
        del record["probability"]
        records.append({**record, **prediction_log.prediction_fields(kind, answer)})
    return h.write_log(path, records)


def run(log: Path, registry: str) -> mon.MonitorResult:
    return mon.run_monitor(mcfg.MonitorConfig(log_uri=str(log), registry_uri=registry))


def prediction_rows(result: mon.MonitorResult, kind: str) -> dict:
    return {r.statistic: r for r in result.rows if r.kind == mcfg.PREDICTION and r.feature == mcfg.PREDICTION_FIELDS[kind]}


def test_the_monitor_reads_the_fields_the_server_logs():
    assert mcfg.PREDICTION_FIELDS == prediction_log.PREDICTION_FIELDS


def test_an_unchanged_model_is_ok_on_its_kinds_prediction(tmp_path, rows, kind, registry):
    result = run(write_log(tmp_path / "log.jsonl", kind, h.sample_rows(rows, N, seed=3)), registry)
    assert result.decision == mcfg.OK, result.by_severity
    assert result.label_kind == kind and result.counts.used == N and result.counts.invalid == 0
    prediction = prediction_rows(result, kind)
    # class indices have no order: the class distribution's PSI alone; values: PSI and KS
    assert set(prediction) == ({mcfg.PSI} if kind == "multiclass" else {mcfg.PSI, mcfg.KS})
    assert prediction[mcfg.PSI].rows == N - 1000 and prediction[mcfg.PSI].value < 0.05
    assert not any(r.feature == mcfg.PREDICTION_FEATURE for r in result.rows)


def test_a_broken_model_acts_on_its_kinds_prediction(tmp_path, rows, kind, registry):
    result = run(write_log(tmp_path / "log.jsonl", kind, h.sample_rows(rows, N, seed=3), broken_after=1000), registry)
    field = mcfg.PREDICTION_FIELDS[kind]
    assert result.decision == mcfg.ACT and result.triggered == [field]  # the features did not move
    psi = prediction_rows(result, kind)[mcfg.PSI]
    assert psi.severity == mcfg.ACT and psi.value > 2 * psi.act
    assert metrics(result)[f"{field}_psi"] == psi.value
    assert field in report_markdown(result)


def test_the_class_psi_is_over_one_bin_per_class(tmp_path, tmp_path_factory, rows):
    kind, registry = "multiclass", kind_registry("multiclass", tmp_path_factory)
    sample = h.sample_rows(rows, N, seed=4)
    log = write_log(tmp_path / "log.jsonl", kind, sample, broken_after=1000)
    predicted = np.argmax(np.concatenate([answers(kind, sample[:1000]), answers(kind, sample[1000:], **BROKEN[kind])]),
                          axis=1)
    e = np.bincount(predicted[:1000], minlength=3) / 1000
    a = np.bincount(predicted[1000:], minlength=3) / (N - 1000)
    e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert prediction_rows(run(log, registry), kind)[mcfg.PSI].value == pytest.approx(expected, rel=1e-6)


def test_records_without_the_kinds_prediction_are_invalid(tmp_path, rows, kind, registry):
    sample = h.sample_rows(rows, 1200, seed=5)
    log = write_log(tmp_path / "log.jsonl", kind, sample)
    with open(log, "a") as f:  # a binary record in this version's log: not this kind's prediction
        f.write(json.dumps(h.log_record(9999, sample[0], 0.4)) + "\n")
    result = run(log, registry)
    assert result.counts.invalid == 1 and result.counts.used == 1200
    assert mcfg.PREDICTION_FIELDS[kind] in result.counts.examples[0]


def test_feedback_is_live_accuracy_or_mae(tmp_path, rows, kind, registry):
    sample = h.sample_rows(rows, 1200, seed=6)
    log = write_log(tmp_path / "log.jsonl", kind, sample)
    predictions = answers(kind, sample)
    rng = np.random.default_rng(0)
    labels, truth = [], []
    for i, row in enumerate(sample[:600]):
        if kind == "multiclass":
            value = int(np.argmax(predictions[i])) if i % 4 else (int(np.argmax(predictions[i])) + 1) % 3
            labels.append({"prediction_id": f"p{i:06d}", "label": h.stand_in.CLASSES[value] if i % 2 else str(value),
                           "afam": row["afam"]})
        else:
            value = float(predictions[i] + rng.normal(0, 2))
            labels.append({"prediction_id": f"p{i:06d}", "label": value, "afam": row["afam"]})
        truth.append(value)
    labels.append({"prediction_id": "p000700", "label": "not a label", "afam": "no"})
    labels_path = tmp_path / "labels.jsonl"
    labels_path.write_text("".join(json.dumps(r) + "\n" for r in labels))
    config = mcfg.MonitorConfig(log_uri=str(log), registry_uri=registry)
    result = mon.run_monitor(config)
    feedback = mon.feedback_for(result, config, FeedbackConfig(labels_uri=str(labels_path), slice_columns=("afam",)))
    assert feedback.label_kind == kind and feedback.labelled == 600 and feedback.invalid_labels == 1
    live = metrics(result, feedback)
    if kind == "multiclass":
        assert feedback.overall["accuracy"] == pytest.approx(0.75)  # every fourth label is another class
        assert live["live_accuracy"] == pytest.approx(0.75) and "live_auc" not in live
        assert slice_headers(feedback) == ["slice", "value", "rows", "accuracy"]
    else:
        errors = np.asarray(truth) - predictions[:600]
        assert feedback.overall["mae"] == pytest.approx(float(np.abs(errors).mean()))
        assert feedback.overall["rmse"] == pytest.approx(float(np.sqrt((errors ** 2).mean())))
        assert live["live_mae"] == pytest.approx(feedback.overall["mae"])
        assert slice_headers(feedback) == ["slice", "value", "rows", "MAE", "RMSE"]
    assert {row[1] for row in slice_table(feedback)[1:]} == {"yes", "no"}
    assert "Decision threshold" not in report_markdown(result, feedback)
