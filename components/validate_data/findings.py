"""Anomalies as findings: TFDV's anomaly protos and the shift rows, each told as what was expected
and what was seen, merged across splits (one finding per feature, kind and reason)."""

from __future__ import annotations

import dataclasses

from components.common import names
from components.validate_data import shift

KIND_SCHEMA, KIND_SKEW, KIND_DRIFT = "schema", shift.SKEW, shift.DRIFT
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
class Finding:
    feature: str
    kind: str
    short: str
    expected: str
    seen_by_split: dict[str, str]  # split → what was seen there (TFDV's words or the distance)

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


def findings_from_anomalies(anomalies, schema, split: str) -> list[Finding]:
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
            found.append(Finding(name, kind, short, expected, {split: description.strip()}))
    return found


def merge_findings(*groups: list[Finding]) -> list[Finding]:
    """One finding per (feature, kind, short); the same problem in several splits is listed once."""
    merged: dict[tuple[str, str, str], Finding] = {}
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


def collect_findings(train_anomalies, eval_anomalies, schema=None) -> list[Finding]:
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


def findings_from_shift(rows: list[shift.ShiftRow]) -> list[Finding]:
    """A finding per anomalous shift row: the distance, the bound and the noise level it exceeded."""
    found = []
    for row in rows:
        if not row.anomalous:
            continue
        name = shift.STATISTIC_NAMES[row.statistic]
        limit = f"bound {row.bound:g}" if row.noise is None else f"max(bound {row.bound:g}, sampling noise {row.noise:.3g})"
        split = names.EVAL if row.check == KIND_SKEW else names.TRAIN
        seen = (f"{row.value:.4g} over {row.rows} rows against {row.baseline_rows} "
                f"(missing {row.missing_fraction:.1%} vs {row.baseline_missing_fraction:.1%})")
        found.append(Finding(row.feature, row.check, f"High {name}",
                             f"{name} <= {limit} ({shift.PAIRS[row.check]})", {split: seen}))
    return found
