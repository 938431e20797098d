"""A local rollout's served traffic reaches the log sink as KServe's payload logger would send it:
the splitter's CloudEvents, the sink process of the serving env (serving/log_sink.py), its
partitioned parts, read back with the monitor's own log reader."""

from __future__ import annotations

import json
import urllib.request

from components.deploy.local import LocalConfig, LocalTarget
from components.deploy.tests.test_local import MODEL, SERVER, pytestmark, rows, versions  # noqa: F401
from components.monitor.prediction_logs import LogCounts, LogFilter, read_log


def _predict(url: str, instances: list[dict], synthetic: bool = False) -> dict:
    headers = {"content-type": "application/json", **({"x-synthetic-traffic": "replay"} if synthetic else {})}
    request = urllib.request.Request(f"{url}/v1/models/{MODEL}:predict", json.dumps({"instances": instances}).encode(),
                                     headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_served_traffic_of_a_canary_step_reaches_the_sink(versions, rows, tmp_path):  # noqa: F811
    output = tmp_path / "predictions"
    answers = []
    with LocalTarget(LocalConfig(state_dir=str(tmp_path / "state"), log_sink_output=str(output), **SERVER)) as target:
        target.deploy(versions["v1"])
        target.set_canary(versions["v2"], 50)
        for i in range(40):
            answers.append(_predict(target.url, rows[i * 2:i * 2 + 2]))
        replayed = _predict(target.url, rows[:3], synthetic=True)
        assert target.wait_idle()
    # close() stopped the splitter (after its events went out), then the sink (which wrote its parts).
    counts = LogCounts()
    records = [r for chunk, _ in read_log(str(output), LogFilter(), counts) for r in chunk]
    by_id = {r["prediction_id"]: r for r in records}
    for answer, i in zip(answers, range(40)):
        for pid, p, row in zip(answer["prediction_ids"], answer["predictions"], rows[i * 2:i * 2 + 2]):
            record = by_id[pid]
            assert record["probability"] == p and record["model_version"] == answer["model_version"]
            assert record["features"] == row
            assert record["source"]["endpoint"] == ("canary" if answer["model_version"] == versions["v2"].version
                                                    else "default")
    served = {a["model_version"] for a in answers}
    assert served == {versions["v1"].version, versions["v2"].version}  # 50%: both answered
    assert counts.used == 80 and counts.synthetic == len(replayed["predictions"])  # warm-ups went around the splitter
    assert counts.sink["records_written"] == 80 + 3 and counts.sink["records_dropped"] == 0
    assert counts.sink["unanswered"] == 0 and counts.sink["bad_events"] == 0
