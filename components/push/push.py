"""Push: publish a blessed model to the versioned registry, with its lineage record and model card.

Publishing is two steps. First the version directory is written completely (locally into a staging
directory that is renamed into place), model card included. Then CHAMPION.json is replaced in one
atomic write. A failure in between leaves at worst an unreferenced version directory; the current
champion never changes. A model that is not blessed is never written. Every outcome carries a
model card (model_card.py), also a model that was not published: its card says why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import platform
import shutil
import subprocess
import sys
import uuid
from importlib import metadata as importlib_metadata

from components.common import io as fio
from components.common import label_kinds, names
from components.common.errors import PipelineInputError
from components.push import model_card, registry

log = logging.getLogger(__name__)

# Packages whose versions define the environment a model was trained and evaluated in.
LINEAGE_PACKAGES = (
    "kfp-prod-components", "tensorflow", "tf-keras", "tensorflow-data-validation",
    "tensorflow-transform", "tensorflow-model-analysis", "tfx-bsl", "apache-beam", "kfp",
    "numpy", "pandas", "pyarrow", "protobuf", "tf2onnx", "onnx", "onnxruntime",
)


@dataclasses.dataclass
class PushResult:
    pushed: bool
    reason: str
    version: str | None = None
    model_uri: str | None = None
    lineage_uri: str | None = None
    previous_champion: str | None = None
    model_card_uri: str | None = None  # the JSON card in the registry version (pushed models only)
    card: dict = dataclasses.field(default_factory=dict, repr=False)
    """The model card (model_card.build_card) of every outcome; not part of record()."""

    def record(self) -> dict:
        """push_result.json and the pushed_model artifact's metadata: the result without the card,
        which has files of its own."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "card"}


def read_blessing(blessing_dir: str) -> dict:
    path = fio.join(blessing_dir, names.BLESSING_FILE)
    if not fio.exists(path):
        raise FileNotFoundError(f"no blessing at {path}: was the model evaluated?")
    return fio.read_json(path)


def read_infra_blessing(infra_blessing_dir: str) -> dict:
    path = fio.join(infra_blessing_dir, names.INFRA_BLESSING_FILE)
    if not fio.exists(path):
        raise FileNotFoundError(f"no infra blessing at {path}: did infra validation run?")
    return fio.read_json(path)


def failed_gates(blessing: dict) -> list[dict]:
    return [g for g in blessing.get("gates", []) if not g.get("passed")]


def describe_gate(gate: dict) -> str:
    value = gate.get("value")
    figure = "n/a" if value is None else f"{value:.4f}"
    return f"{gate['name']}: {figure} vs {gate.get('threshold')} ({gate.get('detail', '')})"


def code_version(explicit: str = "") -> str:
    """The commit the pipeline was built from: given by the caller, else read from git."""
    if explicit:
        return explicit
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict:
    packages = {}
    for name in LINEAGE_PACKAGES:
        try:
            packages[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": packages,
    }


def _optional_json(path: str) -> dict:
    return fio.read_json(path) if fio.exists(path) else {}


def _data_record(examples_metadata: dict) -> dict:
    return {
        "source": examples_metadata.get("source"),
        "eval_source": examples_metadata.get("eval_source"),
        "sha256": examples_metadata.get("data_sha256"),
        "row_counts": examples_metadata.get("row_counts"),
        "label": examples_metadata.get("label"),
        "label_meaning": examples_metadata.get("label_meaning"),
        "label_kind": examples_metadata.get("label_kind", label_kinds.BINARY),
        "classes": examples_metadata.get("classes", []),
    }


def _ingest_parameters(examples_metadata: dict) -> dict:
    return {k: examples_metadata.get(k) for k in ("key_column", "slices", "feature_columns")}


def candidate_lineage(examples_dir: str, code: str) -> dict:
    """What push knows of a candidate it does not publish, without hashing it: no model version (a
    registry name), the code version, the data and the ingest parameters; for its model card."""
    examples_metadata = _optional_json(fio.join(examples_dir, names.EXAMPLES_METADATA_FILE)) if examples_dir else {}
    return {
        "model_version": None,
        "code_version": code,
        "data": _data_record(examples_metadata),
        "parameters": {"ingest": _ingest_parameters(examples_metadata)},
    }


def build_lineage(
    *,
    version: str,
    model_dir: str,
    transform_graph_dir: str,
    schema_dir: str,
    statistics_dir: str,
    examples_dir: str,
    blessing: dict,
    code: str,
    previous_champion: str | None,
) -> dict:
    examples_metadata = _optional_json(fio.join(examples_dir, names.EXAMPLES_METADATA_FILE))
    model_info = _optional_json(fio.join(model_dir, names.MODEL_INFO_FILE))
    onnx_path = fio.join(model_dir, names.ONNX_FILE)
    artifacts = {
        "saved_model": fio.sha256_tree(fio.join(model_dir, names.SAVED_MODEL_DIR)),
        "transform_graph": fio.sha256_tree(transform_graph_dir),
    }
    if fio.exists(onnx_path):
        artifacts["onnx"] = fio.sha256_file(onnx_path)
    return {
        "model_version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "code_version": code,
        "data": _data_record(examples_metadata),
        "schema_sha256": fio.sha256_file(fio.join(schema_dir, names.SCHEMA_FILE)),
        "statistics_sha256": fio.sha256_tree(statistics_dir),
        "parameters": {
            "ingest": _ingest_parameters(examples_metadata),
            "train": model_info.get("parameters", {}),
            "gates": {g["name"]: g.get("threshold") for g in blessing.get("gates", [])},
        },
        "training": {k: v for k, v in model_info.items() if k not in ("parameters", "history")},
        "environment": environment(),
        "artifacts_sha256": artifacts,
        "metrics": blessing.get("metrics", {}),
        "slices": blessing.get("slices", {}),
        "gates": blessing.get("gates", []),
        "previous_champion": previous_champion,
    }


def _stage_version(
    staging: str, model_dir: str, transform_graph_dir: str, schema_dir: str, statistics_dir: str,
    blessing_dir: str,
) -> None:
    fio.copy_tree(fio.join(model_dir, names.SAVED_MODEL_DIR), fio.join(staging, names.SAVED_MODEL_DIR))
    for optional in (names.ONNX_FILE, names.MODEL_INFO_FILE):
        if fio.exists(fio.join(model_dir, optional)):
            fio.copy_tree(fio.join(model_dir, optional), fio.join(staging, optional))
    fio.copy_tree(transform_graph_dir, fio.join(staging, names.TRANSFORM_GRAPH))
    fio.copy_tree(fio.join(schema_dir, names.SCHEMA_FILE), fio.join(staging, names.SCHEMA_FILE))
    train_stats = fio.join(statistics_dir, names.TRAIN, names.STATS_FILE)
    fio.copy_tree(train_stats, fio.join(staging, names.STATS_FILE))
    fio.copy_tree(fio.join(blessing_dir, names.BLESSING_FILE), fio.join(staging, names.BLESSING_FILE))


def _optional_infra_blessing(infra_blessing_dir: str) -> dict | None:
    path = fio.join(infra_blessing_dir, names.INFRA_BLESSING_FILE) if infra_blessing_dir else ""
    return fio.read_json(path) if path and fio.exists(path) else None


def check_registry_uri(registry_uri: str) -> None:
    """Refuse, before any work, a registry that would be lost or cannot be written: a relative path
    lands inside the task's container (gone with the pod), and an unwritable one fails half-way."""
    if not registry_uri:
        raise PipelineInputError("registry_uri is empty: give gs://, s3:// or an absolute (mounted) path")
    if not fio.is_local(registry_uri):
        return
    if not os.path.isabs(registry_uri):
        raise PipelineInputError(
            f"registry_uri {registry_uri!r} is relative: it would be written inside this task's container and "
            "lost with it; give gs://bucket/path, s3://bucket/path or an absolute path on a mounted volume")
    existing = registry_uri
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PipelineInputError(f"registry_uri {registry_uri!r} is not writable by this task (uid {os.getuid()}): "
                                 f"{existing} does not allow it; mount a writable volume or use gs:// or s3://")


def push(
    *,
    model_dir: str,
    transform_graph_dir: str,
    schema_dir: str,
    statistics_dir: str,
    blessing_dir: str,
    examples_dir: str,
    registry_uri: str,
    model_name: str,
    code: str = "",
    infra_blessing_dir: str = "",
    data_validation: dict | None = None,
    now: dt.datetime | None = None,
) -> PushResult:
    """Publish a blessed model. `infra_blessing_dir`: the infra-validate task's output; a model
    the model server could not load or that answered wrongly is never pushed. `data_validation`:
    validate_data's summary (model_card.data_validation_summary), for the lineage and the card.

    The result carries the model card of every outcome (`card`); a pushed version has it in the
    registry too, written with lineage.json before CHAMPION.json names the version."""
    check_registry_uri(registry_uri)
    blessing = read_blessing(blessing_dir)

    def unpublished(result: PushResult, lineage: dict, infra: dict | None) -> PushResult:
        result.card = model_card.build_card(
            model_name=model_name, published=False, reason=result.reason, model_uri=None, blessing=blessing,
            lineage=lineage, infra=infra, data_validation=data_validation)
        return result

    if not blessing.get("blessed"):
        failed = failed_gates(blessing)
        reason = "not blessed: " + ("; ".join(describe_gate(g) for g in failed) or "no gate passed")
        log.warning("%s; nothing pushed", reason)
        return unpublished(PushResult(pushed=False, reason=reason), candidate_lineage(examples_dir, code_version(code)),
                           _optional_infra_blessing(infra_blessing_dir))
    infra = read_infra_blessing(infra_blessing_dir) if infra_blessing_dir else None
    if infra is not None and not infra.get("blessed"):
        log.warning("%s; nothing pushed", infra.get("reason"))
        return unpublished(PushResult(pushed=False, reason=infra.get("reason") or "infra validation failed"),
                           candidate_lineage(examples_dir, code_version(code)), infra)

    champion = registry.read_champion(registry_uri, model_name)
    found = champion.version if champion else None
    if "baseline_version" in blessing and blessing["baseline_version"] != found:
        raise registry.ChampionChangedError(blessing["baseline_version"], found, "before publishing anything")
    model_hash = fio.sha256_tree(fio.join(model_dir, names.SAVED_MODEL_DIR))
    if champion is not None:
        champion_lineage = _optional_json(champion.lineage_uri)
        if champion_lineage.get("artifacts_sha256", {}).get("saved_model") == model_hash:
            return unpublished(PushResult(
                pushed=False, reason=f"this model is already the champion ({champion.version})",
                version=champion.version, model_uri=champion.uri,
                lineage_uri=champion.lineage_uri, previous_champion=champion.version,
            ), {"model_version": champion.version, **champion_lineage}, infra)

    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    version = f"v{stamp}-{model_hash[:8]}"
    root = registry.model_root(registry_uri, model_name)
    versions_dir = fio.join(root, names.REGISTRY_VERSIONS_DIR)
    final = fio.join(versions_dir, version)
    if fio.exists(final):
        raise FileExistsError(f"{final} already exists; refusing to overwrite a published version")
    lineage = build_lineage(
        version=version, model_dir=model_dir, transform_graph_dir=transform_graph_dir,
        schema_dir=schema_dir, statistics_dir=statistics_dir, examples_dir=examples_dir,
        blessing=blessing, code=code_version(code),
        previous_champion=champion.version if champion else None,
    )
    if infra is not None:
        lineage["infra_validation"] = {k: infra.get(k) for k in ("reason", "load_seconds", "v1", "v2")}
    if data_validation is not None:
        lineage["data_validation"] = dict(data_validation)
    reason = "blessed: all gates passed"
    card = model_card.build_card(model_name=model_name, published=True, reason=reason, model_uri=final,
                                 blessing=blessing, lineage=lineage, infra=infra, data_validation=data_validation)

    # Local filesystems rename a directory atomically; object stores cannot, but there the version
    # directory is invisible to readers until CHAMPION.json names it. The card is staged with the
    # rest, so no published version is without it.
    for stale in registry.remove_stale_staging(registry_uri, model_name):
        log.warning("removed %s, left behind by a push that did not finish", stale)
    staging = fio.join(versions_dir, f"{registry.STAGING_PREFIX}{uuid.uuid4().hex[:8]}") if fio.is_local(final) else final
    try:
        _stage_version(staging, model_dir, transform_graph_dir, schema_dir, statistics_dir, blessing_dir)
        fio.write_json_atomic(fio.join(staging, names.LINEAGE_FILE), lineage)
        model_card.write_card(staging, card)
        fio.write_text_atomic(fio.join(staging, names.VERSION_COMPLETE_FILE), version + "\n")  # last
        if staging != final:
            os.rename(staging, final)
    except BaseException:
        if fio.is_local(staging) and os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
        raise
    # The champion evaluate compared the candidate with must still be the champion: a push or a
    # rollback since then (another run) means the gates judged against the wrong model.
    judged_against = blessing["baseline_version"] if "baseline_version" in blessing else found
    try:
        registry.swap_champion(registry_uri, model_name, judged_against, {
            "version": version,
            "path": f"{names.REGISTRY_VERSIONS_DIR}/{version}",
            "pushed_at": lineage["created_at"],
            "previous": champion.version if champion else None,
        })
    except registry.ChampionChangedError:
        fio.remove_tree(final)  # never champion: it must not be listed as a deployable version
        raise
    log.info("pushed %s to %s", version, final)
    return PushResult(
        pushed=True, reason=reason, version=version, model_uri=final,
        lineage_uri=fio.join(final, names.LINEAGE_FILE),
        previous_champion=champion.version if champion else None,
        model_card_uri=fio.join(final, names.MODEL_CARD_JSON_FILE), card=card,
    )


SUMMARY_METRICS = ("auc", "accuracy", "precision", "recall", "false_positive_rate", "false_negative_rate",
                   "calibration", "expected_calibration_error", "brier_score", "example_count")
_md = model_card.cell  # a table cell


def _verdict(result: PushResult, blessing: dict) -> str:
    if result.pushed:
        return f"BLESSED, published `{result.version}`"
    if blessing.get("blessed"):
        return "BLESSED, nothing new published"
    return "REJECTED, nothing published"


def report_markdown(result: PushResult, blessing: dict, lineage: dict | None = None) -> str:
    """The push summary the KFP UI shows: verdict and why, each gate with its figures, the metrics
    against the champion, and the lineage of the model now in the registry (when there is one)."""
    lines = [f"# Push: {_verdict(result, blessing)}", "", f"**Why:** {result.reason}", "", "## Gates", "",
             "| gate | result | value | rule | detail |", "|---|---|---|---|---|"]
    kind = blessing.get("label_kind") or label_kinds.BINARY
    rules = model_card.gate_rules(kind)  # what each gate of components/evaluate demands
    for gate in blessing.get("gates", []):
        threshold = gate.get("threshold")
        rule = rules.get(gate["name"], "threshold {t:g}").format(t=threshold) if threshold is not None else "n/a"
        verdict = model_card.gate_verdict(gate)
        lines.append(f"| {_md(gate['name'])} | {'**FAIL**' if verdict == 'FAIL' else verdict} | "
                     f"{_md(gate.get('value'))} | {_md(rule)} | {_md(gate.get('detail', ''))} |")

    metrics, baseline = blessing.get("metrics") or {}, blessing.get("baseline_metrics")
    if metrics:
        champion = f"champion {blessing.get('baseline_version') or ''}".strip()
        lines += ["", "## Metrics on the eval split", ""]
        if baseline:
            lines += [f"| metric | candidate | {_md(champion)} | change |", "|---|---|---|---|"]
        else:
            lines += ["| metric | candidate |", "|---|---|"]
        keys = SUMMARY_METRICS if kind == label_kinds.BINARY else [k for k in model_card.METRIC_ORDER if k in metrics]
        for key in keys:
            value = metrics.get(key)
            if key == "example_count" and value is not None:
                value = int(value)
            row = f"| {key} | {_md(value)} |"
            if baseline:
                old = baseline.get(key)
                change = None if value is None or old is None else f"{value - old:+.4f}"
                row += f" {_md(int(old) if key == 'example_count' and old is not None else old)} | {_md(change)} |"
            lines.append(row)
        if not baseline:
            lines += ["", "No champion was in the registry: nothing to compare against."]

    if lineage:
        lines += lineage_markdown(lineage, result)
    elif result.pushed:
        lines += ["", f"Model: `{result.model_uri}`", f"Lineage: `{result.lineage_uri}`",
                  f"Parent champion: {result.previous_champion or 'none (first push)'}"]
    return "\n".join(lines) + "\n"


def _split_order(split: str) -> tuple:
    return (names.SPLITS.index(split) if split in names.SPLITS else len(names.SPLITS), split)


def lineage_markdown(lineage: dict, result: PushResult) -> list[str]:
    """The lineage record of a registry version as Markdown lines (a heading and two tables)."""
    data = lineage.get("data") or {}
    rows = data.get("row_counts") or {}
    environment_ = lineage.get("environment") or {}
    hashes = lineage.get("artifacts_sha256") or {}
    training = lineage.get("training") or {}
    parent = lineage.get("previous_champion")
    heading = "Lineage of the pushed model" if result.pushed else "Lineage of the champion"
    facts = [
        ("model version", f"`{lineage.get('model_version')}`"),
        ("registry path", f"`{result.model_uri}`" if result.model_uri else None),
        ("parent champion", f"`{parent}`" if parent else "none (first push)"),
        ("created at", lineage.get("created_at")),
        ("code version", f"`{lineage.get('code_version')}`"),
        ("data source", data.get("source")),
        ("eval data source", data.get("eval_source") or "split of the data source"),
        ("data sha256", f"`{data.get('sha256')}`" if data.get("sha256") else None),
        ("rows", ", ".join(f"{k} {rows[k]}" for k in sorted(rows, key=_split_order)) or None),
        ("label", f"{data.get('label')} ({data.get('label_meaning')})" if data.get("label_meaning")
         else data.get("label")),
        ("schema sha256", f"`{lineage.get('schema_sha256')}`" if lineage.get("schema_sha256") else None),
        *[(f"{name} sha256", f"`{digest}`") for name, digest in sorted(hashes.items())],
        *[(f"training: {k}", v) for k, v in sorted(training.items()) if not isinstance(v, (dict, list))],
        ("python", environment_.get("python")),
        ("lineage record", f"`{result.lineage_uri}`" if result.lineage_uri else None),
    ]
    lines = ["", f"## {heading}", "", "| field | value |", "|---|---|"]
    lines += [f"| {name} | {_md(value)} |" for name, value in facts if value not in (None, "")]
    packages = environment_.get("packages") or {}
    if packages:
        lines += ["", "### Package versions", "", "| package | version |", "|---|---|"]
        lines += [f"| {name} | {_md(version)} |" for name, version in sorted(packages.items())]
    return lines


def read_lineage(result: PushResult) -> dict | None:
    """The lineage record the result points at (a pushed model, or the unchanged champion)."""
    if result.lineage_uri and fio.exists(result.lineage_uri):
        return fio.read_json(result.lineage_uri)
    return None
