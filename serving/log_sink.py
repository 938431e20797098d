"""Log sink for KServe's payload logger: CloudEvents in, partitioned prediction records out.

    python -m serving.log_sink --output gs://bucket/predictions [--port 8080]

An InferenceService with `spec.predictor.logger: {mode: all, url: http://<sink>}` makes KServe's
agent POST two CloudEvents per answered request (binary mode): `org.kubeflow.serving.inference.
request` with the request body and `...response` with the answer, sharing `ce-id`; the extensions
`inferenceservicename`, `namespace`, `component`, `endpoint` and `metadata` (a JSON object of the
headers listed in `metadataHeaders`, by their canonical names) come with both. The sink joins the
pair and writes one record per prediction, in the model server's prediction-log format (so the
drift monitor reads either), through serving/log_parts.py.

The record's prediction is the model's label kind's (serving/prediction_log.py prediction_fields):
a V2 answer names it by its output ("probability", "probabilities" [n, K], "value"), a V1 answer of
K-probability rows is multiclass, and V1 floats are `--label_kind`'s (binary unless told:
probabilities and values look alike on the wire).

A request whose response never comes (KServe logs responses of 200s only) is counted as
`unanswered` after --pending_ttl_s; a response without its request as `orphan_responses`. Both,
and records dropped or not written, are in `<output>/_sink/<writer>.json` and on /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import threading
import time

try:  # cloudevents 1.x (the serving image, via kserve)
    from cloudevents.http import from_http
except ImportError:  # 2.x (the pipeline's test env) keeps the 1.x API under cloudevents.v1
    from cloudevents.v1.http import from_http

from serving import log_parts
from serving.label_kinds import BINARY, MULTICLASS, OUTPUT_NAMES
from serving.prediction_log import SYNTHETIC_FIELD, SYNTHETIC_TRAFFIC_HEADER, prediction_fields

log = logging.getLogger("kserve.serving.log_sink")

# KServe's logger (pkg/logger/worker.go): event types and extension attributes.
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
SOURCE_EXTENSIONS = ("inferenceservicename", "namespace", "component", "endpoint")
METADATA_EXTENSION = "metadata"
DEFAULT_PENDING_TTL_S = 60.0


def _time(event) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return dt.datetime.now(dt.timezone.utc)


def _json(data):
    """An event's data: the SDK gives a JSON body already parsed, or bytes/str when it did not."""
    return json.loads(data) if isinstance(data, (bytes, bytearray, str)) else data


def request_rows(body: dict) -> list[dict]:
    """Feature rows of a V1 ({"instances": [{...}]}) or V2 ({"inputs": [one tensor per feature]}) request."""
    if "instances" in body:
        rows = body["instances"]
        if not all(isinstance(r, dict) for r in rows):
            raise ValueError("V1 instances must be objects of named features")
        return rows
    columns = {}
    for tensor in body.get("inputs") or []:
        data = tensor["data"]
        columns[tensor["name"]] = [v[0] if isinstance(v, list) else v for v in data]
    if not columns:
        raise ValueError("request has neither 'instances' (V1) nor 'inputs' (V2)")
    n = len(next(iter(columns.values())))
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


KIND_OF_OUTPUT = {name: kind for kind, name in OUTPUT_NAMES.items()}


def _rows_of(values: list, width: int) -> list[list[float]]:
    return [values[i:i + width] for i in range(0, len(values), width)]


def response_predictions(body: dict, label_kind: str = BINARY) -> tuple[str, list, list[str] | None]:
    """(label kind, one prediction per row: a float or K class probabilities, prediction ids or
    None) of a V1 or V2 answer; see the module docstring for the kind."""
    if "predictions" in body:
        values, ids = body["predictions"], body.get("prediction_ids")
        if values and all(isinstance(v, list) and len(v) > 1 for v in values):
            return MULTICLASS, values, ids
        kind = BINARY if label_kind == MULTICLASS else label_kind
        return kind, [float(v[0] if isinstance(v, list) else v) for v in values], ids
    output = body["outputs"][0]
    kind = KIND_OF_OUTPUT.get(output.get("name"), label_kind)
    values = output["data"]
    if kind == MULTICLASS:
        shape = output.get("shape") or []
        return kind, values if values and isinstance(values[0], list) else _rows_of(values, int(shape[-1])), None
    return kind, [float(v[0] if isinstance(v, list) else v) for v in values], None


def join(request, response, label_kind: str = BINARY) -> list[dict]:
    """Prediction records of one request/response pair of events."""
    rows = request_rows(_json(request.data))
    answer = _json(response.data)
    kind, probabilities, ids = response_predictions(answer, label_kind)
    if len(rows) != len(probabilities):
        raise ValueError(f"{len(rows)} request rows but {len(probabilities)} predictions")
    event_id = request["id"]
    ids = ids if ids and len(ids) == len(rows) else [f"{event_id}-{i}" for i in range(len(rows))]
    metadata = {}
    try:
        metadata = json.loads(request.get(METADATA_EXTENSION) or "{}") or {}
    except ValueError:
        pass
    synthetic = any(k.lower() == SYNTHETIC_TRAFFIC_HEADER for k in metadata)
    source = {k: request.get(k) for k in SOURCE_EXTENSIONS if request.get(k) is not None}
    source["pod"] = request["source"]
    timestamp = _time(request).astimezone(dt.timezone.utc).isoformat()
    marker = {SYNTHETIC_FIELD: True} if synthetic else {}
    return [{"prediction_id": pid, "request_id": event_id, "model_name": answer.get("model_name", ""),
             "model_version": str(answer.get("model_version") or ""), "timestamp": timestamp,
             "features": row, **prediction_fields(kind, p), "source": source, **marker}
            for pid, row, p in zip(ids, rows, probabilities)]


class Joiner:
    """Pairs request and response events by id and hands the records to a PartWriter."""

    def __init__(self, writer: log_parts.PartWriter, pending_ttl_s: float = DEFAULT_PENDING_TTL_S,
                 label_kind: str = BINARY):
        self.writer = writer
        self.pending_ttl_s = pending_ttl_s
        self.label_kind = label_kind
        self._pending: dict[str, tuple[float, object, object]] = {}  # id -> (arrived, request, response)
        self._lock = threading.Lock()
        self.counters = writer.extra_counters
        for name in ("events_received", "requests_joined", "unanswered", "orphan_responses", "bad_events"):
            self.counters.setdefault(name, 0)

    def add(self, event) -> None:
        self.counters["events_received"] += 1
        kind = event["type"]
        if kind not in (REQUEST_TYPE, RESPONSE_TYPE):
            self.counters["bad_events"] += 1
            raise ValueError(f"unexpected event type {kind!r}: expected {REQUEST_TYPE} or {RESPONSE_TYPE}")
        with self._lock:
            arrived, request, response = self._pending.pop(event["id"], (time.monotonic(), None, None))
            if kind == REQUEST_TYPE:
                request = event
            else:
                response = event
            if request is None or response is None:
                self._pending[event["id"]] = (arrived, request, response)
                return
        try:
            records = join(request, response, self.label_kind)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self.counters["bad_events"] += 1
            log.warning("could not join the events of %s: %s", event["id"], exc)
            return
        self.counters["requests_joined"] += 1
        if records:
            first = records[0]
            self.writer.add(log_parts.partition(first["model_name"], first["model_version"], _time(request)), records)

    def expire(self) -> None:
        deadline = time.monotonic() - self.pending_ttl_s
        with self._lock:
            old = [k for k, (arrived, _, _) in self._pending.items() if arrived < deadline]
            for key in old:
                _, request, _ = self._pending.pop(key)
                self.counters["unanswered" if request is not None else "orphan_responses"] += 1

    def tick(self) -> None:
        self.expire()
        self.writer.flush_due()


def metrics_text(counters: dict) -> str:
    lines = []
    for name, value in sorted(counters.items()):
        if isinstance(value, int):
            lines += [f"# TYPE log_sink_{name} counter" if name != "buffered_bytes" else f"# TYPE log_sink_{name} gauge",
                      f"log_sink_{name} {value}"]
    return "\n".join(lines) + "\n"


def build_app(joiner: Joiner, tick_s: float = 1.0):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def receive(request):
        body = await request.body()
        try:
            event = from_http(dict(request.headers), body)
            joiner.add(event)
        except Exception as exc:  # noqa: BLE001 - a bad event is the sender's problem: 400, counted
            return JSONResponse({"error": f"not a KServe inference CloudEvent: {exc}"}, status_code=400)
        return PlainTextResponse("", status_code=200)

    async def health(request):
        return PlainTextResponse("ok")

    async def metrics(request):
        return PlainTextResponse(metrics_text(joiner.writer.stats()))

    async def ticker():
        while True:
            await asyncio.sleep(tick_s)
            await asyncio.get_running_loop().run_in_executor(None, joiner.tick)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.ensure_future(ticker())
        try:
            yield
        finally:  # SIGTERM (pod stop): the last parts are written before the process ends
            task.cancel()
            joiner.expire()
            await asyncio.get_running_loop().run_in_executor(None, joiner.writer.close)
            log.info("log sink stopped: %s", joiner.writer.stats())

    return Starlette(routes=[Route("/", receive, methods=["POST"]), Route("/healthz", health),
                             Route("/metrics", metrics)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="where parts go: an absolute path, gs:// or s3://")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rotate_bytes", type=int, default=log_parts.DEFAULT_ROTATE_BYTES)
    parser.add_argument("--rotate_seconds", type=float, default=log_parts.DEFAULT_ROTATE_SECONDS)
    parser.add_argument("--max_buffered_bytes", type=int, default=log_parts.DEFAULT_MAX_BUFFERED_BYTES)
    parser.add_argument("--pending_ttl_s", type=float, default=DEFAULT_PENDING_TTL_S)
    parser.add_argument("--label_kind", choices=list(OUTPUT_NAMES), default=BINARY,
                        help="what V1 answers of one float per row are: binary probabilities or regression values")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        writer = log_parts.PartWriter(args.output, args.rotate_bytes, args.rotate_seconds, args.max_buffered_bytes)
    except ValueError as exc:
        parser.error(str(exc))
    app = build_app(Joiner(writer, args.pending_ttl_s, args.label_kind))
    log.info("log sink on %s:%d writing to %s as %s", args.host, args.port, args.output, writer.writer_id)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
