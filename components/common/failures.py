"""Make a component's failure readable by whoever runs the pipeline.

A KFP task that raises only says FAILURE; the reason is lost in its log. Components wrap their work
in `failure_report(output_dir)`, which writes FAILURE.json (error type and message) into the output
artifact's directory before re-raising, so `make run` can put the reason into run_summary.json.
"""

from __future__ import annotations

import contextlib
import traceback
from typing import Iterator

from components.common import io as fio

FAILURE_FILE = "FAILURE.json"


@contextlib.contextmanager
def failure_report(output_dir: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        fio.write_json_atomic(
            fio.join(output_dir, FAILURE_FILE),
            {
                "error_type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(limit=5),
            },
        )
        raise
