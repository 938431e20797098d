"""Replayed traffic, the same for every target: held-out rows as request-sized batches, one HTTP
transport for V1 requests (httpx), one way to send a window concurrently, and one attribution of
the answers to the stable and the candidate version.

    rows = ReplayRows(rows, config, labels)
    with V1Client(config) as client:
        batches = rows.take(400)
        results = send_window(batches, [client.sender(url)], config.concurrency)
    attribute(batches, results, stable, candidate, shadow=False)

Attribution is fail safe: an answer that failed (status, timeout, unreadable body) names no
version, and an answer naming neither the stable nor the candidate cannot be placed: both count as
the CANDIDATE's errors, so an unexplained failure can stop a rollout, never help it pass.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable

from components.common import label_kinds, names
from components.deploy.analysis import p99
from components.deploy.rollout import VersionStats

log = logging.getLogger(__name__)


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
    labels: list[float] | None = None


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


@dataclasses.dataclass
class Answer:
    """What the client saw for one request."""

    request_id: str
    ok: bool = False
    """An answer with predictions (HTTP 200 and a readable V1 body)."""
    status: int = 0
    latency_ms: float = 0.0
    version: str = ""
    """The version that answered, as its target names it ("" when it named none)."""
    predictions: list[float] = dataclasses.field(default_factory=list)


def scalar_predictions(values: list, shape: list[int] | None = None) -> list[float]:
    """One number per row of an answer's predictions, from its wire format (label_kinds'
    scalar_prediction without the kind): a row of K > 1 class probabilities (V1 nested, or V2 data
    flat with shape [n, K]) is its predicted class index; a number or [number] is itself."""
    if shape is not None and len(shape) == 2 and shape[1] > 1:
        rows = [values[i:i + shape[1]] for i in range(0, len(values), shape[1])]
        return label_kinds.scalar_prediction(label_kinds.MULTICLASS, rows).tolist()
    if values and all(isinstance(v, list) and len(v) > 1 for v in values):
        return label_kinds.scalar_prediction(label_kinds.MULTICLASS, values).tolist()
    return [float(v[0] if isinstance(v, list) else v) for v in values]


Sender = Callable[[Batch], Answer]
"""Sends one batch to one endpoint and says what came back; never raises for a failed request."""


def timed(request_id: str, call: Callable[[Answer], None]) -> Answer:
    """An Answer filled by `call`, with the request's latency; a failure leaves it not ok."""
    answer = Answer(request_id)
    started = time.perf_counter()
    try:
        call(answer)
    except Exception as exc:  # noqa: BLE001 - any failure of one request is an error of the window
        log.debug("request %s failed: %s", request_id, exc)
        answer.ok, answer.predictions = False, []
    answer.latency_ms = (time.perf_counter() - started) * 1000
    return answer


class V1Client:
    """KServe V1 `:predict` requests over one pooled httpx client (thread safe), our headers on each."""

    def __init__(self, config: ReplayConfig, transport=None):
        import httpx

        self.config = config
        self._client = httpx.Client(transport=transport, timeout=config.timeout_s,
                                    limits=httpx.Limits(max_connections=2 * config.concurrency))
        """transport: an httpx transport (tests: httpx.MockTransport); None = the network."""

    def sender(self, url: str, headers: dict[str, str] | None = None) -> Sender:
        """Batches as V1 requests to `url` (…/v1/models/<name>:predict), `headers` added (an ingress' Host)."""
        extra = dict(headers or {})

        def send(batch: Batch) -> Answer:
            def call(answer: Answer) -> None:
                response = self._client.post(url, json={"instances": batch.rows},
                                             headers={**extra, **self.config.headers(batch.request_id)})
                answer.status = response.status_code
                if response.status_code == 200:
                    body = response.json()
                    answer.version = str(body.get("model_version", ""))
                    answer.predictions = scalar_predictions(body.get("predictions", []))
                    answer.ok = True

            return timed(batch.request_id, call)

        return send

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "V1Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def send_window(batches: list[Batch], senders: list[Sender], concurrency: int) -> list[list[Answer]]:
    """Per batch, one answer per sender, `concurrency` batches at a time; a batch goes to its
    senders one after the other (a shadow sees the very same rows)."""
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda batch: [send(batch) for send in senders], batches))


def count_answer(stats: VersionStats, ok: bool, latency_ms: float, predictions: list[float],
                 labels: list[float] | None = None) -> None:
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


def attribute(batches: list[Batch], results: list[list[Answer]], stable: VersionStats,
              candidate: VersionStats, shadow: bool = False) -> None:
    """Each batch's answers into the stable's and the candidate's figures (fail safe: see the module
    docstring). Canary: the one answer goes to the version it names. Shadow: the first answer
    (the served endpoint) is the stable's, errors included, and the second (the shadow's) the
    candidate's, which must name the candidate."""
    served = {v for v in (stable.version, candidate.version) if v}
    for batch, answers in zip(batches, results):
        first = answers[0]
        if shadow:
            count_answer(stable, first.ok, first.latency_ms, first.predictions, batch.labels)
            mirrored = answers[1]
            count_answer(candidate, mirrored.ok and mirrored.version == candidate.version, mirrored.latency_ms,
                         mirrored.predictions, batch.labels)
        elif first.ok and first.version in served:
            count_answer(stable if first.version == stable.version else candidate, True, first.latency_ms,
                         first.predictions, batch.labels)
        else:
            count_answer(candidate, False, first.latency_ms, first.predictions)


def replay_window(rows: ReplayRows, requests: int, senders: list[Sender], config: ReplayConfig,
                  stable: VersionStats, candidate: VersionStats, percent: int,
                  progress: Callable[[str], None]) -> tuple[VersionStats, VersionStats]:
    """One observation window by version-named answers: `requests` batches through `senders` (a
    second sender is the shadow when percent is 0), attributed, reported."""
    started = time.perf_counter()
    batches = rows.take(requests)
    results = send_window(batches, senders, config.concurrency)
    attribute(batches, results, stable, candidate, shadow=percent == 0)
    failed = sum(not answers[0].ok for answers in results)
    progress(describe_window(percent, stable, candidate, len(results), failed, time.perf_counter() - started))
    return stable, candidate


def describe_window(percent: int, stable: VersionStats, candidate: VersionStats, sent: int, failed: int,
                    seconds: float) -> str:
    """One progress line for an observation window."""

    def one(stats: VersionStats) -> str:
        latency = p99(stats.latencies_ms)
        return (f"{stats.version or '?'} {stats.requests} req, {stats.errors} err, p99 "
                f"{'n/a' if latency is None else f'{latency:.1f} ms'}, {len(stats.predictions)} predictions")

    role = "shadow" if percent == 0 else "canary"
    step = "shadow" if percent == 0 else f"{percent}%"
    return (f"step {step}: sent {sent} requests in {seconds:.1f} s ({failed} failed at the client) | "
            f"stable {one(stable)} | {role} {one(candidate)}")
