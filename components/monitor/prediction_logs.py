"""Reading prediction logs: the model server's JSON-lines file, or the log sink's partitioned parts
(`model=<m>/version=<v>/date=<d>/hour=<h>/part-*.jsonl`, serving/log_parts.py) on a path, gs:// or
s3://. Records are filtered to the monitored version(s) and window and counted (`LogCounts`),
together with what the sink itself could not write (its `_sink/<writer>.json` counters)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import gzip
import itertools
import json
import math
import os
from collections.abc import Iterator

from components.common import io as fio
from components.common import names
from components.common.errors import PipelineInputError

try:  # in the pipeline image (via apache-beam); ~2x faster than json on log lines
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

MAX_EXAMPLES = 5
# The log sink's counters beside its parts; never prediction records.
SINK_STATS_DIR = "_sink"


def _loads(data: bytes):
    return _orjson.loads(data) if _orjson is not None else json.loads(data)


def parse_time(text: str, what: str = "timestamp") -> dt.datetime:
    """ISO-8601 → aware datetime (naive means UTC; a trailing Z is accepted)."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise PipelineInputError(f"{what} {text!r} is not an ISO-8601 time (e.g. 2026-11-23T00:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass
class LogCounts:
    """What reading the log saw. `used` records are the window's sample."""

    files: int = 0
    lines: int = 0
    blank: int = 0
    malformed: int = 0   # not JSON
    invalid: int = 0     # JSON, but not a prediction record (no features object or no prediction)
    synthetic: int = 0   # warm-up / load-test records (names.SYNTHETIC_FIELD), never traffic
    other_versions: dict[str, int] = dataclasses.field(default_factory=dict)
    outside_window: int = 0
    matched: int = 0     # records of the monitored version(s), at any time
    used: int = 0        # ... and in the window
    sink: dict[str, int] = dataclasses.field(default_factory=dict)
    """The log sink's own counters, summed over its writers (records_dropped, unanswered, ...)."""
    examples: list[str] = dataclasses.field(default_factory=list)  # the first problems, for the report

    def problem(self, text: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)


@dataclasses.dataclass(frozen=True)
class LogFilter:
    version: str | None = None  # None: every version
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    prediction_field: str = "probability"
    """The record's prediction (config.PREDICTION_FIELDS: the label kind's)."""

    @property
    def windowed(self) -> bool:
        return self.since is not None or self.until is not None


def log_files(uri: str) -> list[str]:
    if not fio.exists(uri):
        raise PipelineInputError(f"prediction log {uri} does not exist")
    if not fio.isdir(uri):
        return [uri]
    # Hidden or underscored segments are temporaries and the sink's counters, not predictions.
    files = [fio.join(uri, rel) for rel in fio.list_files(uri)
             if not any(part.startswith((".", "_")) for part in rel.split("/"))
             and ".json" in os.path.basename(rel)]
    if not files:
        raise PipelineInputError(f"prediction log directory {uri} holds no *.jsonl files")
    return files


@contextlib.contextmanager
def _open(path: str):
    """A binary line iterator over a log file (gzip when the name ends in .gz)."""
    with fio.open_binary(path) as raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield unzipped
        else:
            yield raw


@contextlib.contextmanager
def _gc_paused():
    """Decoding allocates ~20 objects per record and none of them in reference cycles: the cyclic
    GC's passes over them cost ~30% of parsing (measured), so it pauses per chunk."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse_lines(lines: list[bytes], where: str, first_line: int, counts: LogCounts) -> list:
    """JSON values of the non-blank lines; malformed lines counted and dropped. Line by line: with
    orjson and the GC paused that is faster than one parse of the joined chunk (measured), and a
    bad line costs nothing extra."""
    values = []
    for i, line in enumerate(lines):
        try:
            values.append(_loads(line))
        except ValueError as exc:
            if not line or line.isspace():
                counts.blank += 1
                continue
            counts.malformed += 1
            counts.problem(f"{where}:{first_line + i}: not JSON ({str(exc)[:80]}): {line[:60]!r}")
    return values


def sink_counters(uri: str) -> dict[str, int]:
    """The log sink's counters under `uri`/_sink, summed over its writers; {} for a plain log."""
    totals: dict[str, int] = {}
    stats_dir = fio.join(uri, SINK_STATS_DIR)
    for name in fio.listdir(stats_dir):
        if not name.endswith(".json"):
            continue
        try:
            stats = fio.read_json(fio.join(stats_dir, name))
        except (OSError, ValueError):
            continue
        for key, value in stats.items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    return totals


def read_log(uri: str, filt: LogFilter, counts: LogCounts, chunk_rows: int = 50_000
             ) -> Iterator[tuple[list[dict], list[bool] | None]]:
    """(records of the monitored version(s) in file order, in-window flags or None = all) per chunk."""
    files = log_files(uri)
    if len(files) > 1 or files[0] != uri:
        counts.sink = sink_counters(uri)
    for path in files:
        counts.files += 1
        where = os.path.basename(path)
        with _open(path) as f:
            line_no = 1
            while lines := list(itertools.islice(f, chunk_rows)):
                counts.lines += len(lines)
                with _gc_paused():
                    kept, flags = _filter(_parse_lines(lines, where, line_no, counts), filt, where, counts)
                line_no += len(lines)
                if kept:
                    yield kept, flags


def _filter(values: list, filt: LogFilter, where: str, counts: LogCounts) -> tuple[list[dict], list[bool] | None]:
    """The prediction records of the monitored version(s), with in-window flags (None: no window)."""
    kept, flags = [], ([] if filt.windowed else None)
    for record in values:
        if type(record) is not dict:
            counts.invalid += 1
            counts.problem(f"{where}: a JSON {type(record).__name__}, not a prediction record")
            continue
        features, prediction = record.get("features"), record.get(filt.prediction_field)
        if type(features) is not dict or type(prediction) not in (float, int) \
                or not math.isfinite(prediction):
            counts.invalid += 1
            counts.problem(f"{where}: record {str(record.get('prediction_id'))[:40]!r} has no "
                           f"features object or no numeric {filt.prediction_field}")
            continue
        if record.get(names.SYNTHETIC_FIELD):
            counts.synthetic += 1
            continue
        if filt.version is not None and record.get("model_version") != filt.version:
            other = str(record.get("model_version"))
            counts.other_versions[other] = counts.other_versions.get(other, 0) + 1
            continue
        if flags is not None:
            try:
                stamp = parse_time(record.get("timestamp"))
            except PipelineInputError:
                counts.invalid += 1
                counts.problem(f"{where}: record {str(record.get('prediction_id'))[:40]!r} has no "
                               "ISO-8601 timestamp")
                continue
            inside = (filt.since is None or stamp >= filt.since) and (filt.until is None or stamp < filt.until)
            flags.append(inside)
            counts.outside_window += not inside
            counts.used += inside
        else:
            counts.used += 1
        counts.matched += 1
        kept.append(record)
    return kept, flags
