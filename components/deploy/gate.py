"""The push gate of the deploy component: deploy only what the push step published."""

from __future__ import annotations

import json
import os

from components.common import names

NOT_BLESSED = "not deployed: model not blessed"


def push_gate(pushed_model_dir: str, metadata: dict | None = None) -> tuple[bool, str, str]:
    """(deploy?, candidate version, reason) from the push's push_result.json, else its artifact
    metadata. A push that published nothing because the model is already the champion still
    deploys that version (idempotent: unchanged when it is live); one that was not blessed does not."""
    record: dict = {}
    path = os.path.join(pushed_model_dir, names.PUSH_RESULT_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    elif metadata:
        record = dict(metadata)
    if not record:
        return False, "", f"{NOT_BLESSED}: the push step recorded no result ({path} is missing)"
    version = str(record.get("version") or "")
    if record.get("pushed") or version:
        return True, version, str(record.get("reason", ""))
    return False, "", f"{NOT_BLESSED} ({record.get('reason', 'the push published nothing')})"
