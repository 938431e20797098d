"""The versioned model registry: a directory tree on a local path, gs://, s3:// or a mounted PVC.

    <registry>/<model_name>/versions/<version>/   saved_model/, model.onnx, transform_graph/,
                                                  schema.pbtxt, stats.tfrecord, blessing.json,
                                                  lineage.json, model_card.json, model_card.md
    <registry>/<model_name>/CHAMPION.json         {"version": ..., "path": "versions/<version>", ...}

A version directory is complete before CHAMPION.json names it (its `_COMPLETE` marker is written
last; only marked versions are listed), and CHAMPION.json is replaced in one atomic write, so
readers see the old champion or the new one, never a half-written model.
"""

from __future__ import annotations

import dataclasses

from components.common import io as fio
from components.common import names


@dataclasses.dataclass(frozen=True)
class Champion:
    version: str
    uri: str  # the version directory

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
    )


def restore_champion(registry_uri: str, model_name: str, version: str, rolled_back: str, reason: str) -> None:
    """Name `version` (the one still serving) champion again after `rolled_back` failed its rollout,
    so that the next gates compare with, and the monitor watches, the model users get. One atomic
    write, as a push's; no "previous" (the rolled-back version is newer, not a predecessor)."""
    import datetime as dt

    fio.write_json_atomic(champion_pointer_uri(registry_uri, model_name), {
        "version": version,
        "path": f"{names.REGISTRY_VERSIONS_DIR}/{version}",
        "restored_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "previous": None,
        "rolled_back": rolled_back,
        "reason": reason,
    })
