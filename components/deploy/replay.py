"""Replay observer: held-out rows sent as V1 requests through the target; per-version figures back.

    rows = load_rows("tests/fixtures/hmda_sample.csv", feature_types)     # or an ingest examples dir
    observe = ReplayObserver(target, "model", rows, ReplayConfig(), requests_per_step=400)
    stable_stats, canary_stats = observe(10)

Each step sends `requests_per_step` requests of `rows_per_request` rows (cycling through the rows
in a seeded shuffled order), `concurrency` at a time, each with its own x-request-id. Attribution is
exact when the target keeps per-request records (LocalTarget's splitter: role, version, status,
latency, predictions per request id). Without records (a remote endpoint), answers are attributed
by the `model_version` in the V1 response, and failed requests, which name no version, count as
the candidate's errors: an unexplained error never helps a candidate pass.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import dataclasses
import json
import logging
import math
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from components.common import io as fio
from components.common import names
from components.common.errors import PipelineInputError
from components.deploy.rollout import VersionStats

log = logging.getLogger(__name__)

MISSING_TEXT = {"", "na", "nan", "null", "none"}


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    rows_per_request: int = 8
    """Rows per request. More rows per request give the PSI check more predictions per request."""
    concurrency: int = 4
    timeout_s: float = 30.0
    seed: int = 0
    max_rows: int = 0
    """Use at most this many rows (0 = all)."""
    synthetic: bool = True
    """Send x-synthetic-traffic: replayed eval rows are not users' traffic, and the prediction log's
    readers (the drift monitor) leave them out. False only where replay stands in for users (the
    retraining demo)."""

    def headers(self, request_id: str) -> dict[str, str]:
        marker = {names.SYNTHETIC_TRAFFIC_HEADER: "replay"} if self.synthetic else {}
        return {"content-type": "application/json", "x-request-id": request_id, **marker}

    def __post_init__(self) -> None:
        if self.rows_per_request < 1 or self.concurrency < 1 or self.timeout_s <= 0 or self.max_rows < 0:
            raise ValueError(f"invalid replay config: {self}")


@dataclasses.dataclass(frozen=True)
class Batch:
    """One request's worth of replayed rows, with their true labels when the rows are labelled."""

    request_id: str
    rows: list[dict]
    labels: list[int] | None = None


class ReplayRows:
    """Held-out rows (and their labels) in a seeded shuffled order, handed out as request-sized
    batches, cycling: the traffic of every observer (local, URL, KServe, Vertex)."""

    def __init__(self, rows: list[dict], config: ReplayConfig, labels: list[int] | None = None):
        if not rows:
            raise ValueError("no rows to replay")
        if labels is not None and len(labels) != len(rows):
            raise ValueError(f"{len(labels)} labels for {len(rows)} rows")
        order = list(range(len(rows)))
        random.Random(config.seed).shuffle(order)
        self.rows = [rows[i] for i in order]
        self.labels = [labels[i] for i in order] if labels is not None else None
        self.rows_per_request = config.rows_per_request
        self._cursor = 0

    def take(self, n: int) -> list[Batch]:
        size, total = self.rows_per_request, len(self.rows)
        batches = []
        for _ in range(n):
            positions = [(self._cursor + i) % total for i in range(size)]
            labels = [self.labels[i] for i in positions] if self.labels is not None else None
            batches.append(Batch(str(uuid.uuid4()), [self.rows[i] for i in positions], labels))
            self._cursor = (self._cursor + size) % total
        return batches


def count_answer(stats: VersionStats, ok: bool, latency_ms: float, predictions: list[float],
                 labels: list[int] | None = None) -> None:
    """One request's outcome into a version's figures. Labels are kept only for a whole answer, so
    they stay aligned with the first len(labels) predictions."""
    stats.requests += 1
    if not ok:
        stats.errors += 1
        return
    stats.latencies_ms.append(latency_ms)
    if labels is not None and len(labels) == len(predictions) and len(stats.labels) == len(stats.predictions):
        stats.labels.extend(labels)
    stats.predictions.extend(predictions)


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


def load_labels(data: str, max_rows: int = 0) -> list[int] | None:
    """The 0/1 labels of load_rows(data)'s rows, in the same order, when `data` is an ingest
    examples directory (its metadata names the label); None for other data (unlabelled traffic)."""
    metadata_path = fio.join(data, names.EXAMPLES_METADATA_FILE)
    path = fio.join(data, names.EVAL, names.EXAMPLES_FILE)
    if not (fio.exists(metadata_path) and fio.exists(path)):
        return None
    label = fio.read_json(metadata_path).get("label")
    if not label:
        return None
    labels = [row[label] for row in _read_examples(path, {label: "int"})]
    if any(value not in (0, 1) for value in labels):
        log.warning("%s: label %r is not 0/1 in every row; the canary's AUC is not judged", path, label)
        return None
    return labels[:max_rows] if max_rows else labels


def load_replay(data: str, version_dir: str, max_rows: int = 0, target: str = "") -> tuple[list[dict], list[int] | None]:
    """What a target's observer replays as traffic to the model in `version_dir`: its rows, typed
    for the model, and their labels when the data is labelled (an ingest examples dir)."""
    if not data:
        raise PipelineInputError(f"the {target} target needs data: held-out rows to replay as traffic")
    return load_rows(data, feature_types_of(version_dir), max_rows), load_labels(data, max_rows)


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


@dataclasses.dataclass
class Answer:
    """What the client saw for one request."""

    request_id: str
    status: int
    latency_ms: float
    version: str = ""
    predictions: list[float] = dataclasses.field(default_factory=list)


def run_coroutine(coroutine):
    """asyncio.run, also from code that already runs an event loop (a Jupyter kernel does): then
    on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class ReplayObserver:
    """`rollout.Observer`: observe(percent) → (stable VersionStats, candidate VersionStats)."""

    def __init__(self, target: RequestLog | None, model_name: str, rows: list[dict], config: ReplayConfig,
                 requests_per_step: int, url: str = "",
                 versions: Callable[[], tuple[str | None, str | None]] | None = None,
                 progress: Callable[[str], None] = print, labels: list[int] | None = None):
        if target is None and not url:
            raise ValueError("a ReplayObserver needs a target with records or a url")
        self.target = target
        self.model_name = model_name
        self.config = config
        self.requests_per_step = requests_per_step
        self._url = url
        self._versions = versions
        self.progress = progress
        self.replay = ReplayRows(rows, config, labels)
        self._labels_by_request: dict[str, list[int] | None] = {}
        self.windows: list[dict] = []
        """Per step: what the client saw (sent, answered, failed, seconds)."""

    async def _send(self, url: str, batches: list[Batch]) -> list[Answer]:
        import aiohttp

        endpoint = f"{url}/v1/models/{self.model_name}:predict"
        queue: asyncio.Queue = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)
        answers: list[Answer] = []
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.config.concurrency)

        async def worker(session) -> None:
            while not queue.empty():
                batch = queue.get_nowait()
                request_id = batch.request_id
                body = json.dumps({"instances": batch.rows}).encode()
                start = time.perf_counter()
                answer = Answer(request_id, 0, 0.0)
                try:
                    async with session.post(endpoint, data=body, headers=self.config.headers(request_id)) as resp:
                        payload = await resp.read()
                        answer.status = resp.status
                        if resp.status == 200:
                            decoded = json.loads(payload)
                            answer.version = str(decoded.get("model_version", ""))
                            answer.predictions = [float(p) for p in decoded.get("predictions", [])]
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                    log.debug("request %s failed: %s", request_id, exc)
                answer.latency_ms = (time.perf_counter() - start) * 1000
                answers.append(answer)

        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(*(worker(session) for _ in range(self.config.concurrency)))
        return answers

    def send(self, requests: int) -> list[Answer]:
        """Send `requests` requests (the next rows in the replay order) and return what came back."""
        url = self.target.url if self.target is not None else self._url
        batches = self.replay.take(requests)
        self._labels_by_request.update((b.request_id, b.labels) for b in batches)
        return run_coroutine(self._send(url, batches))

    def __call__(self, percent: int) -> tuple[VersionStats, VersionStats]:
        started = time.perf_counter()
        answers = self.send(self.requests_per_step)
        seconds = time.perf_counter() - started
        failed = sum(a.status != 200 for a in answers)
        candidate_role = "shadow" if percent == 0 else "canary"
        if self.target is not None:
            self.target.wait_idle()  # shadow copies finish after the client's answer
            stable, canary = self._from_records({a.request_id for a in answers}, candidate_role)
        else:
            stable, canary = self._from_answers(answers)
        self.windows.append({"percent": percent, "sent": len(answers), "failed": failed,
                             "rows": len(answers) * self.config.rows_per_request, "seconds": seconds})
        self.progress(self.describe(percent, stable, canary, len(answers), failed, seconds))
        return stable, canary

    def _from_records(self, ids: set[str], candidate_role: str) -> tuple[VersionStats, VersionStats]:
        stats = {"stable": VersionStats(version=""), candidate_role: VersionStats(version="")}
        for record in self.target.records(ids):
            target = stats.get(record.role)
            if target is None:
                continue
            target.version = target.version or record.version
            count_answer(target, record.ok, record.latency_ms, record.predictions,
                         self._labels_by_request.get(record.request_id))
        self._fill_versions(stats["stable"], stats[candidate_role])
        return stats["stable"], stats[candidate_role]

    def _from_answers(self, answers: list[Answer]) -> tuple[VersionStats, VersionStats]:
        stable_version, candidate_version = self._versions() if self._versions else (None, None)
        stable, canary = VersionStats(version=stable_version or ""), VersionStats(version=candidate_version or "")
        for answer in answers:
            if answer.status == 200 and answer.version == stable.version:
                target = stable
            else:
                target = canary  # the candidate's answers, and every error (see the module docstring)
            count_answer(target, answer.status == 200, answer.latency_ms, answer.predictions,
                         self._labels_by_request.get(answer.request_id))
        return stable, canary

    def _fill_versions(self, stable: VersionStats, canary: VersionStats) -> None:
        if self._versions and not (stable.version and canary.version):
            stable_version, canary_version = self._versions()
            stable.version = stable.version or stable_version or ""
            canary.version = canary.version or canary_version or ""

    @staticmethod
    def describe(percent: int, stable: VersionStats, canary: VersionStats, sent: int, failed: int,
                 seconds: float) -> str:
        from components.deploy.analysis import p99

        def one(stats: VersionStats) -> str:
            latency = p99(stats.latencies_ms)
            return (f"{stats.version or '?'} {stats.requests} req, {stats.errors} err, p99 "
                    f"{'n/a' if latency is None else f'{latency:.1f} ms'}, {len(stats.predictions)} predictions")

        step = "shadow" if percent == 0 else f"{percent}%"
        return (f"step {step}: sent {sent} requests in {seconds:.1f} s ({failed} failed at the client) | "
                f"stable {one(stable)} | {'shadow' if percent == 0 else 'canary'} {one(canary)}")
