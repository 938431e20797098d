"""KServe model server for the models the pipeline pushes.

    python -m serving.model_server --model_name=model --model_dir=/mnt/models --http_port=8080 \
        [--backend onnx|savedmodel] [--prediction_log /var/log/predictions.jsonl]

`--model_dir` is a model version directory (saved_model/, model.onnx, model_info.json) or a registry
model root holding CHAMPION.json, whose champion is then served; local, or gs:// / s3:// (copied to
--model_cache_dir first: serving/storage.py). Its default is $AIP_STORAGE_URI (Vertex AI). The
model takes RAW features (the tf.Transform graph is inside the SavedModel):

  V1   POST /v1/models/<name>:predict   {"instances": [{"lvrat": 0.8, "chist": 5, ...}, ...]}
       → {"predictions": [p, ...], "prediction_ids": [...], "model_name": ..., "model_version": ...}
  V2   POST /v2/models/<name>/infer     {"inputs": [{"name": "lvrat", "shape": [n], "datatype": "FP32",
                                          "data": [...]}, ...]}  (one tensor per feature)
       → outputs [{"name": "probability", "datatype": "FP32", "shape": [n], "data": [...]}]
  GET  /v2/health/live, /v2/health/ready, /v2/models/<name> (metadata), /v2/models/<name>/ready

Per label kind (model_info.json "label_kind"; serving/backends.py): binary answers a probability
per row (V2 "probability" [n]), regression a value (V1 floats, V2 "value" [n]), multiclass K class
probabilities (V1 one list of K per row, V2 "probabilities" [n, K], data row-major). The V2
metadata names the kind ("label_kind"), its output and the classes ("classes").

Bad requests are 400 with a message naming the problem (kserve InvalidInput), bodies over
--max_body_bytes are 413. Each prediction is written as a JSON line to --prediction_log by a
background thread (serving/prediction_log.py), never on the request path.

Per request, plain JSON V1 predict skips kserve's router and data plane (serving/v1_fast_path.py),
small requests are predicted on the event loop (uvloop's), and no log line is written: kserve's
latency lines (--enable_latency_logging, which sends V1 back through kserve's path) and uvicorn's
access log (--enable_access_log) are opt-in. Measured in tests/benchmarks/bench_serving.py.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
import tempfile

import kserve
import uvloop
from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from kserve import InferOutput, InferRequest, InferResponse
from kserve import model_server as kserve_model_server
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.rest import server as kserve_rest_server
from kserve.protocol.rest import v2_endpoints as kserve_v2_endpoints
from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse
from kserve.utils.utils import strtobool
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import backends, features, storage
from serving.prediction_log import (
    SYNTHETIC_FIELD,
    SYNTHETIC_TRAFFIC_HEADER,
    PredictionLog,
    new_ids,
    prediction_fields,
)
from serving.v1_fast_path import V1FastPath

log = logging.getLogger("kserve.serving")  # under kserve's configured logger

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_INSTANCES = 10_000
# ONNX Runtime was 2.1-2.6x the SavedModel's requests/s for 1-row requests at half the p50
# (tests/benchmarks/bench_serving.py); one intra-op thread halved CPU per call at equal speed.
DEFAULT_BACKEND = "onnx"
DEFAULT_ONNX_THREADS = 1
# Requests up to this many rows are predicted on the event loop: for them the hand-off to an executor
# thread cost more than the model (bench_serving.py); larger ones go to the executor, so that health
# checks and other requests are not held up behind them.
INLINE_MAX_ROWS = 64


class RawFeatureModel(kserve.Model):
    """A pushed model version behind the V1 and V2 protocols, validated against its raw features."""

    def __init__(self, name: str, model_dir: str, backend: str = DEFAULT_BACKEND,
                 prediction_log: str | None = None, max_instances: int = DEFAULT_MAX_INSTANCES,
                 onnx_threads: int = DEFAULT_ONNX_THREADS, model_cache_dir: str = ""):
        super().__init__(name)
        self.model_dir = model_dir
        self.model_cache_dir = model_cache_dir or os.path.join(tempfile.gettempdir(), "kfp-model-cache")
        self.requested_backend = backend
        self.prediction_log_path = prediction_log
        self.max_instances = max_instances
        self.onnx_threads = onnx_threads
        self.version = ""
        self.backend_name = ""
        self.feature_types: dict[str, str] = {}
        self.label: str | None = None
        self.output = backends.OutputSpec()
        self._backend = None
        self._log: PredictionLog | None = None

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> bool:
        local_dir = storage.fetch_model(self.model_dir, self.model_cache_dir, backends.CHAMPION_FILE)
        resolved = backends.resolve_model_dir(local_dir)
        info = backends.read_model_info(resolved.path)
        backend = self.requested_backend
        if backend == "onnx" and (info.get("onnx") or {}).get("inputs") != "raw":
            log.warning(
                "--backend onnx asked for, but %s says the ONNX model takes %s inputs (not raw features); "
                "serving the SavedModel instead", backends.MODEL_INFO_FILE,
                (info.get("onnx") or {}).get("inputs", "unknown"))
            backend = "savedmodel"
        self._backend = backends.load_backend(resolved.path, backend, info, onnx_threads=self.onnx_threads)
        self.backend_name = backend
        self.version = resolved.version
        self.feature_types = self._backend.feature_types
        self.output = self._backend.spec
        self.label = info.get("label")
        if self.prediction_log_path:
            self._log = PredictionLog(self.prediction_log_path)
        log.info("loaded %s version %s from %s (backend %s, %s output %s, features %s)", self.name, self.version,
                 self.model_dir, backend, self.output.kind, self.output.name, self.feature_types)
        self.ready = True
        return self.ready

    def stop(self):
        if self._log is not None:
            self._log.close()

    # ------------------------------------------------------------------ metadata

    def get_input_types(self) -> list[dict]:
        return [{"name": c, "datatype": features.V2_DATATYPES[k], "shape": [-1]} for c, k in self.feature_types.items()]

    def get_output_types(self) -> list[dict]:
        shape = [-1, self.output.width] if self.output.kind == backends.MULTICLASS else [-1]
        return [{"name": self.output.name, "datatype": "FP32", "shape": shape}]

    # ------------------------------------------------------------------ inference

    async def predict(self, payload: dict | InferRequest, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> dict | InferResponse:
        headers = headers or {}
        v2 = isinstance(payload, InferRequest)
        if v2:
            columns, rows = features.parse_v2(payload.inputs, self.feature_types, self.max_instances)
            request_id = payload.id or headers.get("x-request-id") or new_ids(1)[0]
        else:
            columns, rows = features.parse_v1(payload, self.feature_types, self.max_instances)
            request_id = headers.get("x-request-id") or new_ids(1)[0]
        if len(rows) <= INLINE_MAX_ROWS:
            answers = self._backend.predict(columns)
        else:
            answers = await asyncio.get_running_loop().run_in_executor(None, self._backend.predict, columns)
        predictions = answers.tolist()  # floats, or one list of K class probabilities per row
        ids = new_ids(len(predictions))
        self._record(request_id, ids, rows, predictions, synthetic=SYNTHETIC_TRAFFIC_HEADER in headers)
        if v2:
            output = InferOutput(name=self.output.name, shape=list(answers.shape), datatype="FP32",
                                 data=answers.reshape(-1).tolist())
            return InferResponse(response_id=request_id, model_name=self.name, model_version=self.version,
                                 infer_outputs=[output])
        return {"predictions": predictions, "prediction_ids": ids, "model_name": self.name,
                "model_version": self.version}

    def _record(self, request_id: str, ids: list[str], rows: list[dict], predictions: list,
                synthetic: bool = False) -> None:
        if self._log is None:
            return
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        marker = {SYNTHETIC_FIELD: True} if synthetic else {}
        self._log.log([
            {"prediction_id": pid, "request_id": request_id, "model_name": self.name,
             "model_version": self.version, "backend": self.backend_name, "timestamp": now,
             "features": row, **prediction_fields(self.output.kind, p), **marker}
            for pid, row, p in zip(ids, rows, predictions)
        ])


# ---------------------------------------------------------------------- HTTP plumbing


class BodySizeLimitMiddleware:
    """ASGI middleware: 413 for bodies over `max_bytes` (Content-Length, or counted when chunked)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: str) -> str:
        return f"request body too large: {size} bytes; the limit is {self.max_bytes} bytes"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"error": self._message(length.decode())}, status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPException from body reading; handled below as 413.
                    raise StarletteHTTPException(413, self._message(f"more than {self.max_bytes}"))
            return message

        return await self.app(scope, limited_receive, send)


async def _invalid_input_handler(request: Request, exc: InvalidInput):
    """kserve's handler, minus the ERROR-level traceback it logs for every client mistake."""
    log.info("400 %s: %s", request.url.path, exc.reason)
    return JSONResponse({"error": exc.reason}, status_code=400)


async def _http_error_handler(request: Request, exc: StarletteHTTPException):
    if exc.status_code == 413:  # the same {"error": ...} body as kserve's own errors
        return JSONResponse({"error": exc.detail}, status_code=413)
    return await http_exception_handler(request, exc)


class _Untimed:
    """Stands in for kserve's TimingMiddleware when latency logging is off: passes requests on."""

    def __init__(self, app, **_):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


class VersionedDataPlane(DataPlane):
    """kserve's data plane, with the model version, backend and label kind in the V2 model metadata."""

    async def model_metadata(self, model_name: str) -> dict:
        metadata = await super().model_metadata(model_name)
        model = self.get_model_from_registry(model_name)
        if isinstance(model, RawFeatureModel):
            metadata["versions"] = [model.version]
            metadata["platform"] = model._backend.platform
            metadata["label_kind"] = model.output.kind
            metadata["classes"] = list(model.output.classes)
        return metadata


class LabelledModelMetadata(ModelMetadataResponse):
    """kserve's V2 model metadata body, plus the label kind and the class names (the standard body
    has no place for them, and kserve's would drop them)."""

    label_kind: str | None = None
    classes: list[str] | None = None


def build_parser() -> argparse.ArgumentParser:
    # kserve's own parser as parent: the standard KServe args (--http_port, --grpc_port,
    # --workers, --enable_grpc, ...) are accepted with their usual meaning.
    parser = argparse.ArgumentParser(parents=[kserve_model_server.parser], description=__doc__.splitlines()[0])
    vertex_uri = os.environ.get(storage.VERTEX_STORAGE_ENV) or None
    parser.add_argument("--model_dir", required=vertex_uri is None, default=vertex_uri,
                        help="a model version directory, or a registry model root with CHAMPION.json; "
                             f"local, gs:// or s3:// (default: ${storage.VERTEX_STORAGE_ENV})")
    parser.add_argument("--model_cache_dir", default="",
                        help="where a gs:// or s3:// model is copied (default: <tmp>/kfp-model-cache; "
                             "a writable mount under a read-only root filesystem)")
    parser.add_argument("--backend", choices=backends.BACKENDS, default=DEFAULT_BACKEND,
                        help="onnx is used only when model_info.json says the ONNX model takes raw features; "
                             "otherwise the SavedModel is served")
    parser.add_argument("--onnx_threads", type=int, default=DEFAULT_ONNX_THREADS,
                        help="ONNX Runtime intra-op threads per process (0 = one per core)")
    parser.add_argument("--prediction_log", default=os.environ.get("PREDICTION_LOG") or None,
                        help="JSON-lines file for every prediction (default: $PREDICTION_LOG, else none)")
    parser.add_argument("--max_body_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--max_instances", type=int, default=DEFAULT_MAX_INSTANCES)
    parser.add_argument("--enable_access_log", type=strtobool, default=False,
                        help="uvicorn's access log line per request (on a cluster Knative's queue-proxy "
                             "counts and times every request)")
    # The runtime exposes only the HTTP port; gRPC is opt-in (kserve's default is on). kserve's
    # per-request latency lines are opt-in too: with them on, V1 predict takes kserve's own path.
    parser.set_defaults(enable_grpc=False, enable_latency_logging=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers != 1:
        # kserve's multi-process server re-imports the app in each worker, without this model,
        # the body-size middleware or the prediction log writer: scale with replicas instead.
        parser.error("--workers must be 1 (scale with replicas)")
    model = RawFeatureModel(args.model_name, args.model_dir, backend=args.backend,
                            prediction_log=args.prediction_log, max_instances=args.max_instances,
                            onnx_threads=args.onnx_threads, model_cache_dir=args.model_cache_dir)
    app = kserve_model_server.app
    if not args.enable_latency_logging:
        # Added before the size limit, so the limit wraps it (the last added is the outermost).
        app.add_middleware(V1FastPath, model=model)
        # kserve always wraps the app in a middleware that logs two timing lines per request.
        kserve_rest_server.TimingMiddleware = _Untimed
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=args.max_body_bytes)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    # RESTServer registers its handlers when it starts, from names in its module.
    kserve_rest_server.invalid_input_handler = _invalid_input_handler
    kserve_v2_endpoints.ModelMetadataResponse = LabelledModelMetadata  # likewise, the metadata body
    server = kserve.ModelServer(  # configures kserve's logging, so it comes before the load
        http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers,
        enable_grpc=args.enable_grpc, enable_docs_url=args.enable_docs_url,
        enable_latency_logging=args.enable_latency_logging, access_log_format=args.access_log_format,
    )
    if not (args.enable_access_log or args.access_log_format):
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    server.dataplane = VersionedDataPlane(model_registry=server.registered_models,
                                          predictor_config=server.dataplane.predictor_config)
    model.load()
    # uvicorn's default event loop, which kserve's server config replaces with asyncio's own.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())  # kserve configures the current loop before it runs
    try:
        server.start([model])
    finally:
        model.stop()  # idempotent: flushes the prediction log however the server ended


if __name__ == "__main__":
    sys.exit(main())
