"""validate_data on the committed HMDA sample with real TFDV and Beam (DirectRunner, one worker)."""

from __future__ import annotations

import json
import os
import re
import shutil

import pandas as pd
import pytest

from components.common import names
from components.common.config import PipelineConfig
from components.common.errors import DataValidationError, PipelineInputError
from components.validate_data.findings import collect_anomalies
from components.validate_data.validate import ValidationResult, thresholds_of, validate

BEAM_ARGS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
THRESHOLDS = thresholds_of(PipelineConfig())  # the pipeline's defaults


def _ingest(csv_path, out_dir, **kwargs) -> str:
    from components.ingest.ingest import ingest

    ingest(str(csv_path), str(out_dir), label="deny", key_column="rownames", slices=["afam"], **kwargs)
    return str(out_dir)


def _mutated_examples(hmda_csv, tmp, name, mutate) -> str:
    """The HMDA sample changed by `mutate`, written as CSV and ingested (hash split)."""
    os.makedirs(tmp / name, exist_ok=True)
    csv_path = tmp / name / "data.csv"
    mutate(pd.read_csv(hmda_csv)).to_csv(csv_path, index=False)
    return _ingest(csv_path, tmp / name / "examples")


def _run(examples, out, **kwargs) -> ValidationResult:
    out = str(out)
    return validate(
        examples,
        os.path.join(out, "statistics"),
        os.path.join(out, "schema"),
        os.path.join(out, "anomalies"),
        beam_args=BEAM_ARGS,
        **{**THRESHOLDS, **kwargs},
    )


def _features(anomalies: list[dict], kind: str | None = None) -> set[str]:
    return {a["feature"] for a in anomalies if kind is None or a["kind"] == kind}


@pytest.fixture(scope="module")
def clean_run(examples_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    return str(out), _run(examples_dir, out)


# --- 1. clean data -------------------------------------------------------------------------


def test_clean_data_passes_and_writes_every_output(clean_run, examples_dir):
    import tensorflow_data_validation as tfdv

    out, result = clean_run
    assert result.passed and result.anomalies == [], result.report_markdown
    assert result.schema_source == "inferred"
    metadata = json.load(open(os.path.join(examples_dir, names.EXAMPLES_METADATA_FILE)))
    assert result.row_counts == metadata["row_counts"]
    for split in names.SPLITS:
        stats = tfdv.load_stats_binary(os.path.join(out, "statistics", split, names.STATS_FILE))
        assert stats.datasets[0].num_examples == metadata["row_counts"][split]
        assert {f.path.step[0] for f in stats.datasets[0].features} >= {"lvrat", "chist", "deny"}
    report = json.load(open(os.path.join(out, "anomalies", names.REPORT_JSON_FILE)))
    assert report["passed"] is True and report["schema_source"] == "inferred"
    assert os.path.exists(os.path.join(out, "anomalies", names.ANOMALIES_FILE))
    assert "passed" in open(os.path.join(out, "anomalies", names.REPORT_MD_FILE)).read()
    page = open(os.path.join(out, "anomalies", names.REPORT_HTML_FILE)).read()
    assert page.startswith("<!DOCTYPE html>") and "Data validation passed" in page


def test_html_report_shows_each_split_and_every_measured_distance(clean_run):
    """Figures on the page come from the statistics files; every skew distance with its limit."""
    import tensorflow_data_validation as tfdv

    from components.validate_data import report as r

    out, result = clean_run
    page = open(os.path.join(out, "anomalies", names.REPORT_HTML_FILE)).read()
    stats = {s: tfdv.load_stats_binary(os.path.join(out, "statistics", s, names.STATS_FILE)) for s in names.SPLITS}
    lvrat = {s: tfdv.get_feature_stats(stats[s].datasets[0], tfdv.FeaturePath(["lvrat"])).num_stats
             for s in names.SPLITS}
    for split in names.SPLITS:  # train and eval side by side
        assert f">{lvrat[split].mean:.4f}<" in page and f">{lvrat[split].std_dev:.4f}<" in page
    summaries = r.feature_summaries(stats[names.TRAIN])
    assert summaries["afam"]["kind"] == "categorical" and summaries["lvrat"]["kind"] == "numeric"
    from components.validate_data.validate import HISTOGRAM_BUCKETS

    assert len(summaries["lvrat"]["histogram"]) == HISTOGRAM_BUCKETS
    top = summaries["afam"]["top_values"][0]
    assert f"{top[0]} {top[1] / summaries['afam']['count']:.0%}" in page
    # every compared feature but the key column and the label (no skew check) has a skew row
    skew = {d["feature"]: d for d in result.distances if d["check"] == "skew"}
    assert set(skew) == set(summaries) - {"rownames", "deny"}
    markdown = open(os.path.join(out, "anomalies", names.REPORT_MD_FILE)).read()
    for feature, d in skew.items():
        assert not d["anomalous"] and d["noise"] > 0 and d["limit"] == max(d["bound"], d["noise"])
        limit = f"max(bound {d['bound']:g}, noise {d['noise']:.3g})"
        metric = "JS" if d["kind"] == "numeric" else "L∞"
        assert f"skew {metric} {d['value']:.3g} ≤ {limit}" in page, feature
        assert f"| {feature} | skew | {metric} | {d['value']:.3g} | {d['noise']:.3g} | {d['bound']:g} | ok |" in markdown
    assert "can only reveal a broken split" in page
    assert page.count("<svg") == sum(1 for s in summaries.values() if s["kind"] == "numeric")


def test_inferred_schema_excludes_the_label_from_serving(clean_run):
    import tensorflow_data_validation as tfdv

    out, _ = clean_run
    schema = tfdv.load_schema_text(os.path.join(out, "schema", names.SCHEMA_FILE))
    assert set(schema.default_environment) == {"TRAINING", "SERVING"}
    assert list(tfdv.get_feature(schema, "deny").not_in_environment) == ["SERVING"]
    assert "SERVING" not in tfdv.get_feature(schema, "lvrat").not_in_environment
    # skew and drift are shift.py's: no TFDV comparator in an inferred schema
    for feature in schema.feature:
        assert not feature.HasField("skew_comparator") and not feature.HasField("drift_comparator")
    # tolerant of small samples (see _relax_inferred_schema)
    assert tfdv.get_feature(schema, "afam").distribution_constraints.min_domain_mass == pytest.approx(0.9)


# --- 2. skew between train and a drifted eval file ----------------------------------------------


def test_drifted_eval_file_raises_naming_the_feature_after_writing_reports(hmda_csv, tmp_path):
    frame = pd.read_csv(hmda_csv)
    train_csv, eval_csv = tmp_path / "train.csv", tmp_path / "eval.csv"
    frame.iloc[:600].to_csv(train_csv, index=False)
    frame.iloc[600:].assign(lvrat=lambda d: d["lvrat"] * 3 + 2).to_csv(eval_csv, index=False)
    examples = _ingest(train_csv, tmp_path / "examples", eval_data_uri=str(eval_csv))

    with pytest.raises(DataValidationError) as raised:
        _run(examples, tmp_path / "out")
    assert "lvrat (skew)" in str(raised.value)
    assert "lvrat" in _features(raised.value.anomalies["anomalies"], "skew")
    report = json.load(open(tmp_path / "out" / "anomalies" / names.REPORT_JSON_FILE))
    assert report["passed"] is False and "lvrat" in _features(report["anomalies"], "skew")
    markdown = (tmp_path / "out" / "anomalies" / names.REPORT_MD_FILE).read_text()
    assert "| lvrat | skew |" in markdown
    rows = re.search(r"train (\d+), validation (\d+), eval 200", markdown)  # validation carved from train.csv
    assert rows and int(rows[1]) + int(rows[2]) == 600
    assert "lvrat" in (tmp_path / "out" / "anomalies" / names.ANOMALIES_FILE).read_text()
    page = (tmp_path / "out" / "anomalies" / names.REPORT_HTML_FILE).read_text()
    assert "Anomalies (" in page and '<span class="badge bad">lvrat</span>' in page
    lvrat = next(d for d in report["distances"] if d["feature"] == "lvrat" and d["check"] == "skew")
    assert lvrat["anomalous"] and lvrat["value"] > 0.5 > lvrat["noise"]
    assert f"skew JS {lvrat['value']:.3g} &gt; max(bound 0.01, noise {lvrat['noise']:.3g})" in page


# --- 3./4. a curated schema catches a missing column and a wrong type ---------------------------------


def test_curated_schema_catches_a_missing_column(clean_run, hmda_csv, tmp_path):
    out, _ = clean_run
    curated = os.path.join(out, "schema", names.SCHEMA_FILE)
    examples = _mutated_examples(hmda_csv, tmp_path, "no_hirat", lambda d: d.drop(columns=["hirat"]))
    with pytest.raises(DataValidationError, match=r"hirat \(schema\)") as raised:
        _run(examples, tmp_path / "out", curated_schema_uri=curated)
    assert _features(raised.value.anomalies["anomalies"]) == {"hirat"}
    report = json.load(open(tmp_path / "out" / "anomalies" / names.REPORT_JSON_FILE))
    assert report["schema_source"] == f"curated:{curated}"


def test_curated_schema_catches_a_numeric_column_turned_to_words(clean_run, hmda_csv, tmp_path):
    out, _ = clean_run
    words = lambda d: d.assign(chist=d["chist"].map(lambda v: "low" if v <= 2 else "high"))  # noqa: E731
    examples = _mutated_examples(hmda_csv, tmp_path, "chist_words", words)
    result = _run(
        examples,
        tmp_path / "out",
        curated_schema_uri=os.path.join(out, "schema"),  # a schema artifact directory works too
        raise_on_anomalies=False,
    )
    assert not result.passed
    assert "chist" in _features(result.anomalies, "schema")
    chist = next(a for a in result.anomalies if a["feature"] == "chist")
    assert "INT" in chist["detail"] or "type" in chist["short"].lower()


def test_sparse_columns_may_be_absent_from_a_split(hmda_csv, tmp_path):
    """A column filled in 3 of 800 rows, all in train, and one filled in 3 rows, all in eval: a
    small split that holds none of a rare column is sampling, not a dropped or a new column. One
    filled in 30 eval rows and no train row is a new column."""
    import numpy as np

    from components.common.config import PipelineConfig
    from components.ingest.ingest import split_buckets

    config = PipelineConfig()

    def sparse(frame):
        buckets = split_buckets(frame, "rownames")
        is_eval = buckets < config.eval_fraction
        is_train = buckets >= config.eval_fraction + config.validation_fraction
        frame = frame.assign(broker_note=None, rare_fee=np.nan)
        frame.loc[np.flatnonzero(is_train)[:3], "broker_note"] = "see file"
        frame.loc[np.flatnonzero(is_eval)[:3], "rare_fee"] = 125.0
        frame.loc[np.flatnonzero(is_eval)[:30], "new_source"] = "web"
        return frame

    result = _run(_mutated_examples(hmda_csv, tmp_path, "sparse", sparse), tmp_path / "out", raise_on_anomalies=False)
    assert [(a["feature"], a["short"]) for a in result.anomalies] == [("new_source", "New column")], result.report_markdown
    assert "rare_fee (3 of" in result.report_markdown  # let through, and said so
    broker = next(d for d in result.distances if d["feature"] == "broker_note")
    assert broker["missing_fraction"] == 1.0 and not broker["anomalous"]


def test_curated_comparators_are_applied_by_tfdv_and_not_twice(clean_run, examples_dir, tmp_path):
    """A curated schema's own skew comparator wins for its feature (TFDV judges it); the other
    features get the pipeline's checks."""
    import tensorflow_data_validation as tfdv

    out, _ = clean_run
    schema = tfdv.load_schema_text(os.path.join(out, "schema", names.SCHEMA_FILE))
    tfdv.get_feature(schema, "lvrat").skew_comparator.jensen_shannon_divergence.threshold = 1e-9
    curated = str(tmp_path / "schema.pbtxt")
    tfdv.write_schema_text(schema, curated)
    result = _run(examples_dir, tmp_path / "out", curated_schema_uri=curated, raise_on_anomalies=False)
    assert _features(result.anomalies, "skew") == {"lvrat"}
    assert "Jensen-Shannon divergence" in next(a["detail"] for a in result.anomalies if a["feature"] == "lvrat")
    skew = {d["feature"] for d in result.distances if d["check"] == "skew"}
    assert "lvrat" not in skew and {"pirat", "afam"} <= skew


# --- 5. drift against the champion's training statistics --------------------------------------------


@pytest.fixture(scope="module")
def fake_registry(clean_run, tmp_path_factory):
    out, _ = clean_run
    registry = tmp_path_factory.mktemp("registry")
    version_dir = registry / "model" / "versions" / "v1"
    version_dir.mkdir(parents=True)
    shutil.copy(os.path.join(out, "schema", names.SCHEMA_FILE), version_dir / names.SCHEMA_FILE)
    shutil.copy(os.path.join(out, "statistics", names.TRAIN, names.STATS_FILE), version_dir / names.STATS_FILE)
    (registry / "model" / names.CHAMPION_FILE).write_text(json.dumps({"version": "v1", "path": "versions/v1"}))
    return str(registry)


def test_shifted_training_data_drifts_from_the_champion(fake_registry, hmda_csv, tmp_path):
    shifted = lambda d: d.assign(lvrat=d["lvrat"] * 3 + 2)  # noqa: E731  train and eval alike: no skew
    examples = _mutated_examples(hmda_csv, tmp_path, "shifted", shifted)
    with pytest.raises(DataValidationError, match=r"lvrat \(drift\)") as raised:
        _run(examples, tmp_path / "out", registry_uri=fake_registry)
    anomalies = raised.value.anomalies["anomalies"]
    assert _features(anomalies, "drift") == {"lvrat"}
    assert _features(anomalies, "skew") == set()
    report = json.load(open(tmp_path / "out" / "anomalies" / names.REPORT_JSON_FILE))
    assert report["schema_source"] == "champion:v1"


def test_unshifted_data_passes_against_the_champion(fake_registry, examples_dir, tmp_path):
    result = _run(examples_dir, tmp_path / "out", registry_uri=fake_registry)
    assert result.passed, result.report_markdown
    assert result.schema_source == "champion:v1"


# --- inputs and pure helpers (no Beam) --------------------------------------------------------------


def test_missing_examples_or_split_is_an_input_error(examples_dir, tmp_path):
    with pytest.raises(PipelineInputError, match="metadata.json"):
        _run(str(tmp_path / "nowhere"), tmp_path / "out")
    partial = tmp_path / "partial"
    shutil.copytree(examples_dir, partial)
    shutil.rmtree(partial / names.EVAL)
    with pytest.raises(PipelineInputError, match="missing split files: eval"):
        _run(str(partial), tmp_path / "out")


def test_collect_anomalies_classifies_and_dedupes():
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    Type = anomalies_pb2.AnomalyInfo.Type
    train = anomalies_pb2.Anomalies()
    info = train.anomaly_info["pirat"]
    for short, text in [
        ("High Linfty distance between training and serving", "The Linfty distance between training and serving is 0.3"),
        ("High Linfty distance between current and previous", "The Linfty distance between current and previous is 0.2"),
    ]:
        reason = info.reason.add(type=Type.COMPARATOR_L_INFTY_HIGH, short_description=short, description=text)
        assert reason.type == Type.COMPARATOR_L_INFTY_HIGH
    train.anomaly_info["hirat"].reason.add(
        type=Type.SCHEMA_MISSING_COLUMN, short_description="Column dropped", description="absent"
    )
    evaluation = anomalies_pb2.Anomalies()
    evaluation.anomaly_info["hirat"].CopyFrom(train.anomaly_info["hirat"])  # the same finding twice
    found = collect_anomalies(train, evaluation)
    assert sorted((a["feature"], a["kind"]) for a in found) == [
        ("hirat", "schema"), ("pirat", "drift"), ("pirat", "skew")
    ]
    hirat = next(a for a in found if a["feature"] == "hirat")
    assert hirat["short"] == "Column dropped" and hirat["detail"] == "absent"


def test_component_interface_uses_the_shared_names():
    from components.validate_data.component import validate_data

    spec = validate_data.component_spec
    assert names.EXAMPLES in spec.inputs
    assert set(spec.outputs) == {
        names.STATISTICS, names.SCHEMA, names.ANOMALIES, names.VALIDATION_REPORT, names.VALIDATION_HTML
    }


# --- the KFP wrapper, called as a plain function with local artifacts ---------------------------------


def _artifacts(tmp_path, examples):
    from kfp.dsl import HTML, Artifact, Dataset, Markdown

    outputs = {
        names.STATISTICS: Artifact(uri=str(tmp_path / names.STATISTICS)),
        names.SCHEMA: Artifact(uri=str(tmp_path / names.SCHEMA)),
        names.ANOMALIES: Artifact(uri=str(tmp_path / names.ANOMALIES)),
        names.VALIDATION_REPORT: Markdown(uri=str(tmp_path / "report.md")),
        names.VALIDATION_HTML: HTML(uri=str(tmp_path / "report.html")),
    }
    return Dataset(uri=str(examples)), outputs


def _call_component(examples, outputs, schema_uri=""):
    from components.validate_data.component import validate_data

    validate_data.python_func(
        examples=examples,
        schema_uri=schema_uri,
        registry_uri="",
        model_name="model",
        **{name: value for name, value in THRESHOLDS.items() if name != "noise_quantile"},
        data_noise_quantile=THRESHOLDS["noise_quantile"],
        beam_args=BEAM_ARGS,
        **outputs,
    )


def test_component_writes_outputs_and_metadata(examples_dir, tmp_path):
    examples, outputs = _artifacts(tmp_path, examples_dir)
    _call_component(examples, outputs)
    metadata = json.load(open(os.path.join(examples_dir, names.EXAMPLES_METADATA_FILE)))
    for artifact in outputs.values():
        assert artifact.metadata["row_counts"] == metadata["row_counts"]
        assert artifact.metadata["anomaly_count"] == 0 and artifact.metadata["passed"] is True
    assert os.path.exists(os.path.join(outputs[names.SCHEMA].path, names.SCHEMA_FILE))
    assert os.path.exists(os.path.join(outputs[names.STATISTICS].path, names.TRAIN, names.STATS_FILE))
    assert "Data validation passed" in open(outputs[names.VALIDATION_REPORT].path).read()
    assert "Data validation passed" in open(outputs[names.VALIDATION_HTML].path).read()


def test_component_failure_keeps_report_metadata_and_reason(clean_run, hmda_csv, tmp_path):
    from components.common.failures import FAILURE_FILE

    out, _ = clean_run
    data = _mutated_examples(hmda_csv, tmp_path, "no_unemp", lambda d: d.drop(columns=["unemp"]))
    examples, outputs = _artifacts(tmp_path / "outputs", data)
    with pytest.raises(DataValidationError, match=r"unemp \(schema\)"):
        _call_component(examples, outputs, schema_uri=os.path.join(out, "schema", names.SCHEMA_FILE))
    assert outputs[names.ANOMALIES].metadata["anomaly_count"] == 1
    assert "| unemp | schema |" in open(outputs[names.VALIDATION_REPORT].path).read()
    page = open(outputs[names.VALIDATION_HTML].path).read()  # written before the error was raised
    assert '<span class="badge bad">unemp</span>' in page and outputs[names.VALIDATION_HTML].metadata["passed"] is False
    failure = json.load(open(os.path.join(outputs[names.ANOMALIES].path, FAILURE_FILE)))
    assert failure["error_type"] == "DataValidationError" and "unemp" in failure["message"]
