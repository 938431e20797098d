"""V1 predict without kserve's per-request layers, for the one model this server holds.

kserve answers `POST /v1/models/<name>:predict` through FastAPI's router, its data plane (decode,
CloudEvents, readiness), `Model.__call__` (pre/post-process hooks, three Prometheus histograms) and
the response encoder. For our model most of that is pass-through, and it cost more than the model:
tests/benchmarks/bench_serving.py measured the plainest Starlette endpoint at half kserve's p50.

`V1FastPath` is ASGI middleware that answers a plain JSON V1 request itself with the same model
call (`RawFeatureModel.predict`: validation, prediction ids, the prediction log), the same answers
and the same error bodies ({"error": ...}, 400 for bad input). It still observes kserve's
`request_predict_seconds` histogram on /metrics. Everything else goes on to kserve unchanged:
other paths and models, CloudEvents (binary `ce-*` headers, structured events, other content
types), and a model that is not ready (kserve answers 503).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable

import orjson
from kserve.errors import InvalidInput
from kserve.metrics import PREDICT_HIST_TIME, get_labels
from starlette.exceptions import HTTPException

log = logging.getLogger("kserve.serving")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

JSON_MEDIA_TYPE = "application/json"
# kserve's test for a structured CloudEvent (kserve.utils.utils.is_structured_cloudevent)
CLOUDEVENT_KEYS = ("time", "type", "source", "id", "specversion", "data")


class V1FastPath:
    """ASGI middleware: `model`'s V1 predict answered here, any other request passed to `app`."""

    def __init__(self, app, model) -> None:
        self.app = app
        self.model = model
        self.path = f"/v1/models/{model.name}:predict"
        self.labels = get_labels(model.name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path or not self.model.ready:
            return await self.app(scope, receive, send)
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        media_type = headers.get("content-type", JSON_MEDIA_TYPE).split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE or any(name.startswith("ce-") for name in headers):
            return await self.app(scope, receive, send)
        try:
            body = await _read_body(receive)
        except HTTPException as exc:  # the body-size limit, raised while reading
            return await _answer(send, exc.status_code, {"error": exc.detail})
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:  # kserve's own message for it
            return await _answer(send, 400, {"error": f"Unrecognized request format: {exc}"})
        if isinstance(payload, dict) and all(key in payload for key in CLOUDEVENT_KEYS):
            return await self.app(scope, _replay(body, receive), send)
        try:
            started = time.perf_counter()
            response = await self.model.predict(payload, headers)
            PREDICT_HIST_TIME.labels(**self.labels).observe(time.perf_counter() - started)
        except InvalidInput as exc:
            log.info("400 %s: %s", self.path, exc.reason)  # as the server's handler on kserve's path
            return await _answer(send, 400, {"error": exc.reason})
        except Exception as exc:  # kserve's generic handler's answer
            log.error("Exception:", exc_info=exc)
            return await _answer(send, 500, {"error": f"{type(exc).__name__} : {exc}"})
        await _answer(send, 200, response)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(499, "client disconnected")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read once, then defers to the connection's."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, content: Any) -> None:
    body = orjson.dumps(content)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
