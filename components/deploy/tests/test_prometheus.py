"""A real Prometheus (Debian's `prometheus`, on loopback; `make test` installs it) scrapes the
local splitter, and the provider's PromQL reads each revision's requests, errors and p99 back."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request

import pytest

from components.deploy.local import Backend, Routes, Splitter, free_port
from components.deploy.prometheus import PrometheusError, PrometheusProvider, queries
from components.deploy.tests.test_splitter import backends, post  # noqa: F401 - fixtures

SCRAPE_S = 1


@pytest.fixture
def splitter():
    started = Splitter(seed=3, request_timeout_s=5)
    started.start()
    yield started
    started.stop()


@pytest.fixture
def prometheus(tmp_path, splitter):
    binary = shutil.which("prometheus")
    assert binary, "no prometheus binary: `make prometheus` installs Debian's package"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global: {{scrape_interval: {SCRAPE_S}s, scrape_timeout: {SCRAPE_S}s}}\n"
                      f"scrape_configs:\n- job_name: splitter\n  static_configs:\n"
                      f"  - targets: ['127.0.0.1:{splitter.port}']\n")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("prometheus did not become ready") from None
                time.sleep(0.2)
        provider = PrometheusProvider(url)
        # Discovered targets reach the scrape loop after a few seconds: wait for the first scrape.
        while provider.query('up{job="splitter"}') != 1:
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus never scraped the splitter")
            time.sleep(0.5)
        yield provider
    finally:
        proc.terminate()
        proc.wait(10)


def wait_scrapes(n: int = 2) -> None:
    time.sleep(n * SCRAPE_S + 0.5)


def test_per_revision_figures_from_a_real_prometheus(splitter, backends, prometheus):  # noqa: F811
    dead = Backend(key="dead-key", version="v9", url=f"http://127.0.0.1:{free_port()}")
    splitter.set_routes(Routes(stable=backends.backend("v1"), canary=dead, percent=50))
    # Series exist (and are scraped at their starting value) before the measured traffic.
    while not {post(splitter.url, f"w{i}")[0] for i in range(20)} >= {200, 502}:
        pass
    wait_scrapes()
    statuses = [post(splitter.url, f"p{i}")[0] for i in range(200)]
    wait_scrapes()
    stable, canary = prometheus.figures("v1", window_s=30), prometheus.figures("v9", window_s=30)
    # increase() extrapolates to the window's edges: counts are close, not exact.
    assert stable.requests == pytest.approx(statuses.count(200), rel=0.5)
    assert canary.requests == pytest.approx(statuses.count(502), rel=0.5)
    assert stable.error_rate == 0 and canary.error_rate == pytest.approx(1.0, abs=0.01)
    assert stable.p99_ms is not None and 0 < stable.p99_ms <= 1000
    assert stable.source == f"prometheus {prometheus.url}"
    nothing = prometheus.figures("never-deployed", window_s=30)
    assert (nothing.requests, nothing.error_rate, nothing.p99_ms) == (0.0, None, None)


def test_a_broken_query_is_an_error_not_a_zero(prometheus):
    with pytest.raises(PrometheusError):
        prometheus.query("sum(")
    assert set(queries("r", 60)) == {"requests", "errors", "p99_ms"}
