"""The monitor judges the traffic the log sink wrote: KServe-shaped CloudEvents (cloudevents SDK)
through the sink's joiner and part writer (serving/log_sink.py, serving/log_parts.py) to S3
(moto's server), then run_monitor on that location."""

from __future__ import annotations

import json

try:
    from cloudevents.v1.conversion import to_binary
    from cloudevents.v1.http import CloudEvent, from_http
except ImportError:  # cloudevents 1.x
    from cloudevents.conversion import to_binary
    from cloudevents.http import CloudEvent, from_http

from components.common.tests.storage_peers import _moto_endpoint, s3_root  # noqa: F401
from components.monitor import config as mcfg
from components.monitor import monitor as mon
from components.monitor.tests import helpers as h
from serving import log_parts, log_sink


def _events(request_id: str, rows: list[dict], probabilities: list[float], synthetic: bool = False):
    common = {"id": request_id, "source": "model-predictor-00001-deployment-abc", "inferenceservicename": "model",
              "namespace": "ml-models", "component": "predictor", "endpoint": "default",
              "metadata": json.dumps({"X-Synthetic-Traffic": ["1"]} if synthetic else {}),
              "datacontenttype": "application/json"}
    request = CloudEvent({**common, "type": log_sink.REQUEST_TYPE, "time": h.START.isoformat()},
                         json.dumps({"instances": rows}).encode())
    response = CloudEvent({**common, "type": log_sink.RESPONSE_TYPE},
                          json.dumps({"predictions": probabilities, "model_name": "model",
                                      "model_version": h.VERSION}).encode())
    # Over the wire and back, as the sink's HTTP handler receives them.
    return [from_http(*to_binary(e)) for e in (request, response)]


def test_monitor_reads_the_sinks_partitioned_output(tmp_path, s3_root):  # noqa: F811
    registry = h.make_registry(tmp_path / "registry")
    output = f"{s3_root}/predictions"
    writer = log_parts.PartWriter(output, rotate_bytes=64 * 1024, writer_id="sink-0")
    joiner = log_sink.Joiner(writer, pending_ttl_s=0)
    sample = h.sample_rows(h.hmda_rows(), 1200, seed=3)
    for start in range(0, len(sample), 4):
        rows = [{k: r.get(k) for k in h.FEATURE_TYPES} for r in sample[start:start + 4]]
        for event in _events(f"r{start}", rows, [h.probability(r, h.stand_in.BIAS) for r in rows]):
            joiner.add(event)
        joiner.tick()  # the sink's timer: writes the parts that are full
    warmup = [{k: None for k in h.FEATURE_TYPES}]
    for event in _events("warm-up", warmup, [0.5], synthetic=True):
        joiner.add(event)
    joiner.add(_events("no-answer", warmup, [0.5])[0])  # its response never comes
    joiner.expire()
    writer.close()
    assert writer.counters["parts_written"] > 1  # rotated by size

    result = mon.run_monitor(mcfg.MonitorConfig(log_uri=output, registry_uri=str(registry)))
    assert result.counts.used == 1200 and result.counts.synthetic == 1
    assert result.counts.files == writer.counters["parts_written"]  # _sink/ counters are not read as records
    assert result.counts.sink["unanswered"] == 1 and result.counts.sink["records_written"] == 1201
    assert any("could not record" in n and "unanswered 1" in n for n in result.notes)
    assert result.decision == mcfg.OK
