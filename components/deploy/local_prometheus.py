"""A Prometheus on loopback scraping the local splitter's /metrics (Debian's `prometheus` binary;
`make prometheus` installs it), so the local target's canary steps are judged by the same PromQL
over the same metric names as on a cluster (components/deploy/prometheus.py)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from components.deploy.prometheus import PrometheusError, PrometheusProvider

SCRAPE_INTERVAL_S = 1.0
"""Short, so each analysis window waits little for its last requests to be scraped."""
JOB = "splitter"


def binary() -> str | None:
    return shutil.which("prometheus")


class LocalPrometheus:
    """One Prometheus process scraping `target` (host:port); its data lives under `workdir`."""

    def __init__(self, target: str, workdir: str | Path, port: int, host: str = "127.0.0.1",
                 scrape_interval_s: float = SCRAPE_INTERVAL_S):
        self.target, self.workdir, self.host, self.port = target, Path(workdir), host, port
        self.scrape_interval_s = scrape_interval_s
        self.proc: subprocess.Popen | None = None
        self._ready = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "LocalPrometheus":
        path = binary()
        if path is None:
            raise PrometheusError("no prometheus binary on PATH (`make prometheus` installs Debian's package)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        seconds = f"{self.scrape_interval_s:g}s"
        config.write_text(f"global: {{scrape_interval: {seconds}, scrape_timeout: {seconds}}}\n"
                          f"scrape_configs:\n- job_name: {JOB}\n  static_configs:\n"
                          f"  - targets: ['{self.target}']\n")
        with open(self.workdir / "prometheus.log", "ab") as log:
            self.proc = subprocess.Popen(
                [path, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                 f"--web.listen-address={self.host}:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> PrometheusProvider:
        """Blocks until the query API answers and the splitter has been scraped once (a target
        reaches the scrape loop a few seconds after start)."""
        provider = PrometheusProvider(self.url)
        deadline = time.monotonic() + timeout_s
        while not self._ready:
            if self.proc is None or self.proc.poll() is not None:
                raise PrometheusError(f"prometheus is not running (see {self.workdir / 'prometheus.log'})")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):
                    pass
                self._ready = provider.query(f'up{{job="{JOB}"}}') == 1
            except (OSError, PrometheusError):
                pass
            if not self._ready:
                if time.monotonic() > deadline:
                    raise PrometheusError(f"prometheus at {self.url} did not scrape {self.target} "
                                          f"within {timeout_s:.0f} s (see {self.workdir / 'prometheus.log'})")
                time.sleep(0.2)
        return provider

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
