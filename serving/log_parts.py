"""Partitioned JSON-lines parts on any storage (serving/storage.py), rotated by size or age.

    <root>/model=<name>/version=<version>/date=<YYYY-MM-DD>/hour=<HH>/part-<writer>-<seq>.jsonl
    <root>/_sink/<writer>.json      the writer's counters (received, written, dropped, ...)

A part is written whole, once: one PUT on gs:// and s3:// (readers see all of it or nothing), a
temporary sibling and a rename on a local path or PVC. Records wait in memory until their part
reaches `rotate_bytes` or `rotate_seconds`; a part that cannot be written stays buffered and is
retried, and only what exceeds `max_buffered_bytes` is dropped, and counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import posixpath
import threading
import time
import uuid

from serving import storage

log = logging.getLogger("kserve.serving.log_parts")

STATS_DIR = "_sink"
DEFAULT_ROTATE_BYTES = 8 * 1024 * 1024
DEFAULT_ROTATE_SECONDS = 60.0
DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024


def _partition_value(value: str) -> str:
    """A path segment from a model name or version (no separators, no traversal)."""
    cleaned = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in str(value) or "unknown")
    return cleaned.strip(".") or "unknown"


def partition(model_name: str, model_version: str, at: dt.datetime) -> str:
    at = at.astimezone(dt.timezone.utc)
    return (f"model={_partition_value(model_name)}/version={_partition_value(model_version)}/"
            f"date={at:%Y-%m-%d}/hour={at:%H}")


@dataclasses.dataclass
class _Part:
    lines: list[bytes] = dataclasses.field(default_factory=list)
    size: int = 0
    opened: float = dataclasses.field(default_factory=time.monotonic)


class PartWriter:
    """Thread-safe: `add()` from the request path (memory only), `flush_due()` from a timer thread
    (writes the parts that are full or old enough), `close()` at exit."""

    def __init__(self, root: str, rotate_bytes: int = DEFAULT_ROTATE_BYTES,
                 rotate_seconds: float = DEFAULT_ROTATE_SECONDS,
                 max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES, writer_id: str = ""):
        if not root:
            raise ValueError("the log sink needs an output location (--output)")
        if not storage.is_remote(root) and not os.path.isabs(root):
            raise ValueError(f"--output {root!r} is relative: give an absolute path (a mounted volume), "
                             "gs:// or s3://")
        self.root = root.rstrip("/")
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.max_buffered_bytes = max_buffered_bytes
        # Pod name (HOSTNAME) plus a start stamp: replicas and restarts never share a part name.
        self.writer_id = writer_id or f"{os.environ.get('HOSTNAME', 'sink')}-{uuid.uuid4().hex[:8]}"
        self._fs, self._root_path = storage.filesystem(self.root)
        self._parts: dict[str, _Part] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._sequence = 0
        self.counters = {"records_written": 0, "parts_written": 0, "records_dropped": 0, "write_errors": 0}
        self.extra_counters: dict[str, int] = {}
        """Counters of the caller (events received, unmatched, ...), saved with the writer's own."""

    @property
    def buffered_bytes(self) -> int:
        return sum(p.size for p in self._parts.values())

    def add(self, key: str, records: list[dict]) -> None:
        lines = [json.dumps(r, separators=(",", ":"), default=str).encode() + b"\n" for r in records]
        size = sum(map(len, lines))
        with self._lock:
            if self.buffered_bytes + size > self.max_buffered_bytes:
                self.counters["records_dropped"] += len(records)
                if self.counters["records_dropped"] == len(records) or self.counters["records_dropped"] % 1000 == 0:
                    log.warning("log buffer full (%d bytes unwritten): %d records dropped so far",
                                self.buffered_bytes, self.counters["records_dropped"])
                return
            part = self._parts.setdefault(key, _Part())
            part.lines += lines
            part.size += size
        # Full parts are written by flush_due(), off the caller's (the event loop's) thread.

    def flush_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [k for k, p in self._parts.items() if p.size >= self.rotate_bytes or now - p.opened >= self.rotate_seconds]
        if due:
            self._write(due)

    def close(self) -> None:
        with self._lock:
            keys = list(self._parts)
        self._write(keys)

    def _write(self, keys: list[str]) -> None:
        with self._write_lock:  # one writer at a time: part sequence numbers stay unique
            for key in keys:
                with self._lock:
                    part = self._parts.pop(key, None)
                if part is None or not part.lines:
                    continue
                self._sequence += 1
                name = f"part-{self.writer_id}-{self._sequence:06d}.jsonl"
                try:
                    self._put(posixpath.join(key, name), b"".join(part.lines))
                except Exception:  # storage down: keep the records, retry at the next rotation
                    self.counters["write_errors"] += 1
                    log.exception("could not write log part %s/%s/%s; kept for a retry", self.root, key, name)
                    with self._lock:
                        kept = self._parts.setdefault(key, _Part())
                        kept.lines[:0] = part.lines
                        kept.size += part.size
                        kept.opened = time.monotonic()
                    continue
                self.counters["records_written"] += len(part.lines)
                self.counters["parts_written"] += 1
            self.write_stats()

    def _put(self, relative: str, data: bytes) -> None:
        if storage.is_remote(self.root):
            self._fs.pipe_file(posixpath.join(self._root_path, relative), data)
            return
        target = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def stats(self) -> dict:
        return {"writer": self.writer_id, **self.counters, **self.extra_counters,
                "buffered_bytes": self.buffered_bytes,
                "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    def write_stats(self) -> None:
        try:
            self._put(posixpath.join(STATS_DIR, f"{self.writer_id}.json"),
                      json.dumps(self.stats(), sort_keys=True).encode())
        except Exception:
            log.exception("could not write the log sink's counters")
