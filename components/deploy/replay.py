"""Replay observer: held-out rows sent as V1 requests through the target; per-version figures back.

    rows = load_rows("tests/fixtures/hmda_sample.csv", feature_types)     # or an ingest examples dir
    observe = ReplayObserver(target, "model", rows, ReplayConfig(), requests_per_step=400)
    stable_stats, canary_stats = observe(10)

Each step sends `requests_per_step` requests of `rows_per_request` rows (traffic.ReplayRows),
`concurrency` at a time, each with its own x-request-id. Attribution is exact when the target keeps
per-request records (LocalTarget's splitter: role, version, status, latency, predictions per
request id). Without records (a remote endpoint), answers are attributed by the `model_version` in
the V1 response, fail safe (traffic.attribute).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from components.common import io as fio
from components.common import label_kinds, names
from components.common.errors import PipelineInputError
from components.deploy.analysis import label_kind_of
from components.deploy.rollout import VersionStats
from components.deploy.traffic import (Answer, Batch, ReplayConfig, ReplayRows, V1Client, attribute, count_answer,
                                       describe_window, send_window)

log = logging.getLogger(__name__)

MISSING_TEXT = {"", "na", "nan", "null", "none"}


class RequestLog(Protocol):
    """What LocalTarget offers an observer: its address and the splitter's per-request records."""

    @property
    def url(self) -> str: ...

    def records(self, request_ids: set[str] | None = None) -> list: ...

    def wait_idle(self, timeout: float = 60.0) -> bool: ...


# ------------------------------------------------------------------------------ rows


def _convert(value: Any, kind: str, column: str, where: str) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in MISSING_TEXT):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if kind == "float":
            return float(value)
        if kind == "int":
            number = float(value)
            if not number.is_integer():
                raise ValueError(f"{value!r} is not an integer")
            return int(number)
    except (TypeError, ValueError) as exc:
        raise PipelineInputError(f"{where}: column {column!r} ({kind}): {exc}") from None
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_csv(path: str, feature_types: dict[str, str]) -> list[dict]:
    with open(path, newline="", encoding="utf-8") if fio.is_local(path) else _gfile_open(path) as f:
        reader = csv.DictReader(f)
        missing = [c for c in feature_types if c not in (reader.fieldnames or [])]
        if missing:
            raise PipelineInputError(f"{path}: the model's feature(s) {missing} are not columns of the data "
                                     f"(columns: {reader.fieldnames})")
        return [{c: _convert(row[c], k, c, f"{path} row {i + 2}") for c, k in feature_types.items()}
                for i, row in enumerate(reader)]


def _gfile_open(path: str):
    import tensorflow as tf

    return tf.io.gfile.GFile(path, "r")


def _read_examples(path: str, feature_types: dict[str, str]) -> list[dict]:
    """tf.Example records (an ingest split: GZIP TFRecord); absent features are missing values."""
    import tensorflow as tf

    rows = []
    for record in tf.data.TFRecordDataset(path, compression_type="GZIP" if path.endswith(".gz") else None):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        row = {}
        for column, kind in feature_types.items():
            feature = features.get(column)
            if feature is None:
                row[column] = None
            elif kind == "float":
                row[column] = float(feature.float_list.value[0]) if feature.float_list.value else None
            elif kind == "int":
                row[column] = int(feature.int64_list.value[0]) if feature.int64_list.value else None
            else:
                row[column] = feature.bytes_list.value[0].decode() if feature.bytes_list.value else None
        rows.append(row)
    return rows


def load_rows(data: str, feature_types: dict[str, str], max_rows: int = 0) -> list[dict]:
    """Rows of raw features typed for the model: a CSV file, a TFRecord of tf.Examples, or an
    ingest examples directory (its eval split: rows the model was not trained on)."""
    if not data:
        raise PipelineInputError("no replay data given (a CSV file or an ingest examples directory)")
    if not fio.exists(data):
        raise PipelineInputError(f"replay data {data} does not exist")
    if not feature_types:
        raise PipelineInputError("the model declares no raw feature types (model_info.json raw_feature_types)")
    path = data
    if os.path.isdir(data) or fio.exists(fio.join(data, names.EVAL, names.EXAMPLES_FILE)):
        path = fio.join(data, names.EVAL, names.EXAMPLES_FILE)
        if not fio.exists(path):
            raise PipelineInputError(f"{data} is a directory without an eval split "
                                     f"({names.EVAL}/{names.EXAMPLES_FILE})")
    if ".tfrecord" in os.path.basename(path):
        rows = _read_examples(path, feature_types)
    else:
        rows = _read_csv(path, feature_types)
    if not rows:
        raise PipelineInputError(f"{path} has no rows to replay")
    return rows[:max_rows] if max_rows else rows


def _labels_fit(labels: list, kind: str, n_classes: int) -> bool:
    """Labels the kind's live quality can be judged on: 0/1, class indices 0..K-1, finite values."""
    if kind == label_kinds.REGRESSION:
        return all(value is not None and math.isfinite(value) for value in labels)
    allowed = range(n_classes) if kind == label_kinds.MULTICLASS else (0, 1)
    return all(value in allowed for value in labels)


def load_labels(data: str, max_rows: int = 0, kind: str = label_kinds.BINARY, n_classes: int = 0) -> list | None:
    """The labels of load_rows(data)'s rows, in the same order, when `data` is an ingest examples
    directory (its metadata names the label): 0/1 (binary), class indices (multiclass) or values
    (regression); None for other data (unlabelled traffic)."""
    metadata_path = fio.join(data, names.EXAMPLES_METADATA_FILE)
    path = fio.join(data, names.EVAL, names.EXAMPLES_FILE)
    if not (fio.exists(metadata_path) and fio.exists(path)):
        return None
    label = fio.read_json(metadata_path).get("label")
    if not label:
        return None
    column_type = "float" if kind == label_kinds.REGRESSION else "int"
    labels = [row[label] for row in _read_examples(path, {label: column_type})]
    if not _labels_fit(labels, kind, n_classes):
        log.warning("%s: label %r is not a %s label in every row; the canary's live quality is not judged",
                    path, label, kind)
        return None
    return labels[:max_rows] if max_rows else labels


def load_replay(data: str, version_dir: str, max_rows: int = 0, target: str = "") -> tuple[list[dict], list | None]:
    """What a target's observer replays as traffic to the model in `version_dir`: its rows, typed
    for the model, and their labels when the data is labelled (an ingest examples dir), read for
    the model's label kind."""
    if not data:
        raise PipelineInputError(f"the {target} target needs data: held-out rows to replay as traffic")
    kind, n_classes = label_kind_of(version_dir)
    return load_rows(data, feature_types_of(version_dir), max_rows), load_labels(data, max_rows, kind, n_classes)


def feature_types_of(version_dir: str) -> dict[str, str]:
    """The raw feature types a pushed version takes (model_info.json)."""
    path = fio.join(version_dir, names.MODEL_INFO_FILE)
    if not fio.exists(path):
        raise PipelineInputError(f"{path} is missing: cannot tell which features the model takes")
    types = fio.read_json(path).get("raw_feature_types") or {}
    if not types:
        raise PipelineInputError(f"{path} has no raw_feature_types")
    return dict(types)


# ------------------------------------------------------------------------------ observer


class ReplayObserver:
    """`rollout.Observer`: observe(percent) → (stable VersionStats, candidate VersionStats)."""

    def __init__(self, target: RequestLog | None, model_name: str, rows: list[dict], config: ReplayConfig,
                 requests_per_step: int, url: str = "",
                 versions: Callable[[], tuple[str | None, str | None]] | None = None,
                 progress: Callable[[str], None] = print, labels: list | None = None, transport=None):
        if target is None and not url:
            raise ValueError("a ReplayObserver needs a target with records or a url")
        self.target = target
        self.model_name = model_name
        self.config = config
        self.requests_per_step = requests_per_step
        self._url = url
        self._versions = versions
        self.progress = progress
        self.transport = transport
        """An httpx transport (tests: httpx.MockTransport); None = the network."""
        self.replay = ReplayRows(rows, config, labels)
        self.windows: list[dict] = []
        """Per step: what the client saw (sent, answered, failed, seconds)."""

    def _send(self, batches: list[Batch]) -> list[Answer]:
        url = self.target.url if self.target is not None else self._url
        with V1Client(self.config, self.transport) as client:
            sender = client.sender(f"{url}/v1/models/{self.model_name}:predict")
            return [answers[0] for answers in send_window(batches, [sender], self.config.concurrency)]

    def send(self, requests: int) -> list[Answer]:
        """Send `requests` requests (the next rows in the replay order) and return what came back."""
        return self._send(self.replay.take(requests))

    def __call__(self, percent: int) -> tuple[VersionStats, VersionStats]:
        started = time.perf_counter()
        batches = self.replay.take(self.requests_per_step)
        answers = self._send(batches)
        seconds = time.perf_counter() - started
        failed = sum(not a.ok for a in answers)
        if self.target is not None:
            self.target.wait_idle()  # shadow copies finish after the client's answer
            stable, canary = self._from_records(batches, "shadow" if percent == 0 else "canary")
        else:
            stable, canary = self._versioned_stats()
            attribute(batches, [[a] for a in answers], stable, canary)
        self.windows.append({"percent": percent, "sent": len(answers), "failed": failed,
                             "rows": len(answers) * self.config.rows_per_request, "seconds": seconds})
        self.progress(describe_window(percent, stable, canary, len(answers), failed, seconds))
        return stable, canary

    def _versioned_stats(self) -> tuple[VersionStats, VersionStats]:
        stable_version, candidate_version = self._versions() if self._versions else (None, None)
        return VersionStats(version=stable_version or ""), VersionStats(version=candidate_version or "")

    def _from_records(self, batches: list[Batch], candidate_role: str) -> tuple[VersionStats, VersionStats]:
        """Exact attribution: the splitter recorded which role and version served each request."""
        labels = {b.request_id: b.labels for b in batches}
        stats = {"stable": VersionStats(version=""), candidate_role: VersionStats(version="")}
        for record in self.target.records(set(labels)):
            target = stats.get(record.role)
            if target is None:
                continue
            target.version = target.version or record.version
            count_answer(target, record.ok, record.latency_ms, record.predictions, labels.get(record.request_id))
        stable, canary = stats["stable"], stats[candidate_role]
        if self._versions and not (stable.version and canary.version):
            named_stable, named_canary = self._versioned_stats()
            stable.version = stable.version or named_stable.version
            canary.version = canary.version or named_canary.version
        return stable, canary
