"""Slow checks against real TFDV (its import alone takes ~15 s here): the committed statistics
fixture is what validate_data's options compute today, and on a registry from `make run` the
monitor reads the real baseline (skipped without one)."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import pytest

from components.common import drift, names
from components.monitor import baseline as mbase
from components.monitor import config as mcfg
from components.monitor import monitor as mon
from components.monitor.tests import helpers as h

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
RUN = ROOT / "out" / "run"


def _histograms(stats) -> dict:
    out = {}
    for feature in stats.datasets[0].features:
        name = feature.path.step[0]
        if feature.HasField("num_stats"):
            for histogram in feature.num_stats.histograms:
                out[(name, histogram.type)] = [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets]
        else:
            out[(name, "rank")] = [(b.label, b.sample_count) for b in feature.string_stats.rank_histogram.buckets]
    return out


def test_the_statistics_fixture_is_what_tfdv_computes():
    fresh = _histograms(h.statistics_from_rows(h.hmda_rows()))
    committed = _histograms(h.fixture_statistics())
    assert fresh.keys() == committed.keys()
    for key, buckets in committed.items():
        assert len(fresh[key]) == len(buckets), key
        for got, want in zip(fresh[key], buckets):
            assert got == (pytest.approx(want) if isinstance(want[0], float) else want), key


@pytest.mark.skipif(not (RUN / "registry" / "model" / "CHAMPION.json").exists(), reason="no `make run` registry")
def test_the_make_run_champion_as_baseline(tmp_path):
    """The HMDA sample replayed against the real champion: PSI equals PSI from the run's raw train
    split binned at the same bounds (when that split is still on disk)."""
    import tensorflow as tf

    registry = str(RUN / "registry")
    rows = h.hmda_rows()
    log = h.write_log(tmp_path / "log.jsonl", [h.log_record(i, r, h.probability(r), version="")
                                               for i, r in enumerate(rows)])
    config = mcfg.MonitorConfig(log_uri=str(log), registry_uri=registry, all_versions=True,
                               prediction_reference_rows=400)
    baseline = mbase.load_baseline(config)
    assert set(baseline.numeric) == {"pirat", "hirat", "lvrat", "unemp", "chist", "mhist"}
    result = mon.run_monitor(config, baseline)
    assert result.counts.used == 800 and len(result.rows) == 26
    # The champion's own train split: the run whose ingested data hashes as the champion's lineage says.
    lineage = json.loads((Path(mbase.resolve_version(registry, "model")[1]) / names.LINEAGE_FILE).read_text())
    train_files = [str(Path(m).parent / names.TRAIN / names.EXAMPLES_FILE)
                   for m in sorted(glob.glob(str(RUN / "pipeline_root" / "*" / "ingest" / "examples" /
                                                 names.EXAMPLES_METADATA_FILE)))
                   if json.loads(Path(m).read_text()).get("data_sha256") == lineage["data"]["sha256"]]
    if not train_files:
        pytest.skip("the champion's train split is gone")
    values = []
    for record in tf.data.TFRecordDataset(train_files[-1], compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        values.append(example.features.feature["lvrat"].float_list.value[0])
    if len(values) != baseline.rows:
        pytest.skip("the train split on disk is not the champion's")
    base = baseline.numeric["lvrat"]
    edges = base.grid[base.edge_cells].astype(np.float64)
    current = np.array([r["lvrat"] for r in rows], dtype=np.float32).astype(np.float64)
    expected = drift.psi_from_fractions(np.append(drift.binned_fractions(np.array(values, np.float64), edges), 0),
                                        np.append(drift.binned_fractions(current, edges), 0))
    got = next(r.value for r in result.rows if r.feature == "lvrat" and r.statistic == mcfg.PSI)
    assert got == pytest.approx(expected, rel=1e-9)
