"""The versioned model registry: a directory tree on a local path, gs://, s3:// or a mounted PVC.

    <registry>/<model_name>/versions/<version>/   saved_model/, model.onnx, transform_graph/,
                                                  schema.pbtxt, stats.tfrecord, blessing.json,
                                                  lineage.json, model_card.json, model_card.md
    <registry>/<model_name>/CHAMPION.json         {"version": ..., "path": "versions/<version>", ...}

A version directory is complete before CHAMPION.json names it (its `_COMPLETE` marker is written
last; only marked versions are listed), and CHAMPION.json is replaced in one atomic write, so
readers see the old champion or the new one, never a half-written model.

CHAMPION.json changes only by compare-and-swap (swap_champion): the writer names the champion it
expects to replace, and each change first claims `champion-claims/<sequence>` with a create-only
write (O_EXCL locally, ifGenerationMatch=0 on GCS, IfNoneMatch on S3), so of two pushes judged
against the same champion exactly one lands and the other gets ChampionChangedError.
"""

from __future__ import annotations

import dataclasses
import json

from components.common import io as fio
from components.common import names


class ChampionChangedError(RuntimeError):
    """The champion is not the one this change was judged against (another push or a rollback
    changed it): nothing was swapped; evaluate the candidate against the new champion again."""

    def __init__(self, expected: str | None, found: str | None, detail: str = ""):
        super().__init__(
            f"the champion changed: expected {expected or 'none'}, found {found or 'none'}"
            + (f" ({detail})" if detail else "") + "; nothing was swapped, evaluate against the current champion again")
        self.expected, self.found = expected, found


@dataclasses.dataclass(frozen=True)
class Champion:
    version: str
    uri: str  # the version directory
    sequence: int = 0
    """How many swaps made this pointer (0 for one written before swaps were counted)."""

    @property
    def saved_model_uri(self) -> str:
        return fio.join(self.uri, names.SAVED_MODEL_DIR)

    @property
    def onnx_uri(self) -> str:
        return fio.join(self.uri, names.ONNX_FILE)

    @property
    def transform_graph_uri(self) -> str:
        return fio.join(self.uri, names.TRANSFORM_GRAPH)

    @property
    def schema_uri(self) -> str:
        return fio.join(self.uri, names.SCHEMA_FILE)

    @property
    def train_stats_uri(self) -> str:
        return fio.join(self.uri, names.STATS_FILE)

    @property
    def lineage_uri(self) -> str:
        return fio.join(self.uri, names.LINEAGE_FILE)

    @property
    def model_card_uri(self) -> str:
        """The JSON model card (versions pushed before push wrote cards have none)."""
        return fio.join(self.uri, names.MODEL_CARD_JSON_FILE)


def model_root(registry_uri: str, model_name: str) -> str:
    return fio.join(registry_uri, model_name)


def champion_pointer_uri(registry_uri: str, model_name: str) -> str:
    return fio.join(model_root(registry_uri, model_name), names.CHAMPION_FILE)


def versions_root(registry_uri: str, model_name: str) -> str:
    return fio.join(model_root(registry_uri, model_name), names.REGISTRY_VERSIONS_DIR)


def is_complete(version_uri: str) -> bool:
    """A version whose push finished: its completion marker, written last, is there."""
    return fio.exists(fio.join(version_uri, names.VERSION_COMPLETE_FILE))


def list_complete_versions(registry_uri: str, model_name: str) -> list[str]:
    """Published versions, oldest first (names are v<UTC timestamp>-<hash>); staging folders and
    versions whose push did not finish are left out."""
    root = versions_root(registry_uri, model_name)
    return sorted(v for v in fio.listdir(root) if not v.startswith(".") and is_complete(fio.join(root, v)))


STAGING_PREFIX = ".staging-"
STALE_STAGING_SECONDS = 6 * 3600
"""A staging folder this old belongs to a push that died (a push stages in seconds to minutes);
younger ones may be a concurrent push's and are left alone."""


def remove_stale_staging(registry_uri: str, model_name: str, now: float | None = None) -> list[str]:
    """Delete the local staging folders killed pushes left behind; returns their names. On object
    stores a push writes its version directory in place, and one without its completion marker is
    never listed, so there is nothing to stage there."""
    import os
    import shutil
    import time

    root = versions_root(registry_uri, model_name)
    if not fio.is_local(root) or not os.path.isdir(root):
        return []
    now = time.time() if now is None else now
    removed = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.startswith(STAGING_PREFIX) and now - os.path.getmtime(path) > STALE_STAGING_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


DEFAULT_DECISION_THRESHOLD = 0.5
"""For a version pushed before blessings recorded the threshold they were judged at."""


def decision_threshold(registry_uri: str, model_name: str, version: str) -> float:
    """The decision threshold a published version was evaluated at (its blessing.json): the one
    train chose on validation unless the pipeline set one."""
    blessing = fio.join(versions_root(registry_uri, model_name), version, names.BLESSING_FILE)
    if not fio.exists(blessing):
        return DEFAULT_DECISION_THRESHOLD
    return float(fio.read_json(blessing).get("decision_threshold", DEFAULT_DECISION_THRESHOLD))


def read_champion(registry_uri: str, model_name: str) -> Champion | None:
    """The current champion, or None when nothing was pushed yet."""
    if not registry_uri:
        return None
    pointer = champion_pointer_uri(registry_uri, model_name)
    if not fio.exists(pointer):
        return None
    record = fio.read_json(pointer)
    return Champion(
        version=record["version"],
        uri=fio.join(model_root(registry_uri, model_name), record["path"]),
        sequence=int(record.get("sequence", 0)),
    )


def swap_champion(registry_uri: str, model_name: str, expected: str | None, record: dict) -> int:
    """Make `record` (version, path, ...) CHAMPION.json if the champion is still `expected` (None:
    no champion yet); returns the new sequence number. ChampionChangedError when it is not, or when
    another writer claimed the same change first."""
    current = read_champion(registry_uri, model_name)
    found = current.version if current else None
    if found != expected:
        raise ChampionChangedError(expected, found)
    sequence = (current.sequence if current else 0) + 1
    claim = fio.join(model_root(registry_uri, model_name), names.REGISTRY_CLAIMS_DIR, f"{sequence:010d}.json")
    if not fio.create_exclusive(claim, json.dumps({"from": expected, "to": record["version"]}) + "\n"):
        raise ChampionChangedError(expected, found, f"change {sequence} was claimed by another writer")
    fio.write_json_atomic(champion_pointer_uri(registry_uri, model_name), {**record, "sequence": sequence})
    return sequence


def restore_champion(registry_uri: str, model_name: str, version: str, rolled_back: str, reason: str) -> None:
    """Name `version` (the one still serving) champion again after `rolled_back` failed its rollout,
    so that the next gates compare with, and the monitor watches, the model users get. A swap, as a
    push's (ChampionChangedError if the champion is no longer `rolled_back`); no "previous" (the
    rolled-back version is newer, not a predecessor)."""
    import datetime as dt

    swap_champion(registry_uri, model_name, rolled_back, {
        "version": version,
        "path": f"{names.REGISTRY_VERSIONS_DIR}/{version}",
        "restored_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "previous": None,
        "rolled_back": rolled_back,
        "reason": reason,
    })
