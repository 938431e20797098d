"""The log sink, started for real on loopback, fed the CloudEvents KServe's payload logger sends
(built with the cloudevents SDK) around real answers of the model server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from components.common.tests.storage_peers import _moto_endpoint, s3_root  # noqa: F401
from serving import log_parts, log_sink, storage
from serving.tests.conftest import MODEL, ROOT, free_port

V1 = f"/v1/models/{MODEL}:predict"


def kserve_events(request_body: dict, response_body: dict, synthetic: bool = False, event_id: str = ""):
    """The pair KServe's agent sends for one answered request (pkg/logger/worker.go)."""
    event_id = event_id or str(uuid.uuid4())
    metadata = {"X-Synthetic-Traffic": ["replay"]} if synthetic else {}
    common = {"id": event_id, "source": "http://model-predictor-00002-deployment-5f7d9-abcde/",
              "inferenceservicename": MODEL, "namespace": "ml-models", "component": "predictor",
              "endpoint": "canary", "metadata": json.dumps(metadata)}
    return [CloudEvent({**common, "type": log_sink.REQUEST_TYPE, "datacontenttype": "application/json"},
                       json.dumps(request_body).encode()),
            CloudEvent({**common, "type": log_sink.RESPONSE_TYPE, "datacontenttype": "application/json"},
                       json.dumps(response_body).encode())]


class Sink:
    def __init__(self, output: str, workdir, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output_file = workdir / f"sink-{self.port}.log"
        self._out = open(self.output_file, "w")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOSTNAME": "sink-0"}
        self.proc = subprocess.Popen([sys.executable, "-m", "serving.log_sink", f"--output={output}",
                                      "--host=127.0.0.1", f"--port={self.port}", *extra],
                                     cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.logs()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, self.logs()
                time.sleep(0.1)

    def send(self, event) -> httpx.Response:
        headers, body = to_binary(event)
        return httpx.post(self.url, headers=headers, content=body, timeout=10)

    def logs(self) -> str:
        return self.output_file.read_text()

    def stop(self) -> None:
        """SIGTERM, as a pod stop: the sink writes what it holds, then uvicorn (>= 0.29) re-raises
        the signal, so the exit status is -SIGTERM after a clean shutdown."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self._out.close()
        assert code in (0, -signal.SIGTERM) and "log sink stopped" in self.logs(), self.logs()


def read_parts(root: str) -> tuple[list[str], list[dict], dict]:
    fs, path = storage.filesystem(root)
    files = sorted(p for p in fs.find(path) if p.endswith(".jsonl"))
    records = [json.loads(line) for f in files for line in fs.cat_file(f).decode().splitlines()]
    stats = [json.loads(fs.cat_file(p)) for p in fs.find(f"{path}/{log_parts.STATS_DIR}")]
    return [f[len(path.rstrip('/')) + 1:] for f in files], records, stats[0] if stats else {}


@pytest.mark.parametrize("store", ["local", "s3"])
def test_sink_joins_kserve_events_into_partitioned_prediction_records(server, registry, hmda_rows, tmp_path,
                                                                      request, store):
    root = str(tmp_path / "predictions") if store == "local" else f"{request.getfixturevalue('s3_root')}/predictions"
    sink = Sink(root, tmp_path)
    try:
        real = {"instances": hmda_rows[:4]}
        answer = server.post(V1, json=real).json()
        replayed = {"instances": hmda_rows[4:6]}
        replay_answer = server.post(V1, json=replayed, headers={"x-synthetic-traffic": "replay"}).json()
        request_event, response_event = kserve_events(real, answer, event_id="req-1")
        # The agent sends from a queue: a response may arrive before its request.
        assert sink.send(response_event).status_code == 200
        assert sink.send(request_event).status_code == 200
        for event in kserve_events(replayed, replay_answer, synthetic=True):
            assert sink.send(event).status_code == 200
        unanswered, _ = kserve_events(real, answer)
        assert sink.send(unanswered).status_code == 200
        bad = httpx.post(sink.url, content=b"{}", headers={"content-type": "application/json"}, timeout=10)
        assert bad.status_code == 400 and "CloudEvent" in bad.text
        metrics = httpx.get(f"{sink.url}/metrics", timeout=10).text
        assert "log_sink_requests_joined 2" in metrics
    finally:
        sink.stop()
    files, records, stats = read_parts(root)
    assert files and all(f.startswith(f"model={MODEL}/version={registry['version']}/date=") and "/hour=" in f
                         for f in files)
    assert len(records) == 6
    by_id = {r["request_id"]: r for r in records}
    real_records = [r for r in records if r["request_id"] == "req-1"]
    assert [r["probability"] for r in real_records] == answer["predictions"]
    assert [r["prediction_id"] for r in real_records] == answer["prediction_ids"]
    assert [r["features"] for r in real_records] == hmda_rows[:4]
    assert all(r["model_version"] == registry["version"] for r in records)
    assert sum(1 for r in records if r.get("synthetic")) == 2 and "synthetic" not in by_id["req-1"]
    assert real_records[0]["source"]["endpoint"] == "canary"
    assert stats["records_written"] == 6 and stats["requests_joined"] == 2
    assert stats["events_received"] == 5  # the malformed POST never became an event
    assert stats["records_dropped"] == 0


def test_v2_pairs_are_joined_column_by_column(server, hmda_rows):
    from serving.tests.conftest import v2_inputs

    body = {"id": "v2-req", "inputs": v2_inputs(hmda_rows[:3])}
    answer = server.post(f"/v2/models/{MODEL}/infer", json=body).json()
    records = log_sink.join(*kserve_events(body, answer, event_id="v2-req"))
    assert [r["probability"] for r in records] == answer["outputs"][0]["data"]
    assert records[0]["features"]["selfemp"] == hmda_rows[0]["selfemp"]
    assert [r["prediction_id"] for r in records] == ["v2-req-0", "v2-req-1", "v2-req-2"]


def test_parts_rotate_by_size_and_a_failed_write_is_kept_for_a_retry(tmp_path):
    root = tmp_path / "out"
    writer = log_parts.PartWriter(str(root), rotate_bytes=300, rotate_seconds=3600, writer_id="w")
    key = log_parts.partition("m", "v1", __import__("datetime").datetime(2026, 1, 2, 3, tzinfo=__import__("datetime").timezone.utc))
    assert key == "model=m/version=v1/date=2026-01-02/hour=03"
    records = [{"i": i, "pad": "x" * 40} for i in range(20)]
    root.mkdir()
    (root / "model=m").write_text("a file where a directory must go")  # the first writes fail
    writer.add(key, records[:10])
    assert writer.counters["parts_written"] == 0  # add() only buffers
    writer.flush_due()
    assert writer.counters["write_errors"] == 1 and writer.buffered_bytes > 0
    (root / "model=m").unlink()
    writer.add(key, records[10:])
    writer.flush_due()
    assert writer.counters["parts_written"] == 1 and writer.buffered_bytes == 0
    writer.close()
    parts = sorted((root / key).glob("part-w-*.jsonl"))
    assert len(parts) >= 1
    written = [json.loads(line)["i"] for p in parts for line in p.read_text().splitlines()]
    assert sorted(written) == list(range(20))
    assert writer.counters["records_written"] == 20 and writer.counters["records_dropped"] == 0


def test_relative_output_is_refused():
    with pytest.raises(ValueError, match="relative"):
        log_parts.PartWriter("out/predictions")
