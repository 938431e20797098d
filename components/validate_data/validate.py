"""Validate data with TFDV: statistics per split, a schema, schema/skew/drift anomalies, a report.

1. One Beam pipeline (any runner, from `beam_args`) reads each split's TFRecords with tfx_bsl's
   TFExampleRecord, runs tfdv.GenerateStatistics and writes `<statistics_dir>/<split>/stats.tfrecord`
   (a binary DatasetFeatureStatisticsList; the registry keeps the train one as the baseline).
2. The schema is the curated one if given, else the champion's, else inferred from the train
   statistics and made robust for small data. It is written to `<schema_dir>/schema.pbtxt`.
3. tfdv.validate_statistics checks train against the schema, train vs eval for skew (eval stands for
   serving-like data) and train vs the champion's train statistics for drift; eval is also checked
   against the schema on its own.
4. `<anomalies_dir>/{anomalies.pbtxt,report.json,report.md,report.html}` are written before anything
   is raised; report.html (a self-contained page) shows train vs eval figures per feature, each
   skew/drift distance TFDV measured against its threshold, and the anomalies first.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

from components.common import io as fio
from components.common import names
from components.common.errors import DataValidationError, PipelineInputError
from components.ingest.ingest import read_metadata, split_path
from components.push import registry

log = logging.getLogger(__name__)

TRAINING_ENV = "TRAINING"
SERVING_ENV = "SERVING"

# A categorical (string-domain) feature tolerates up to 10% of its values outside the domain seen in
# the training data. Inferred domains come from a few hundred rows, so a rare but valid category that
# happens to be absent from the train split would otherwise fail every later run; 10% unseen values
# still flags a real change of vocabulary (a renamed category, a new dominant value, type garbage).
MIN_DOMAIN_MASS = 0.9

KIND_SCHEMA, KIND_SKEW, KIND_DRIFT = "schema", "skew", "drift"
_COMPARATOR_TYPES = {
    "COMPARATOR_L_INFTY_HIGH": "L-infinity distance",
    "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH": "Jensen-Shannon divergence",
    "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH": "normalized absolute difference",
    "COMPARATOR_CONTROL_DATA_MISSING": "",
    "COMPARATOR_TREATMENT_DATA_MISSING": "",
    "COMPARATOR_LOW_NUM_EXAMPLES": "",
    "COMPARATOR_HIGH_NUM_EXAMPLES": "",
}
DATASET_FEATURE = "__dataset__"


@dataclasses.dataclass
class ValidationResult:
    passed: bool
    anomalies: list[dict]  # {"feature", "kind": schema|skew|drift, "short", "detail"}
    schema_source: str  # "curated:<uri>" | "champion:<version>" | "inferred"
    row_counts: dict[str, int]
    report_markdown: str


@dataclasses.dataclass
class _Finding:
    feature: str
    kind: str
    short: str
    expected: str
    seen_by_split: dict[str, str]  # split → TFDV's description there

    @property
    def splits(self) -> list[str]:
        return list(self.seen_by_split)

    @property
    def seen(self) -> str:
        """TFDV's description; per split when the splits differ ("train: ... | eval: ...")."""
        texts = list(dict.fromkeys(self.seen_by_split.values()))
        if len(texts) == 1:
            return texts[0]
        return " | ".join(f"{split}: {text}" for split, text in self.seen_by_split.items())

    def as_dict(self) -> dict:
        where = "/".join(self.splits)
        detail = f"expected {self.expected}; seen in {where}: {self.seen}" if self.expected else self.seen
        return {"feature": self.feature, "kind": self.kind, "short": self.short, "detail": detail}


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


# Jensen-Shannon skew/drift is computed from the numeric histograms, so their resolution decides
# false alarms. Measured on random train/eval splits of AER/HMDA (491 eval rows) and of the 800-row
# fixture (179), with lvrat shifted to check detection: 10 buckets (TFDV's default) flags pirat and
# hirat on the full data (one outlier stretches the equal-width buckets), 50 flags pirat on the
# fixture (too few rows per bucket); 20 and 30 were clean on both and caught the shift.
HISTOGRAM_BUCKETS = 30


def stats_options():
    import tensorflow_data_validation as tfdv

    return tfdv.StatsOptions(num_histogram_buckets=HISTOGRAM_BUCKETS)


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

    inputs = split_files(examples_dir)
    outputs = {split: stats_uri(statistics_dir, split) for split in inputs}
    for split in inputs:
        fio.makedirs(fio.join(statistics_dir, split))
    with beam.Pipeline(options=PipelineOptions(list(beam_args or []))) as pipeline:
        for split, pattern in inputs.items():
            _ = (
                pipeline
                | f"Read[{split}]" >> tfxio.TFExampleRecord(pattern).BeamSource()
                | f"Stats[{split}]" >> tfdv.GenerateStatistics(stats_options())
                | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(outputs[split])
            )
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
    """Tolerate values of categorical features unseen in a small train split (MIN_DOMAIN_MASS).

    Presence stays as inferred: a feature seen in every train row must be in every row later (a
    dropped column, or missing values where there were none, is a real anomaly). infer_schema sets
    no numeric ranges, so numeric changes surface through the skew/drift comparators instead.
    """
    domains = {d.name for d in schema.string_domain}
    for feature in schema.feature:
        kind = feature.WhichOneof("domain_info")
        if (kind == "domain" and feature.domain in domains) or kind == "string_domain":
            feature.distribution_constraints.min_domain_mass = MIN_DOMAIN_MASS


def ensure_environments(schema, label: str) -> None:
    """TRAINING and SERVING environments with the label absent from SERVING (idempotent)."""
    for env in (TRAINING_ENV, SERVING_ENV):
        if env not in schema.default_environment:
            schema.default_environment.append(env)
    for feature in schema.feature:
        if feature.name == label and SERVING_ENV not in feature.not_in_environment:
            feature.not_in_environment.append(SERVING_ENV)


def set_comparators(
    schema,
    *,
    label: str,
    key_column: str,
    skew_js: float,
    skew_linf: float,
    drift_js: float,
    drift_linf: float,
    keep_existing: bool,
) -> None:
    """Skew (train vs eval) and drift (train vs champion train) comparators per feature.

    Jensen–Shannon divergence for numeric (INT/FLOAT) features, L-infinity for categorical (BYTES).
    The key column (a row id) gets none; the label gets a drift comparator only (serving data has
    no label, so train/serving skew of the label is meaningless). With keep_existing (a curated
    schema) comparators already in the schema win over the pipeline thresholds.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    for feature in schema.feature:
        if feature.name == key_column:
            feature.ClearField("skew_comparator")
            feature.ClearField("drift_comparator")
            continue
        categorical = feature.type == schema_pb2.BYTES
        for field, js, linf in (
            ("skew_comparator", skew_js, skew_linf),
            ("drift_comparator", drift_js, drift_linf),
        ):
            if field == "skew_comparator" and feature.name == label:
                feature.ClearField(field)
                continue
            if keep_existing and feature.HasField(field):
                continue
            comparator = getattr(feature, field)
            comparator.Clear()
            if categorical:
                comparator.infinity_norm.threshold = linf
            else:
                comparator.jensen_shannon_divergence.threshold = js


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
            return tfdv.load_schema_text(champion.schema_uri), f"champion:{champion.version}", False
        log.warning("champion %s has no %s; inferring a schema", champion.version, names.SCHEMA_FILE)
    return infer_robust_schema(train_stats, label), "inferred", False


# --------------------------------------------------------------------------------------------------
# Anomalies → findings


def _schema_expectation(schema, feature_name: str) -> str:
    """A short human description of what the schema expects of a feature."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    feature = next((f for f in schema.feature if f.name == feature_name), None)
    if feature is None:
        return "feature not in the schema"
    parts = [schema_pb2.FeatureType.Name(feature.type)]
    if feature.HasField("presence") and feature.presence.min_fraction:
        parts.append(f"present in >= {feature.presence.min_fraction:.0%} of examples")
    elif feature.HasField("presence") and feature.presence.min_count:
        parts.append(f"present in >= {feature.presence.min_count} examples")
    if feature.HasField("shape"):
        parts.append("shape [" + ",".join(str(d.size) for d in feature.shape.dim) + "]")
    elif feature.HasField("value_count"):
        vc = feature.value_count
        parts.append(f"{vc.min}..{vc.max or 'any'} values")
    kind = feature.WhichOneof("domain_info")
    if kind == "domain":
        values = next((list(d.value) for d in schema.string_domain if d.name == feature.domain), [])
        shown = ", ".join(values[:8]) + (", ..." if len(values) > 8 else "")
        mass = feature.distribution_constraints.min_domain_mass or 1.0
        parts.append(f"values in {{{shown}}} (>= {mass:.0%} of values)")
    elif kind == "string_domain":
        values = list(feature.string_domain.value)
        parts.append("values in {" + ", ".join(values[:8]) + (", ..." if len(values) > 8 else "") + "}")
    elif kind == "int_domain" and (feature.int_domain.HasField("min") or feature.int_domain.HasField("max")):
        parts.append(f"range [{feature.int_domain.min}, {feature.int_domain.max}]")
    elif kind == "float_domain" and (feature.float_domain.HasField("min") or feature.float_domain.HasField("max")):
        parts.append(f"range [{feature.float_domain.min}, {feature.float_domain.max}]")
    elif kind == "bool_domain":
        parts.append("boolean 0/1")
    if feature.not_in_environment:
        parts.append("not in " + ", ".join(feature.not_in_environment))
    return ", ".join(parts)


def _comparator_expectation(schema, feature_name: str, kind: str, reason_type: str) -> str:
    feature = next((f for f in schema.feature if f.name == feature_name), None)
    metric = _COMPARATOR_TYPES.get(reason_type) or "distribution distance"
    pair = "train vs eval" if kind == KIND_SKEW else "train vs champion's train data"
    if feature is None:
        return f"{metric} within threshold ({pair})"
    comparator = feature.skew_comparator if kind == KIND_SKEW else feature.drift_comparator
    threshold = None
    for field in ("infinity_norm", "jensen_shannon_divergence", "normalized_abs_difference"):
        if comparator.HasField(field):
            threshold = getattr(comparator, field).threshold
            break
    if threshold is None:
        return f"{metric} within threshold ({pair})"
    return f"{metric} <= {threshold:g} ({pair})"


def _reason_kind(reason_type: str, short: str, description: str) -> str:
    if reason_type in _COMPARATOR_TYPES:
        # TFDV says "between training and serving" for skew, "between current and previous" for drift
        return KIND_DRIFT if "previous" in f"{short} {description}".lower() else KIND_SKEW
    return KIND_SCHEMA


def findings_from_anomalies(anomalies, schema, split: str) -> list[_Finding]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    infos = [(name, info) for name, info in sorted(anomalies.anomaly_info.items())]
    if anomalies.HasField("dataset_anomaly_info"):
        infos.append((DATASET_FEATURE, anomalies.dataset_anomaly_info))
    found = []
    for name, info in infos:
        reasons = list(info.reason) or [None]
        for reason in reasons:
            if reason is None:
                reason_type, short, description = "UNKNOWN_TYPE", info.short_description, info.description
            else:
                reason_type = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
                short, description = reason.short_description, reason.description
            kind = _reason_kind(reason_type, short, description)
            if schema is None:
                expected = ""
            elif kind == KIND_SCHEMA:
                expected = _schema_expectation(schema, name) if name != DATASET_FEATURE else "dataset constraints"
            else:
                expected = _comparator_expectation(schema, name, kind, reason_type)
            found.append(_Finding(name, kind, short, expected, {split: description.strip()}))
    return found


def merge_findings(*groups: list[_Finding]) -> list[_Finding]:
    """One finding per (feature, kind, short); the same problem in several splits is listed once."""
    merged: dict[tuple[str, str, str], _Finding] = {}
    for group in groups:
        for f in group:
            key = (f.feature, f.kind, f.short)
            if key not in merged:
                merged[key] = dataclasses.replace(f, seen_by_split=dict(f.seen_by_split))
                continue
            for split, text in f.seen_by_split.items():
                merged[key].seen_by_split.setdefault(split, text)
    order = {KIND_SCHEMA: 0, KIND_SKEW: 1, KIND_DRIFT: 2}
    return sorted(merged.values(), key=lambda f: (order[f.kind], f.feature, f.short))


def collect_findings(train_anomalies, eval_anomalies, schema=None) -> list[_Finding]:
    """Findings of the train validation (schema, skew, drift) and the eval one (schema), merged."""
    return merge_findings(
        findings_from_anomalies(train_anomalies, schema, names.TRAIN),
        findings_from_anomalies(eval_anomalies, schema, names.EVAL),
    )


def collect_anomalies(train_anomalies, eval_anomalies, schema=None) -> list[dict]:
    """{"feature", "kind", "short", "detail"} per distinct anomaly; detail says expected vs seen."""
    return [f.as_dict() for f in collect_findings(train_anomalies, eval_anomalies, schema)]


def merge_anomaly_protos(main, extra, extra_split: str):
    """`main` plus the reasons of `extra` not already in it (descriptions tagged with the split)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    merged = anomalies_pb2.Anomalies()
    merged.CopyFrom(main)
    for name, info in extra.anomaly_info.items():
        if name in merged.anomaly_info:
            target = merged.anomaly_info[name]
            known = {(r.type, r.description) for r in target.reason}
            for reason in info.reason:
                if (reason.type, reason.description) not in known:
                    added = target.reason.add()
                    added.CopyFrom(reason)
                    added.description = f"[{extra_split}] {reason.description}"
        else:
            target = merged.anomaly_info[name]
            target.CopyFrom(info)
            for reason in target.reason:
                reason.description = f"[{extra_split}] {reason.description}"
            target.description = f"[{extra_split}] {info.description}"
    if extra.HasField("dataset_anomaly_info") and not merged.HasField("dataset_anomaly_info"):
        merged.dataset_anomaly_info.CopyFrom(extra.dataset_anomaly_info)
    return merged


# --------------------------------------------------------------------------------------------------
# Report


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_line(findings: list[_Finding]) -> str:
    if not findings:
        return "Data validation passed: no schema, skew or drift anomalies."
    offenders = ", ".join(f"{f.feature} ({f.kind})" for f in findings)
    return f"Data validation failed: {len(findings)} anomalies: {offenders}."


def render_markdown(
    findings: list[_Finding], schema_source: str, row_counts: dict[str, int], notes: list[str]
) -> str:
    rows = ", ".join(f"{split} {count}" for split, count in row_counts.items())
    lines = [
        "# Data validation report",
        "",
        summary_line(findings),
        "",
        f"- Schema used: `{schema_source}`",
        f"- Rows per split: {rows}",
    ]
    lines += [f"- {note}" for note in notes]
    if findings:
        lines += [
            "",
            "## Anomalies",
            "",
            "| feature | kind | what was expected | what was seen |",
            "|---|---|---|---|",
        ]
        for f in findings:
            seen = f"{f.short} (in {'/'.join(f.splits)}): {f.seen}"
            lines.append(f"| {_cell(f.feature)} | {f.kind} | {_cell(f.expected)} | {_cell(seen)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# HTML report (the KFP UI renders it as the validation_html artifact)

_MEASUREMENT_METRICS = {  # short names for the table; the page spells them out once
    "L_INFTY": "L∞",
    "JENSEN_SHANNON_DIVERGENCE": "JS",
    "NORMALIZED_ABSOLUTE_DIFFERENCE": "NAD",
}
_DISTANCE_LEGEND = (
    "Distances as TFDV measured them: skew = train vs eval, drift = train vs the champion's train "
    "data; JS = approximate Jensen-Shannon divergence (numeric, over histograms), L∞ = L-infinity "
    "distance between value frequencies (categorical), NAD = normalized absolute difference. "
    "Red: above the threshold (an anomaly)."
)
TOP_VALUES_SHOWN = 5


def feature_summaries(stats) -> dict[str, dict]:
    """feature → the figures the report shows, from one split's DatasetFeatureStatisticsList."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out: dict[str, dict] = {}
    if not stats.datasets:
        return out
    for feature in stats.datasets[0].features:
        name = ".".join(feature.path.step) or feature.name
        kind = feature.WhichOneof("stats")
        if kind == "num_stats":
            ns = feature.num_stats
            common = ns.common_stats
            standard = next((h for h in ns.histograms
                             if h.type == statistics_pb2.Histogram.STANDARD), None)
            summary = {
                "kind": "numeric", "mean": ns.mean, "std": ns.std_dev, "min": ns.min, "max": ns.max,
                "histogram": [(b.low_value, b.high_value, b.sample_count) for b in standard.buckets]
                if standard is not None else [],
            }
        elif kind == "string_stats":
            ss = feature.string_stats
            common = ss.common_stats
            summary = {
                "kind": "categorical", "unique": int(ss.unique),
                "top_values": [(v.value, float(v.frequency)) for v in ss.top_values[:TOP_VALUES_SHOWN]],
            }
        else:  # struct/bytes stats: nothing this report can show beyond presence
            continue
        present, missing = int(common.num_non_missing), int(common.num_missing)
        summary.update(count=present, missing=missing,
                       missing_fraction=missing / (present + missing) if present + missing else None)
        out[name] = summary
    return out


def distance_measurements(anomalies) -> dict[str, list[dict]]:
    """feature → every skew/drift distance TFDV measured, with its threshold (anomalous or not)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    names_of = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name
    out: dict[str, list[dict]] = {}
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for check, measurements in ((KIND_SKEW, info.skew_measurements), (KIND_DRIFT, info.drift_measurements)):
            for m in measurements:
                out.setdefault(feature, []).append({
                    "check": check,
                    "metric": _MEASUREMENT_METRICS.get(names_of(m.type), names_of(m.type)),
                    "value": float(m.value),
                    "threshold": float(m.threshold),
                    "exceeded": float(m.value) > float(m.threshold),
                })
    return out


def _split_figure(summaries: dict[str, dict], split: str, feature: str, key: str):
    return summaries.get(split, {}).get(feature, {}).get(key)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _top_values(summary: dict | None) -> str:
    if not summary or not summary.get("top_values"):
        return "—"
    count = summary.get("count") or 0
    return ", ".join(f"{value} {freq / count:.0%}" if count else f"{value} {freq:g}"
                     for value, freq in summary["top_values"])


def _distance_cell(measurements: list[dict]) -> str:
    from components.common import html_report as hr

    if not measurements:
        return "—"
    cells = []
    for m in measurements:
        sign = ">" if m["exceeded"] else "≤"
        cells.append(hr.badge("fail" if m["exceeded"] else "ok",
                              f"{m['check']} {m['metric']} {m['value']:.4g} {sign} {m['threshold']:g}"))
    return "<br>".join(cells)


def render_html(
    findings: list[_Finding],
    schema_source: str,
    row_counts: dict[str, int],
    notes: list[str],
    summaries: dict[str, dict[str, dict]],
    measurements: dict[str, list[dict]],
) -> str:
    """A self-contained page: anomalies first, then train vs eval figures per feature.

    summaries: split → feature_summaries(...); measurements: distance_measurements(...).
    """
    from components.common import html_report as hr

    train, evaluation = names.TRAIN, names.EVAL
    splits = [train, evaluation]
    flagged = {f.feature for f in findings}
    status = "fail" if findings else "ok"
    head = [
        hr.callout(status, f"<strong>{hr.badge(status, 'FAILED' if findings else 'PASSED')} "
                           f"{hr.escape(summary_line(findings))}</strong>"),
        hr.table(["input", "value"], [
            ["schema used", schema_source],
            ["rows per split", ", ".join(f"{s} {hr.fmt(n)}" for s, n in row_counts.items())],
            *[["note", note] for note in notes],
        ]),
    ]
    sections = [hr.section("Summary", *head)]
    if findings:
        rows = [[hr.badge("anomaly", f.feature), f.kind, f.expected or "—",
                 f"{f.short} (in {'/'.join(f.splits)}): {f.seen}"] for f in findings]
        sections.append(hr.section(
            f"Anomalies ({len(findings)})",
            hr.callout("fail", hr.table(["feature", "kind", "what was expected", "what was seen"], rows,
                                        raw_html_columns=[0])),
        ))

    features = sorted({f for split in splits for f in summaries.get(split, {})} | flagged - {DATASET_FEATURE})

    def kind_of(feature: str) -> str | None:
        return next((summaries[s][feature]["kind"] for s in splits if feature in summaries.get(s, {})), None)

    def name_cell(feature: str) -> str:
        return hr.badge("anomaly", feature) if feature in flagged else hr.escape(feature)

    def pair(feature: str, key: str, formatter=None):
        values = [_split_figure(summaries, s, feature, key) for s in splits]
        # whole numbers (counts, integer min/max) without a run of decimal zeros
        values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
        return [formatter(v) if formatter else v for v in values]

    if measurements:
        sections.append(f'<p class="subtitle">{hr.escape(_DISTANCE_LEGEND)}</p>')
    numeric = [f for f in features if kind_of(f) == "numeric"]
    if numeric:
        rows = []
        for feature in numeric:
            histograms = {s: _split_figure(summaries, s, feature, "histogram") or [] for s in splits}
            rows.append([name_cell(feature), *pair(feature, "count"), *pair(feature, "missing_fraction", _percent),
                         *pair(feature, "mean"), *pair(feature, "std"), *pair(feature, "min"),
                         *pair(feature, "max"), hr.histogram_pair(histograms, width=150) or "—",
                         _distance_cell(measurements.get(feature, []))])
        sections.append(hr.section(
            "Numeric features: train vs eval",
            hr.grouped_table(
                [("feature", []), ("count", splits), ("missing", splits), ("mean", splits), ("std", splits),
                 ("min", splits), ("max", splits), (f"histogram ({train} / {evaluation})", []),
                 ("skew / drift distance vs threshold", [])],
                rows, raw_html_columns=[0, 13, 14]),
        ))
    categorical = [f for f in features if kind_of(f) == "categorical"]
    if categorical:
        rows = [[name_cell(feature), *pair(feature, "count"), *pair(feature, "missing_fraction", _percent),
                 *pair(feature, "unique"),
                 *[_top_values(summaries.get(s, {}).get(feature)) for s in splits],
                 _distance_cell(measurements.get(feature, []))] for feature in categorical]
        sections.append(hr.section(
            "Categorical features: train vs eval",
            hr.grouped_table(
                [("feature", []), ("count", splits), ("missing", splits), ("unique", splits),
                 ("top values", splits), ("skew / drift distance vs threshold", [])],
                rows, raw_html_columns=[0, 9]),
        ))
    absent = [f for f in features if kind_of(f) is None]
    if absent:
        sections.append(hr.section("Features in no split's statistics",
                                   hr.paragraph(", ".join(absent))))
    return hr.page("Data validation", sections,
                   subtitle="TFDV statistics, schema anomalies, train/eval skew and drift from the champion")


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


def validate(
    examples_dir: str,
    statistics_dir: str,
    schema_dir: str,
    anomalies_dir: str,
    *,
    curated_schema_uri: str = "",
    registry_uri: str = "",
    model_name: str = "model",
    skew_jensen_shannon_threshold: float = 0.1,
    skew_linf_threshold: float = 0.1,
    drift_jensen_shannon_threshold: float = 0.1,
    drift_linf_threshold: float = 0.1,
    beam_args: list[str] | None = None,
    raise_on_anomalies: bool = True,
) -> ValidationResult:
    """Statistics, schema, schema/skew/drift anomalies and a report for an examples dir.

    Every output is written before a DataValidationError is raised (with raise_on_anomalies).
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

    notes: list[str] = []
    champion = registry.read_champion(registry_uri, model_name)
    schema, schema_source, curated = choose_schema(curated_schema_uri, champion, train, label)
    ensure_environments(schema, label)
    set_comparators(
        schema,
        label=label,
        key_column=key_column,
        skew_js=skew_jensen_shannon_threshold,
        skew_linf=skew_linf_threshold,
        drift_js=drift_jensen_shannon_threshold,
        drift_linf=drift_linf_threshold,
        keep_existing=curated,
    )
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

    # train against the schema, train vs eval (skew), train vs the champion's train data (drift)
    train_anomalies = tfdv.validate_statistics(
        statistics=train,
        schema=schema,
        environment=TRAINING_ENV,
        serving_statistics=evaluation,
        previous_statistics=baseline,
    )
    # eval on its own against the schema; it carries labels, so the TRAINING environment applies
    eval_anomalies = tfdv.validate_statistics(statistics=evaluation, schema=schema, environment=TRAINING_ENV)

    findings = collect_findings(train_anomalies, eval_anomalies, schema)
    report_md = render_markdown(findings, schema_source, row_counts, notes)
    report_html = render_html(
        findings, schema_source, row_counts, notes,
        summaries={split: feature_summaries(s) for split, s in stats.items()},
        measurements=distance_measurements(train_anomalies),
    )
    result = ValidationResult(
        passed=not findings,
        anomalies=[f.as_dict() for f in findings],
        schema_source=schema_source,
        row_counts=row_counts,
        report_markdown=report_md,
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
