"""Label feedback on a replay of the HMDA sample: the 800 rows scored by the stand-in model's
function, logged as the model server logs them, labelled from `deny` with some labels missing,
late, duplicated, unreadable or for unknown ids; every figure is checked against a direct
computation (loops and all positive/negative pairs) over the rows that should have been joined."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from components.common.errors import PipelineInputError
from components.monitor import feedback as fb
from components.common.tfdv_stats import MISSING
from components.monitor.prediction_logs import LogFilter
from components.monitor.tests import helpers as h

AS_OF = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
THRESHOLD = 0.3


def _labelled(i: int) -> bool:
    return i % 5 != 0       # every fifth prediction never gets a label


def _late(i: int) -> bool:
    return i % 7 == 1       # ... and some arrive after AS_OF


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """(log path, labels rows, the rows as logged, their probabilities)."""
    tmp = tmp_path_factory.mktemp("replay")
    rows = h.hmda_rows()
    probabilities = [h.probability(r) for r in rows]
    log = h.write_log(tmp / "predictions.jsonl",
                      [h.log_record(i, r, p) for i, (r, p) in enumerate(zip(rows, probabilities))])
    labels = []
    for i, row in enumerate(rows):
        if not _labelled(i):
            continue
        when = AS_OF + dt.timedelta(days=1) if _late(i) else AS_OF - dt.timedelta(days=1)
        text = row["deny"] if i % 2 else {"yes": "1", "no": "0"}[row["deny"]]  # both spellings
        labels.append({"prediction_id": f"p{i:06d}", "label": text, "timestamp": when.isoformat(), "afam": row["afam"]})
    # a wrong label stamped before the right one, later in the file: the latest timestamp wins
    for i in (2, 3, 4):
        wrong = "no" if rows[i]["deny"] == "yes" else "yes"
        labels.append({"prediction_id": f"p{i:06d}", "label": wrong,
                       "timestamp": (AS_OF - dt.timedelta(days=3)).isoformat(), "afam": rows[i]["afam"]})
    labels += [{"prediction_id": f"unknown-{k}", "label": "1", "timestamp": "", "afam": "no"} for k in range(5)]
    labels += [{"prediction_id": "p000006", "label": "maybe", "timestamp": "", "afam": "no"},
               {"prediction_id": "p000007", "label": "1", "timestamp": "last tuesday", "afam": "no"},
               {"prediction_id": "", "label": "1", "timestamp": "", "afam": "no"}]
    return log, labels, rows, probabilities


def _write_csv(path: Path, labels: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["prediction_id", "label", "timestamp", "afam"])
        writer.writeheader()
        writer.writerows(labels)
    return path


def _direct(ps: list[float], ys: list[int]) -> dict:
    """The figures by definition: loops over rows and over every positive/negative pair."""
    tp = sum(1 for p, y in zip(ps, ys) if p > THRESHOLD and y == 1)
    fp = sum(1 for p, y in zip(ps, ys) if p > THRESHOLD and y == 0)
    fn = sum(1 for p, y in zip(ps, ys) if p <= THRESHOLD and y == 1)
    tn = sum(1 for p, y in zip(ps, ys) if p <= THRESHOLD and y == 0)
    positives = [p for p, y in zip(ps, ys) if y == 1]
    negatives = [p for p, y in zip(ps, ys) if y == 0]
    pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in positives for b in negatives)
    return {"rows": len(ys), "accuracy": (tp + tn) / len(ys),
            "auc": pairs / (len(positives) * len(negatives)) if positives and negatives else None,
            "fnr": fn / (tp + fn) if tp + fn else None, "fpr": fp / (fp + tn) if fp + tn else None}


def _check(got: dict, want: dict) -> None:
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12) if value is not None else got[name] is None, name


def test_join_and_figures_overall_and_per_slice(tmp_path, replay):
    log, labels, rows, probabilities = replay
    config = fb.FeedbackConfig(labels_uri=str(_write_csv(tmp_path / "labels.csv", labels)), threshold=THRESHOLD,
                               slice_columns=("afam", "selfemp"), as_of=AS_OF.isoformat())
    result = fb.run_feedback(config, str(log), LogFilter(version=h.VERSION))
    joined = [i for i in range(len(rows)) if _labelled(i) and not _late(i)]
    ps = [probabilities[i] for i in joined]
    ys = [1 if rows[i]["deny"] == "yes" else 0 for i in joined]
    assert result.predictions == 800 and result.labelled == len(joined)
    assert result.coverage == pytest.approx(len(joined) / 800)
    late = sum(1 for i in range(800) if _labelled(i) and _late(i))
    assert (result.late_labels, result.duplicate_labels, result.invalid_labels) == (late, 3, 3)
    assert result.unmatched_labels == 5
    assert result.labels_read == len(labels)
    _check(result.overall, _direct(ps, ys))
    assert 0.5 < result.overall["auc"] < 1.0
    # afam comes from the labels file (the server does not log it), selfemp from the logged features
    for column, source in (("afam", "labels file"), ("selfemp", "logged features")):
        values = {rows[i][column] for i in joined}
        assert set(result.slices[column]) == values
        for value in values:
            members = [k for k, i in enumerate(joined) if rows[i][column] == value]
            _check(result.slices[column][value], _direct([ps[k] for k in members], [ys[k] for k in members]))
        fnrs = [m["fnr"] for m in result.slices[column].values() if m["rows"] >= 10 and m["fnr"] is not None]
        assert result.gaps[column]["fnr"] == pytest.approx(max(fnrs) - min(fnrs))
        assert f"slice column {column}: from the {source}" in result.notes


def test_late_labels_count_without_as_of_and_jsonl_reads_the_same(tmp_path, replay):
    log, labels, rows, probabilities = replay
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text("\n".join(json.dumps(label) for label in labels) + "\nnot json\n")
    result = fb.run_feedback(fb.FeedbackConfig(labels_uri=str(jsonl), threshold=THRESHOLD), str(log),
                             LogFilter(version=h.VERSION))
    joined = [i for i in range(len(rows)) if _labelled(i)]
    assert result.late_labels == 0 and result.labelled == len(joined)
    assert result.invalid_labels == 4  # the three bad ones and the line that is not JSON
    _check(result.overall, _direct([probabilities[i] for i in joined],
                                   [1 if rows[i]["deny"] == "yes" else 0 for i in joined]))


def test_a_window_limits_the_predictions_and_their_labels(tmp_path, replay):
    log, labels, rows, _ = replay
    config = fb.FeedbackConfig(labels_uri=str(_write_csv(tmp_path / "labels.csv", labels)), threshold=THRESHOLD)
    since = h.START + dt.timedelta(seconds=400)  # record i is stamped START + i seconds
    result = fb.run_feedback(config, str(log), LogFilter(version=h.VERSION, since=since))
    joined = [i for i in range(400, 800) if _labelled(i)]
    assert result.predictions == 400 and result.labelled == len(joined)
    assert result.unmatched_labels == 5 + sum(1 for i in range(400) if _labelled(i))


def test_auc_matches_all_pairs_with_ties():
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(300), 1)  # many ties
    labels = (rng.random(300) < scores).astype(int)
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in scores[labels == 1] for b in scores[labels == 0]]
    assert fb.auc_score(labels, scores) == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)
    assert fb.auc_score(np.ones(5), np.arange(5)) is None  # one class: undefined, not 0 or 1


def test_missing_slice_values_and_unknown_columns(tmp_path, replay):
    log, labels, _, _ = replay
    some = [dict(label, afam="" if k % 2 else label["afam"]) for k, label in enumerate(labels)]
    config = fb.FeedbackConfig(labels_uri=str(_write_csv(tmp_path / "labels.csv", some)), slice_columns=("afam",))
    result = fb.run_feedback(config, str(log), LogFilter(version=h.VERSION))
    assert MISSING in result.slices["afam"]
    with pytest.raises(PipelineInputError, match=r"slice column\(s\) \['race'\] are neither"):
        fb.run_feedback(fb.FeedbackConfig(labels_uri=config.labels_uri, slice_columns=("race",)), str(log),
                        LogFilter(version=h.VERSION))


def test_unusable_label_files(tmp_path, replay):
    log = str(replay[0])
    with pytest.raises(PipelineInputError, match="does not exist"):
        fb.run_feedback(fb.FeedbackConfig(labels_uri=str(tmp_path / "none.csv")), log, LogFilter())
    bad = tmp_path / "bad.csv"
    bad.write_text("id,outcome\np000001,1\n")
    with pytest.raises(PipelineInputError, match=r"lacks column\(s\) \['label', 'prediction_id'\]"):
        fb.run_feedback(fb.FeedbackConfig(labels_uri=str(bad)), log, LogFilter())
    with pytest.raises(PipelineInputError, match="threshold must be in"):
        fb.FeedbackConfig(labels_uri="x", threshold=2)


def test_feedback_in_the_cli_and_the_component(tmp_path, replay, capsys):
    from components.monitor.__main__ import main
    from components.monitor.component import monitor
    from components.monitor.tests.test_monitor import _Artifact

    log, labels, _, _ = replay
    registry = h.make_registry(tmp_path / "registry")
    labels_csv = str(_write_csv(tmp_path / "labels.csv", labels))
    assert main(["--log", str(log), "--registry", registry, "--labels", labels_csv, "--slices", "afam",
                 "--threshold", str(THRESHOLD), "--reference-rows", "400"]) == 0
    out = capsys.readouterr().out
    assert "## Label feedback" in out and "| afam | yes |" in out
    arts = {name: _Artifact(tmp_path / name) for name in ("m", "r.html", "s.md", "drift")}
    outputs = monitor.python_func(prediction_log_uri=str(log), registry_uri=registry, model_name="model",
                                  drift_metrics=arts["m"], drift_report=arts["r.html"], drift_summary=arts["s.md"],
                                  drift=arts["drift"], labels_uri=labels_csv, slice_columns="afam",
                                  decision_threshold=THRESHOLD, prediction_reference_rows=400)
    assert outputs.decision == "ok"  # the log is the baseline sample itself
    logged = arts["m"].logged
    assert 0.5 < logged["live_auc"] < 1 and logged["unmatched_labels"] == 5.0 and "live_fnr_gap_afam" in logged
    assert json.loads((tmp_path / "drift" / "feedback.json").read_text())["labelled"] == logged["labelled_predictions"]
    assert "Label feedback" in (tmp_path / "r.html").read_text()
