"""KServe's payload logger, locally: the CloudEvents its agent sends for each answered request, and
the log sink (serving/log_sink.py) they go to, run as a process of the serving environment.

On a cluster the agent beside each predictor POSTs a request event and a response event sharing
`ce-id`, in binary mode, with the extensions below (kserve pkg/logger/worker.go); the local
splitter sends the same two events for every answered predict call, so the sink, its output and
the monitor that reads it are the ones a cluster runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from components.common import names

log = logging.getLogger(__name__)

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
# The header KServe's logger is told to carry (metadataHeaders), in Go's canonical form.
SYNTHETIC_METADATA_HEADER = "-".join(p.capitalize() for p in names.SYNTHETIC_TRAFFIC_HEADER.split("-"))


def event_headers(event_type: str, event_id: str, source: str, at: dt.datetime, endpoint: str,
                  content_type: str, synthetic: str | None, service: str = "local",
                  namespace: str = "local") -> dict[str, str]:
    """Binary-mode CloudEvents headers of one payload-logger event (the body is the payload)."""
    metadata = {SYNTHETIC_METADATA_HEADER: [synthetic]} if synthetic is not None else {}
    return {"ce-specversion": "1.0", "ce-id": event_id, "ce-type": event_type, "ce-source": source,
            "ce-time": at.astimezone(dt.timezone.utc).isoformat(),
            "ce-recordedtime": dt.datetime.now(dt.timezone.utc).isoformat(),
            "ce-inferenceservicename": service, "ce-namespace": namespace, "ce-component": "predictor",
            "ce-endpoint": endpoint, "ce-metadata": json.dumps(metadata), "content-type": content_type}


class LogSinkProcess:
    """`python -m serving.log_sink` on a loopback port, writing to `output`."""

    def __init__(self, python: str, output: str, host: str, port: int, log_path: Path, repo_root: Path,
                 rotate_seconds: float = 5.0):
        self.python, self.output, self.host, self.port = python, output, host, port
        self.log_path, self.repo_root, self.rotate_seconds = log_path, repo_root, rotate_seconds
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        cmd = [self.python, "-m", "serving.log_sink", f"--output={self.output}", f"--host={self.host}",
               f"--port={self.port}", f"--rotate_seconds={self.rotate_seconds:g}"]
        env = {**os.environ, "PYTHONPATH": str(self.repo_root)}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.repo_root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the log sink exited with {self.proc.returncode}; log {self.log_path}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    log.info("log sink (pid %d) on %s writing to %s", self.proc.pid, self.url, self.output)
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the log sink was not ready after {timeout:g} s; log {self.log_path}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the sink writes the parts it holds before it exits."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the log sink did not stop in %.0f s; killing it (buffered records are lost)", timeout)
            self.proc.kill()
            self.proc.wait()
