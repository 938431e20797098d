"""Prediction log: one JSON line per prediction, written by a background thread.

`PredictionLog.log()` never blocks the request: it puts records on a bounded queue and returns; a
daemon thread writes them and flushes whenever the queue runs empty. `close()` (called on model
unload and at interpreter exit) drains the queue, flushes and closes the file. When the queue is
full, records are dropped and counted (`dropped`) rather than slowing the server down.

Each record carries the features and the kind's prediction (`prediction_fields`): "probability"
(binary), "probabilities" (K floats) and "predicted_class" (the index of the largest; multiclass),
or "value" (regression).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading

import orjson  # kserve's own JSON library (a dependency of kserve)

from serving.label_kinds import BINARY, MULTICLASS, REGRESSION

log = logging.getLogger("kserve.serving.prediction_log")

# A request with this header (any value) is synthetic (warm-up, load test): its records carry
# `"synthetic": true` so that drift monitoring leaves them out. The same names as
# components/common/names.py, which the serving image does not ship.
SYNTHETIC_TRAFFIC_HEADER = "x-synthetic-traffic"
SYNTHETIC_FIELD = "synthetic"

# The record's prediction fields per label kind. The drift monitor reads these:
# components/monitor/config.py's PREDICTION_FIELDS equal them.
PREDICTION_FIELDS = {BINARY: "probability", MULTICLASS: "predicted_class", REGRESSION: "value"}
PROBABILITIES_FIELD = "probabilities"

_STOP = object()


def new_ids(count: int) -> list[str]:
    """`count` random (version 4) UUID strings from one os.urandom call: uuid.uuid4() took ~10 µs
    per id here, more than the ONNX model for a 32-row request (bench_serving.py)."""
    raw = bytearray(os.urandom(16 * count))
    ids = []
    for i in range(0, 16 * count, 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40  # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80  # the RFC 4122 variant
        h = raw[i:i + 16].hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def prediction_fields(kind: str, prediction) -> dict:
    """One prediction's fields in a record: a float (binary, regression) or K class probabilities."""
    if kind == MULTICLASS:
        probabilities = [float(p) for p in prediction]
        return {PROBABILITIES_FIELD: probabilities,
                PREDICTION_FIELDS[kind]: max(range(len(probabilities)), key=probabilities.__getitem__)}
    return {PREDICTION_FIELDS[kind]: float(prediction)}


class PredictionLog:
    def __init__(self, path: str, max_queue: int = 100_000):
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 (closed by close()); orjson writes UTF-8 bytes
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._closed = False
        self._lock = threading.Lock()
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log(self, records: list[dict]) -> None:
        if self._closed:
            return
        for record in records:
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("prediction log queue full: %d records dropped so far", self.dropped)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            try:
                # orjson: ~13x json.dumps's speed here, and the writer shares the GIL with requests.
                self._file.write(orjson.dumps(item, default=str, option=orjson.OPT_APPEND_NEWLINE))
                self.written += 1
                if self._queue.empty():
                    self._file.flush()
            except Exception:  # a bad record or a full disk must not kill the writer
                log.exception("could not write a prediction log record")
        try:
            self._file.flush()
        except Exception:
            log.exception("could not flush the prediction log")

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)  # blocks only if full, which the writer is draining
        self._thread.join(timeout)
        try:
            self._file.flush()
            self._file.close()
        except Exception:
            log.exception("could not close the prediction log")
        log.info("prediction log %s closed: %d written, %d dropped", self.path, self.written, self.dropped)
