"""Per-revision request metrics in the names and labels of Knative's queue-proxy, which is what
Prometheus scrapes from each KServe revision on a cluster:

    revision_app_request_count{revision_name, response_code, response_code_class}    counter
    revision_app_request_latencies_bucket{revision_name, response_code_class, le}     histogram, ms

The local splitter counts what it forwards here and serves them at /metrics, so the same PromQL
(e.g. `sum by (revision_name) (increase(revision_app_request_count{response_code_class="5xx"}[2m]))`)
reads a local rollout and a cluster's. A request that got no answer counts as the 502/504 the
client received."""

from __future__ import annotations

import collections
import threading

COUNT = "revision_app_request_count"
LATENCIES = "revision_app_request_latencies"
# Knative's queue-proxy latency buckets (ms).
BUCKETS_MS = (5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000,
              2000, 5000, 10000, 20000, 50000, 100000)


def code_class(status: int) -> str:
    return f"{status // 100}xx"


class RevisionMetrics:
    """Thread-safe counters; `render()` is the Prometheus text exposition format (0.0.4)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter = collections.Counter()  # (revision, code) -> n
        self._buckets: dict[tuple[str, str], list[int]] = {}  # (revision, class) -> per-bucket counts
        self._sums: collections.Counter = collections.Counter()  # (revision, class) -> ms

    def observe(self, revision: str, status: int, latency_ms: float) -> None:
        key = (revision, code_class(status))
        with self._lock:
            self._counts[(revision, status)] += 1
            buckets = self._buckets.setdefault(key, [0] * (len(BUCKETS_MS) + 1))
            index = next((i for i, bound in enumerate(BUCKETS_MS) if latency_ms <= bound), len(BUCKETS_MS))
            buckets[index] += 1
            self._sums[key] += latency_ms

    def render(self) -> str:
        with self._lock:
            counts, buckets, sums = dict(self._counts), {k: list(v) for k, v in self._buckets.items()}, dict(self._sums)
        lines = [f"# HELP {COUNT} The number of requests that are routed to user-container",
                 f"# TYPE {COUNT} counter"]
        for (revision, status), n in sorted(counts.items()):
            lines.append(f'{COUNT}{{revision_name="{revision}",response_code="{status}",'
                         f'response_code_class="{code_class(status)}"}} {n}')
        lines += [f"# HELP {LATENCIES} The response time in millisecond", f"# TYPE {LATENCIES} histogram"]
        for (revision, klass), per_bucket in sorted(buckets.items()):
            labels = f'revision_name="{revision}",response_code_class="{klass}"'
            cumulative = 0
            for bound, n in zip((*map(str, BUCKETS_MS), "+Inf"), per_bucket):
                cumulative += n
                lines.append(f'{LATENCIES}_bucket{{{labels},le="{bound}"}} {cumulative}')
            lines.append(f"{LATENCIES}_sum{{{labels}}} {sums[(revision, klass)]}")
            lines.append(f"{LATENCIES}_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"
