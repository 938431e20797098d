"""Validate data with TFDV: statistics per split, a schema, schema/skew/drift anomalies, a report.

1. One Beam pipeline (any runner, from `beam_args`) reads each split's TFRecords with tfx_bsl's
   TFExampleRecord, computes every split's statistics in one pass (split_statistics.py: TFDV's
   generators keyed by split) and writes `<statistics_dir>/<split>/stats.tfrecord`
   (a binary DatasetFeatureStatisticsList; the registry keeps the train one as the baseline).
2. The schema is the curated one if given, else the champion's, else inferred from the train
   statistics and made robust for small data (presence required only of columns seen in every
   train row). It is written to `<schema_dir>/schema.pbtxt`.
3. tfdv.validate_statistics checks train and eval against the schema (and applies a curated
   schema's own skew/drift comparators); shift.py measures skew (train vs eval) and drift (train
   vs the champion's train statistics) per feature on quantile bins, judged against sampling noise.
4. `<anomalies_dir>/{anomalies.pbtxt,report.json,report.md,report.html}` are written before anything
   is raised; the reports (report.py) list every feature's distance, noise level and bound, and
   show train vs eval figures per feature with the anomalies first.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

from components.common import io as fio
from components.common import names, tfdv_stats
from components.common.errors import DataValidationError, PipelineInputError
from components.ingest.ingest import read_metadata, split_path
from components.push import registry
from components.validate_data import report, shift
from components.validate_data.findings import (
    KIND_DRIFT,
    KIND_SKEW,
    findings_from_anomalies,
    findings_from_shift,
    merge_anomaly_protos,
    merge_findings,
)

log = logging.getLogger(__name__)

TRAINING_ENV = "TRAINING"
SERVING_ENV = "SERVING"

# A categorical (string-domain) feature tolerates up to 10% of its values outside the domain seen in
# the training data. Inferred domains come from a few hundred rows, so a rare but valid category that
# happens to be absent from the train split would otherwise fail every later run; 10% unseen values
# still flags a real change of vocabulary (a renamed category, a new dominant value, type garbage).
MIN_DOMAIN_MASS = 0.9

SKEW_MEANING = (
    "Skew here is train vs eval of one random split of one file: two samples of one distribution, so "
    "it can only reveal a broken split (a sort, a filter, a leak), and is kept as a cheap sanity check. "
    "Training/serving skew is measured by the drift monitor, on the features the model actually served "
    "(the prediction log) against its training statistics; drift here is this run's train data "
    "against the champion's."
)


@dataclasses.dataclass
class ValidationResult:
    passed: bool
    anomalies: list[dict]  # {"feature", "kind": schema|skew|drift, "short", "detail"}
    schema_source: str  # "curated:<uri>" | "champion:<version>" | "inferred"
    row_counts: dict[str, int]
    report_markdown: str
    distances: list[dict] = dataclasses.field(default_factory=list)  # shift.ShiftRow.as_dict() per feature/check


# --------------------------------------------------------------------------------------------------
# Statistics


def stats_uri(statistics_dir: str, split: str) -> str:
    return fio.join(statistics_dir, split, names.STATS_FILE)


def split_files(examples_dir: str) -> dict[str, str]:
    """split → its TFRecord file; a PipelineInputError naming any that is missing."""
    files = {s: split_path(examples_dir, s) for s in names.SPLITS}
    missing = [s for s, uri in files.items() if not fio.exists(uri)]
    if missing:
        raise PipelineInputError(
            f"examples dir {examples_dir}: missing split files: {', '.join(missing)} "
            f"(expected <split>/{names.EXAMPLES_FILE} for each of {list(names.SPLITS)})"
        )
    return files


# Skew and drift are measured on the QUANTILES histogram (shift.py); its 100 equal-count buckets give
# the CDF at every percentile, from which shift.py cuts decile bins. The STANDARD (equal-width)
# histogram only draws the report's sparklines, 30 buckets wide.
QUANTILE_BUCKETS = 100
HISTOGRAM_BUCKETS = 30


def stats_options():
    import tensorflow_data_validation as tfdv

    return tfdv.StatsOptions(num_histogram_buckets=HISTOGRAM_BUCKETS,
                             num_quantiles_histogram_buckets=QUANTILE_BUCKETS)


def generate_statistics(
    examples_dir: str, statistics_dir: str, beam_args: Iterable[str] | None = None
) -> dict:
    """TFDV statistics of every split in ONE Beam pipeline run.

    Writes `<statistics_dir>/<split>/stats.tfrecord` (a binary DatasetFeatureStatisticsList, as
    tfdv.WriteStatisticsToBinaryFile writes it despite the file name) and returns split → the
    statistics loaded back with tfdv.load_stats_binary. `beam_args` pick the runner: the
    DirectRunner locally, Dataflow/Flink/Spark with the same code.
    """
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public import tfxio

    from components.validate_data.split_statistics import SplitStatistics

    inputs = split_files(examples_dir)
    outputs = {split: stats_uri(statistics_dir, split) for split in inputs}
    for split in inputs:
        fio.makedirs(fio.join(statistics_dir, split))
    with beam.Pipeline(options=PipelineOptions(list(beam_args or []))) as pipeline:
        batches = {split: pipeline | f"Read[{split}]" >> tfxio.TFExampleRecord(pattern).BeamSource()
                   for split, pattern in inputs.items()}
        for split, statistics in (batches | "Stats" >> SplitStatistics(stats_options())).items():
            _ = statistics | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(outputs[split])
    return {split: tfdv.load_stats_binary(uri) for split, uri in outputs.items()}


# --------------------------------------------------------------------------------------------------
# Schema


def infer_robust_schema(train_stats, label: str):
    """tfdv.infer_schema plus the relaxations that keep small clean data free of false alarms."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.infer_schema(train_stats, infer_feature_shape=True)
    _relax_inferred_schema(schema)
    ensure_environments(schema, label)
    return schema


def _relax_inferred_schema(schema) -> None:
    """Relaxations of an inferred schema (also applied to the champion's, which was inferred).

    - Categorical features tolerate values unseen in a small train split (MIN_DOMAIN_MASS).
    - Presence follows the training data: a feature seen in every train row must be in every row
      later (a dropped column is a real anomaly), while one that was sometimes absent gets no
      presence requirement (infer_schema's min_count 1 makes a column present in 0.1% of rows an
      anomaly whenever a small split happens to hold none of them). How often such a feature is
      missing is judged by the skew/drift checks instead, against sampling noise.
    infer_schema sets no numeric ranges, so numeric changes surface through those checks too.
    """
    domains = {d.name for d in schema.string_domain}
    for feature in schema.feature:
        kind = feature.WhichOneof("domain_info")
        if (kind == "domain" and feature.domain in domains) or kind == "string_domain":
            feature.distribution_constraints.min_domain_mass = MIN_DOMAIN_MASS
        if feature.HasField("presence") and feature.presence.min_fraction < 1.0:
            feature.presence.min_count = 0
            feature.presence.ClearField("min_fraction")


def ensure_environments(schema, label: str) -> None:
    """TRAINING and SERVING environments with the label absent from SERVING (idempotent)."""
    for env in (TRAINING_ENV, SERVING_ENV):
        if env not in schema.default_environment:
            schema.default_environment.append(env)
    for feature in schema.feature:
        if feature.name == label and SERVING_ENV not in feature.not_in_environment:
            feature.not_in_environment.append(SERVING_ENV)


def prepare_comparators(schema, *, key_column: str, curated: bool) -> dict[str, set[str]]:
    """TFDV's own skew/drift comparators: only a curated schema's, never on the key column.

    The pipeline's thresholds are applied by shift.py (distances on quantile bins, judged against
    sampling noise), so comparators in an inferred or champion schema (older runs wrote TFDV's
    histogram-based ones) are removed. Returns check → the features whose curated comparator TFDV
    applies; shift.py skips those.
    """
    own: dict[str, set[str]] = {KIND_SKEW: set(), KIND_DRIFT: set()}
    for feature in schema.feature:
        for check, field in ((KIND_SKEW, "skew_comparator"), (KIND_DRIFT, "drift_comparator")):
            if curated and feature.name != key_column and feature.HasField(field):
                own[check].add(feature.name)
            else:
                feature.ClearField(field)
    return own


def _is_dir(uri: str) -> bool:
    import os

    if fio.is_local(uri):
        return os.path.isdir(uri)
    import tensorflow as tf

    return tf.io.gfile.isdir(uri)


def choose_schema(curated_schema_uri: str, champion, train_stats, label: str):
    """(schema, source, curated?) — curated, else the champion's, else inferred."""
    import tensorflow_data_validation as tfdv

    if curated_schema_uri:
        if not fio.exists(curated_schema_uri):
            raise PipelineInputError(f"curated schema {curated_schema_uri}: file not found")
        if _is_dir(curated_schema_uri):  # a schema artifact directory
            curated_schema_uri = fio.join(curated_schema_uri, names.SCHEMA_FILE)
            if not fio.exists(curated_schema_uri):
                raise PipelineInputError(f"curated schema {curated_schema_uri}: file not found")
        try:
            schema = tfdv.load_schema_text(curated_schema_uri)
        except Exception as exc:  # text_format.ParseError and friends
            raise PipelineInputError(f"curated schema {curated_schema_uri}: not a schema.pbtxt ({exc})") from exc
        return schema, f"curated:{curated_schema_uri}", True
    if champion is not None:
        if fio.exists(champion.schema_uri):
            schema = tfdv.load_schema_text(champion.schema_uri)
            _relax_inferred_schema(schema)
            return schema, f"champion:{champion.version}", False
        log.warning("champion %s has no %s; inferring a schema", champion.version, names.SCHEMA_FILE)
    return infer_robust_schema(train_stats, label), "inferred", False


# --------------------------------------------------------------------------------------------------
# Entry point


def _read_examples_metadata(examples_dir: str) -> dict:
    uri = fio.join(examples_dir, names.EXAMPLES_METADATA_FILE) if examples_dir else ""
    if not uri or not fio.exists(uri):
        raise PipelineInputError(
            f"examples dir {examples_dir!r} is not an ingest output: no {names.EXAMPLES_METADATA_FILE} "
            "(does the directory exist? run ingest first)"
        )
    return read_metadata(examples_dir)


def _sparse_new_columns(eval_anomalies, train_rows: int, evaluation, noise_quantile: float) -> list[str]:
    """Drop "new column" anomalies of eval features that a train split of `train_rows` rows could
    lack by chance (an inferred schema knows only the columns the train split happened to hold).

    A feature in m of eval's n rows and in none of train's N: if it were spread alike over both
    splits, all m rows would land in eval with probability (n / (N + n))^m. Above
    (1 - noise_quantile) / features (Bonferroni) that is sampling, not a new column. Returns the
    features let through, for the report's notes.
    """
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    new_column = anomalies_pb2.AnomalyInfo.SCHEMA_NEW_COLUMN
    present = tfdv_stats.features_by_name(evaluation)
    eval_rows = int(evaluation.datasets[0].num_examples) if evaluation.datasets else 0
    share = eval_rows / max(eval_rows + train_rows, 1)
    chance = (1 - noise_quantile) / max(len(present), 1)
    dropped = []
    for name, info in list(eval_anomalies.anomaly_info.items()):
        feature = present.get(name)
        kind = feature.WhichOneof("stats") if feature is not None else None
        if not info.reason or any(r.type != new_column for r in info.reason) or kind not in ("num_stats", "string_stats"):
            continue
        seen = int(getattr(feature, kind).common_stats.num_non_missing)
        if share ** seen > chance:
            del eval_anomalies.anomaly_info[name]
            dropped.append(f"{name} ({seen} of {eval_rows} eval rows)")
    return dropped


def thresholds_of(config) -> dict:
    """validate()'s thresholds and noise_quantile from a PipelineConfig (outside the pipeline)."""
    return {
        "skew_jensen_shannon_threshold": config.skew_jensen_shannon_threshold,
        "skew_linf_threshold": config.skew_linf_threshold,
        "drift_jensen_shannon_threshold": config.drift_jensen_shannon_threshold,
        "drift_linf_threshold": config.drift_linf_threshold,
        "noise_quantile": config.data_noise_quantile,
    }


def validate(
    examples_dir: str,
    statistics_dir: str,
    schema_dir: str,
    anomalies_dir: str,
    *,
    skew_jensen_shannon_threshold: float,
    skew_linf_threshold: float,
    drift_jensen_shannon_threshold: float,
    drift_linf_threshold: float,
    noise_quantile: float,
    curated_schema_uri: str = "",
    registry_uri: str = "",
    model_name: str = "model",
    beam_args: list[str] | None = None,
    raise_on_anomalies: bool = True,
) -> ValidationResult:
    """Statistics, schema, schema/skew/drift anomalies and a report for an examples dir.

    Thresholds and noise_quantile: PipelineConfig's fields of those names (see shift.py). Every
    output is written before a DataValidationError is raised (with raise_on_anomalies).
    """
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format

    metadata = _read_examples_metadata(examples_dir)
    split_files(examples_dir)  # a clear error before Beam starts
    label = metadata.get("label", "")
    key_column = metadata.get("key_column", "")

    stats = generate_statistics(examples_dir, statistics_dir, beam_args)
    row_counts = {
        split: int(s.datasets[0].num_examples) if s.datasets else 0 for split, s in stats.items()
    }
    train, evaluation = stats[names.TRAIN], stats[names.EVAL]

    notes: list[str] = [SKEW_MEANING]
    champion = registry.read_champion(registry_uri, model_name)
    schema, schema_source, curated = choose_schema(curated_schema_uri, champion, train, label)
    ensure_environments(schema, label)
    own_comparators = prepare_comparators(schema, key_column=key_column, curated=curated)
    fio.makedirs(schema_dir)
    tfdv.write_schema_text(schema, fio.join(schema_dir, names.SCHEMA_FILE))

    baseline = None
    if champion is None:
        notes.append("No champion in the registry: drift was not checked.")
    elif fio.exists(champion.train_stats_uri):
        baseline = tfdv.load_stats_binary(champion.train_stats_uri)
        notes.append(f"Drift checked against the train statistics of champion {champion.version}.")
    else:
        notes.append(f"Champion {champion.version} has no {names.STATS_FILE}: drift was not checked.")

    # train against the schema (and a curated schema's own skew/drift comparators)
    train_anomalies = tfdv.validate_statistics(
        statistics=train,
        schema=schema,
        environment=TRAINING_ENV,
        serving_statistics=evaluation if own_comparators[KIND_SKEW] else None,
        previous_statistics=baseline if own_comparators[KIND_DRIFT] else None,
    )
    # eval on its own against the schema; it carries labels, so the TRAINING environment applies
    eval_anomalies = tfdv.validate_statistics(statistics=evaluation, schema=schema, environment=TRAINING_ENV)
    if schema_source == "inferred":
        sparse = _sparse_new_columns(eval_anomalies, row_counts[names.TRAIN], evaluation, noise_quantile)
        if sparse:
            notes.append("Columns in eval but in no train row, as rare as chance allows (not anomalies): "
                         + ", ".join(sparse) + ".")

    # the label has no skew check: serving data has no label, so skew of the label means nothing
    distances = shift.compare(train, evaluation, check=KIND_SKEW, numeric_bound=skew_jensen_shannon_threshold,
                              categorical_bound=skew_linf_threshold,
                              skip={key_column, label} | own_comparators[KIND_SKEW], noise_quantile=noise_quantile)
    if baseline is not None:
        distances += shift.compare(baseline, train, check=KIND_DRIFT, numeric_bound=drift_jensen_shannon_threshold,
                                   categorical_bound=drift_linf_threshold,
                                   skip={key_column} | own_comparators[KIND_DRIFT], noise_quantile=noise_quantile)

    findings = merge_findings(
        findings_from_anomalies(train_anomalies, schema, names.TRAIN),
        findings_from_anomalies(eval_anomalies, schema, names.EVAL),
        findings_from_shift(distances),
    )
    report_md = report.render_markdown(findings, schema_source, row_counts, notes, distances)
    report_html = report.render_html(
        findings, schema_source, row_counts, notes,
        summaries={split: report.feature_summaries(s) for split, s in stats.items()},
        measurements=report.distance_measurements(train_anomalies, distances),
    )
    result = ValidationResult(
        passed=not findings,
        anomalies=[f.as_dict() for f in findings],
        schema_source=schema_source,
        row_counts=row_counts,
        report_markdown=report_md,
        distances=[row.as_dict() for row in distances],
    )

    fio.makedirs(anomalies_dir)
    merged = merge_anomaly_protos(train_anomalies, eval_anomalies, names.EVAL)
    fio.write_text_atomic(fio.join(anomalies_dir, names.ANOMALIES_FILE), text_format.MessageToString(merged))
    fio.write_json_atomic(fio.join(anomalies_dir, names.REPORT_JSON_FILE), dataclasses.asdict(result))
    fio.write_text_atomic(fio.join(anomalies_dir, names.REPORT_MD_FILE), report_md)
    fio.write_text_atomic(fio.join(anomalies_dir, names.REPORT_HTML_FILE), report_html)

    if findings and raise_on_anomalies:
        raise DataValidationError(
            report_md,
            anomalies={
                "anomalies": result.anomalies,
                "schema_source": schema_source,
                "row_counts": row_counts,
            },
        )
    return result
