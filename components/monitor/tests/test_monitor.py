"""The drift monitor on prediction logs built from the HMDA sample, against the sample's TFDV
statistics (data/, as validate_data computes them) in a registry version: decisions, the figures
against an independent computation from the raw rows, log hygiene, outputs, CLI and KFP component."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from components.common import drift, names, tfdv_stats
from components.common.errors import PipelineInputError
from components.monitor import baseline as mbase
from components.monitor import config as mcfg
from components.monitor import drift_counts as mcounts
from components.monitor import monitor as mon
from components.monitor import report
from components.monitor.tests import helpers as h

N = 3000


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return h.hmda_rows()


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> str:
    return h.make_registry(tmp_path_factory.mktemp("registry"))


def _log(tmp_path: Path, rows: list[dict], mutate=None, start: int = 0, bias_after: int | None = None,
         name: str = "predictions.jsonl", n: int = N, seed: int = 1, **write) -> Path:
    """n rows drawn from the sample; `mutate` applied from record `start` on; predictions of the
    (mutated) features, with the logit shifted by +1.5 from record `bias_after` on."""
    sample = h.sample_rows(rows, n, seed=seed)
    records = []
    for i, row in enumerate(sample):
        if mutate is not None and i >= start:
            mutate(row)
        bias = h.stand_in.BIAS + (1.5 if bias_after is not None and i >= bias_after else 0.0)
        records.append(h.log_record(i, row, h.probability(row, bias)))
    return h.write_log(tmp_path / name, records, **write)


def _run(log: Path, registry: str, **kwargs) -> mon.MonitorResult:
    return mon.run_monitor(mcfg.MonitorConfig(log_uri=str(log), registry_uri=registry, **kwargs))


def _rows_of(result: mon.MonitorResult, feature: str) -> dict[str, mcounts.DriftRow]:
    return {r.statistic: r for r in result.rows if r.feature == feature}


# ------------------------------------------------------------------------------ decisions


def test_log_drawn_from_the_baseline_is_ok(tmp_path, rows, registry):
    result = _run(_log(tmp_path, rows), registry)
    assert result.decision == mcfg.OK and result.triggered == []
    assert {r.severity for r in result.rows} == {mcfg.OK}
    numeric = [f for f, k in h.FEATURE_TYPES.items() if k != "string"]
    categorical = [f for f, k in h.FEATURE_TYPES.items() if k == "string"]
    assert {(r.feature, r.statistic) for r in result.rows} == (
        {(f, s) for f in numeric for s in (mcfg.PSI, mcfg.KS)} | {(f, s) for f in categorical for s in (mcfg.JS, mcfg.LINF)}
        | {(mcfg.PREDICTION_FEATURE, mcfg.PSI), (mcfg.PREDICTION_FEATURE, mcfg.KS)})
    assert max(r.value for r in result.rows) < 0.05
    assert result.counts.used == N and result.counts.malformed == result.counts.invalid == 0
    prediction = _rows_of(result, mcfg.PREDICTION_FEATURE)[mcfg.PSI]
    assert prediction.rows == N - 1000  # after the 1000-row reference window
    assert result.baseline["prediction"] == "reference_window" and result.baseline["training_rows"] == 800


def test_a_shifted_numeric_feature_acts_and_is_named(tmp_path, rows, registry):
    log = _log(tmp_path, rows, mutate=lambda r: r.update(lvrat=r["lvrat"] + 0.15))
    result = _run(log, registry)
    assert result.decision == mcfg.ACT
    assert result.triggered == ["lvrat"]  # predictions moved from the first request: the reference moved too
    lvrat = _rows_of(result, "lvrat")
    assert lvrat[mcfg.PSI].severity == lvrat[mcfg.KS].severity == mcfg.ACT
    assert lvrat[mcfg.PSI].value > 1.0 and lvrat[mcfg.KS].value > 0.4
    assert "lvrat (psi" in report.decision_text(result)


def test_a_shifted_categorical_feature_acts_on_js_and_linf(tmp_path, rows, registry):
    rng = np.random.default_rng(5)
    log = _log(tmp_path, rows, mutate=lambda r: r.update(selfemp="yes" if rng.random() < 0.6 else r["selfemp"]))
    result = _run(log, registry)
    selfemp = _rows_of(result, "selfemp")
    assert selfemp[mcfg.JS].severity == selfemp[mcfg.LINF].severity == mcfg.ACT
    # baseline P(yes) = 0.118 in the sample; ~0.65 now: L-infinity is that gap
    assert selfemp[mcfg.LINF].value == pytest.approx(0.53, abs=0.04)
    assert result.decision == mcfg.ACT and result.triggered == ["selfemp"]


def test_shifted_predictions_act_on_the_prediction_alone(tmp_path, rows, registry):
    result = _run(_log(tmp_path, rows, bias_after=1000), registry)
    assert result.decision == mcfg.ACT and result.triggered == [mcfg.PREDICTION_FEATURE]
    prediction = _rows_of(result, mcfg.PREDICTION_FEATURE)
    assert prediction[mcfg.PSI].severity == prediction[mcfg.KS].severity == mcfg.ACT
    assert all(r.severity == mcfg.OK for r in result.rows if r.kind != mcfg.PREDICTION)


def test_a_prediction_baseline_file_replaces_the_reference_window(tmp_path, rows, registry):
    baseline = tmp_path / "eval_scores.txt"
    scores = [h.probability(r) for r in h.sample_rows(rows, 2000, seed=9)]
    baseline.write_text("\n".join(str(s) for s in scores))
    same = _run(_log(tmp_path, rows), registry, prediction_baseline_uri=str(baseline))
    assert same.decision == mcfg.OK and same.baseline["prediction"] == "file"
    assert _rows_of(same, mcfg.PREDICTION_FEATURE)[mcfg.PSI].rows == N  # no reference window taken
    shifted = _run(_log(tmp_path, rows, bias_after=0, name="b.jsonl"), registry, prediction_baseline_uri=str(baseline))
    assert shifted.triggered == [mcfg.PREDICTION_FEATURE]


def test_warn_between_the_thresholds_and_thresholds_per_statistic(tmp_path, rows, registry):
    log = _log(tmp_path, rows, mutate=lambda r: r.update(lvrat=r["lvrat"] + 0.15))
    lenient = _run(log, registry, warn=1.0, act=5.0)
    assert lenient.decision == mcfg.WARN and lenient.by_severity == {"act": [], "warn": ["lvrat"]}
    only_psi_strict = _run(_log(tmp_path, rows, name="same.jsonl"), registry, thresholds={"psi": (0.0001, 0.0002)},
                           noise_quantile=0)
    assert only_psi_strict.decision == mcfg.ACT
    assert {r.statistic for r in only_psi_strict.rows if r.severity == mcfg.ACT} == {mcfg.PSI}


def test_small_samples_are_judged_against_their_noise_level(tmp_path, rows, registry):
    """1200 undrifted predictions: the last 200 against the first 1000 read PSI 0.11 / KS 0.12
    by chance; the 99% no-drift level for 200 vs 1000 rows (~0.13) keeps that from warning, while
    a real shift of the same 200 rows still acts."""
    log = _log(tmp_path, rows, n=1200, seed=4)
    thresholds_only = _rows_of(_run(log, registry, noise_quantile=0), mcfg.PREDICTION_FEATURE)
    assert {r.severity for r in thresholds_only.values()} == {mcfg.WARN}
    with_noise = _run(log, registry)
    prediction = _rows_of(with_noise, mcfg.PREDICTION_FEATURE)
    assert with_noise.decision == mcfg.OK
    for row in prediction.values():
        assert row.rows == 200 and row.warn < row.value < row.noise == row.bounds[0]
    assert any("sampling-noise level" in n for n in with_noise.notes)
    shifted = _run(_log(tmp_path, rows, n=1200, seed=4, bias_after=1000, name="b.jsonl"), registry)
    assert shifted.triggered == [mcfg.PREDICTION_FEATURE]


def test_noise_levels_match_simulated_no_drift_quantiles():
    """The large-sample approximations against 300 simulated undrifted samples (n=500, N=1500)."""
    rng = np.random.default_rng(0)
    n, big_n, q = 500, 1500, 0.99
    figures = {s: [] for s in mcfg.STATISTICS}
    probabilities = np.array([0.6, 0.3, 0.1])
    for _ in range(300):
        counts = mcounts.BinCounts(mbase.numeric_baseline_from_values("x", rng.normal(size=big_n)))
        counts.add(rng.normal(size=n))
        figures[mcfg.PSI].append(counts.psi())
        figures[mcfg.KS].append(counts.ks())
        base = np.bincount(rng.choice(3, big_n, p=probabilities), minlength=3) / big_n
        current = np.bincount(rng.choice(3, n, p=probabilities), minlength=3) / n
        figures[mcfg.JS].append(drift.jensen_shannon(base, current))
        figures[mcfg.LINF].append(drift.linf(base, current))
    deciles = np.append(np.full(10, 0.1), 0.0)
    for statistic, values in figures.items():
        expected = deciles if statistic in (mcfg.PSI, mcfg.KS) else probabilities
        level = drift.noise_level(statistic, n, big_n, q, expected, expected)
        simulated = float(np.quantile(values, q))
        assert simulated * 0.8 < level < simulated * 1.3, (statistic, level, simulated)


def test_config_lists_every_problem():
    with pytest.raises(PipelineInputError) as info:
        mcfg.MonitorConfig(log_uri="", registry_uri="r", warn=0.3, act=0.2, thresholds={"chi2": (1, 2)},
                          since="yesterday", min_rows=0)
    for part in ("log_uri is required", "warn <= act", "unknown statistic 'chi2'", "not an ISO-8601", "min_rows"):
        assert part in str(info.value)


# ------------------------------------------------------------------------------ figures


def test_psi_equals_psi_from_the_raw_training_rows_and_ks_is_close(tmp_path, rows, registry):
    """The baseline is TFDV statistics; the same PSI must come out of the 800 raw rows binned at
    the training deciles of TFDV's quantile bounds, and the KS at the histogram bounds must be near
    the exact KS."""
    stats = {f.path.step[0]: f for f in h.fixture_statistics().datasets[0].features}
    for feature, shift in (("lvrat", 0.03), ("pirat", 0.02), ("chist", 1), ("unemp", 0.5)):
        sample = h.sample_rows(rows, N, seed=2)
        for row in sample:
            row[feature] += shift
        log = h.write_log(tmp_path / f"{feature}.jsonl",
                          [h.log_record(i, r, h.probability(r)) for i, r in enumerate(sample)])
        got = _rows_of(_run(log, registry), feature)
        train = np.array([r[feature] for r in rows], dtype=np.float64)
        current = np.array([r[feature] for r in sample], dtype=np.float64)
        if h.FEATURE_TYPES[feature] == "float":
            current = current.astype(np.float32).astype(np.float64)
        quantiles = next(x for x in stats[feature].num_stats.histograms if x.type == x.QUANTILES)
        edges = drift.quantile_edges_from_cdf(*tfdv_stats.cdf_at_bounds(quantiles))
        expected = drift.psi_from_fractions(np.append(drift.binned_fractions(train, edges), 0.0),
                                            np.append(drift.binned_fractions(current, edges), 0.0))
        assert got[mcfg.PSI].value == pytest.approx(expected, rel=1e-9), feature
        exact_ks = drift.ks_statistic(train, current)
        assert exact_ks - 0.02 < got[mcfg.KS].value < exact_ks + 0.002, feature


def test_values_sent_as_decimals_are_compared_in_float32(tmp_path, rows, registry):
    """Clients send 3.2, training saw float32(3.2); compared in float64 the tied rows land on the
    other side of a quantile bound and unemp reads PSI ~1.2 (measured) on undrifted traffic."""
    def round_floats(row):
        for name, kind in h.FEATURE_TYPES.items():
            if kind == "float" and row[name] is not None:
                row[name] = round(row[name], 4)

    log = _log(tmp_path, rows, mutate=round_floats, seed=3)
    assert _run(log, registry).decision == mcfg.OK
    as_float64 = h.make_registry(tmp_path / "f64", feature_types={k: "int" if v == "float" else v
                                                                  for k, v in h.FEATURE_TYPES.items()})
    assert _rows_of(_run(log, as_float64), "unemp")[mcfg.PSI].severity == mcfg.ACT


def test_missing_values_are_a_psi_bin_and_a_category(tmp_path, rows, registry):
    def blank(row):
        row["pirat"] = None
        row["phist"] = None

    result = _run(_log(tmp_path, rows, mutate=blank, start=N - 300), registry)  # the last 10% missing
    pirat, phist = _rows_of(result, "pirat"), _rows_of(result, "phist")
    assert pirat[mcfg.PSI].missing_fraction == pytest.approx(0.1) and pirat[mcfg.PSI].baseline_missing_fraction == 0
    assert pirat[mcfg.PSI].severity == mcfg.ACT  # (0.1 - 1e-4) * ln(0.1 / 1e-4) = 0.69
    assert pirat[mcfg.KS].severity == mcfg.OK    # the values that are there did not move
    assert phist[mcfg.LINF].value == pytest.approx(0.1, abs=0.02)
    assert phist[mcfg.JS].missing_fraction == pytest.approx(0.1)


def test_chunk_size_does_not_change_the_figures(tmp_path, rows, registry):
    log = _log(tmp_path, rows, bias_after=1500)
    big, small = _run(log, registry), _run(log, registry, chunk_rows=7)
    assert [(r.feature, r.statistic, r.value, r.rows) for r in big.rows] == \
           [(r.feature, r.statistic, r.value, r.rows) for r in small.rows]


# ------------------------------------------------------------------------------ the log


def test_malformed_lines_are_counted_not_fatal(tmp_path, rows, registry):
    good = h.log_record(0, rows[0], 0.2)
    bad_value = {**good, "features": {**good["features"], "lvrat": "high"}}
    extra = {10: "this is not json", 20: json.dumps(good)[:50], 30: "[1, 2]",
             40: json.dumps({"prediction_id": "x", "probability": 0.3}), 50: "",
             60: json.dumps({**good, "model_version": "v-old"}), 70: json.dumps(bad_value)}
    result = _run(_log(tmp_path, rows, extra_lines=extra), registry)
    c = result.counts
    assert (c.malformed, c.invalid, c.blank) == (2, 2, 1)
    assert c.other_versions == {"v-old": 1} and c.used == N + 1
    assert c.lines == N + len(extra)
    assert any("not JSON" in e and ":11:" in e for e in c.examples)  # file:line of the bad line
    assert any("lvrat: 1 logged values were not numbers" in n for n in result.notes)
    assert result.decision == mcfg.OK


def test_synthetic_warm_up_records_are_skipped_and_counted(tmp_path, rows, registry):
    # 40 warm-up records (every feature missing) would read as a 1.3% missing rate on every feature.
    warm_up = {**h.log_record(0, {}, 0.5), names.SYNTHETIC_FIELD: True}
    extra = {i * 50: json.dumps({**warm_up, "prediction_id": f"w{i}"}) for i in range(40)}
    result = _run(_log(tmp_path, rows, extra_lines=extra), registry)
    assert result.counts.synthetic == 40 and result.counts.used == N
    clean = _run(_log(tmp_path, rows, name="clean.jsonl"), registry)
    assert [(r.feature, r.statistic, r.value) for r in result.rows] == [
        (r.feature, r.statistic, r.value) for r in clean.rows]
    assert "| synthetic records (warm-up, load tests; skipped) | 40 |" in report.report_markdown(result)


def test_the_synthetic_traffic_names_match_the_model_servers():
    from serving import prediction_log

    assert prediction_log.SYNTHETIC_TRAFFIC_HEADER == names.SYNTHETIC_TRAFFIC_HEADER
    assert prediction_log.SYNTHETIC_FIELD == names.SYNTHETIC_FIELD


def test_empty_and_unusable_logs_are_clear_errors(tmp_path, rows, registry):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(PipelineInputError, match="is empty: no predictions to monitor"):
        _run(empty, registry)
    with pytest.raises(PipelineInputError, match="does not exist"):
        _run(tmp_path / "absent.jsonl", registry)
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("nope\n{\"a\": 1}\n")
    with pytest.raises(PipelineInputError, match="1 not JSON; 1 not prediction records"):
        _run(garbage, registry)
    other = h.write_log(tmp_path / "other.jsonl", [h.log_record(i, rows[i], 0.1, version="v-old") for i in range(5)])
    with pytest.raises(PipelineInputError, match=r"other versions: v-old \(5\)"):
        _run(other, registry)
    few = h.write_log(tmp_path / "few.jsonl", [h.log_record(i, rows[i], 0.1) for i in range(20)])
    with pytest.raises(PipelineInputError, match="only 20 predictions .* min_rows=100"):
        _run(few, registry)


def test_time_window_and_versions(tmp_path, rows, registry):
    day1, day2 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
    sample = h.sample_rows(rows, 2400, seed=4)
    records = []
    for i, row in enumerate(sample):
        when = day1 + dt.timedelta(seconds=10 * i) if i < 1200 else day2 + dt.timedelta(seconds=10 * i)
        if i >= 1200:
            row["lvrat"] += 0.15
        records.append(h.log_record(i, row, h.probability(row), when=when))
    records.append(h.log_record(9999, rows[0], 0.5, version="v-new", when=day2))
    log = h.write_log(tmp_path / "log.jsonl", records)
    first = _run(log, registry, until="2026-11-02T00:00:00Z")
    assert first.decision == mcfg.OK and first.counts.used == 1200 and first.counts.outside_window == 1200
    second = _run(log, registry, since="2026-11-02T00:00:00+00:00")
    assert second.triggered[0] == "lvrat" and second.counts.used == 1200
    assert second.counts.other_versions == {"v-new": 1}
    everything = _run(log, registry, all_versions=True)
    assert everything.counts.used == 2401 and everything.counts.other_versions == {}


def test_gzip_files_and_a_directory_of_logs(tmp_path, rows, registry):
    plain = _log(tmp_path, rows)
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = plain.read_bytes().splitlines(keepends=True)
    (folder / "a.jsonl").write_bytes(b"".join(lines[:1000]))
    with gzip.open(folder / "b.jsonl.gz", "wb") as f:
        f.write(b"".join(lines[1000:]))
    (folder / "README").write_text("not a log")
    expected = _run(plain, registry)
    got = _run(folder, registry)
    assert got.counts.files == 2 and got.counts.used == N
    assert [r.value for r in got.rows] == [r.value for r in expected.rows]


def test_named_versions_and_missing_baselines(tmp_path, rows):
    registry = h.make_registry(tmp_path / "reg", version="v1")
    h.make_registry(tmp_path / "reg", version="v2")  # now the champion
    records = [h.log_record(i, r, h.probability(r), version="v1") for i, r in enumerate(h.sample_rows(rows, 500))]
    log = h.write_log(tmp_path / "log.jsonl", records)
    with pytest.raises(PipelineInputError, match="version v2"):
        _run(log, registry)  # the champion v2 logged nothing
    assert _run(log, registry, model_version="v1").model_version == "v1"
    with pytest.raises(PipelineInputError, match="no version 'v9'"):
        _run(log, registry, model_version="v9")
    with pytest.raises(PipelineInputError, match="no champion"):
        _run(log, str(tmp_path / "empty-registry"))
    (tmp_path / "reg" / "model" / "versions" / "v1" / names.STATS_FILE).unlink()
    with pytest.raises(PipelineInputError, match="no training statistics"):
        _run(log, registry, model_version="v1")


# ------------------------------------------------------------------------------ outputs


def test_outputs_json_markdown_html_and_metrics(tmp_path, rows, registry):
    result = _run(_log(tmp_path, rows, mutate=lambda r: r.update(lvrat=r["lvrat"] + 0.15)), registry)
    written = report.write_outputs(result, str(tmp_path / "out"))
    record = json.loads(Path(written["json"]).read_text())
    assert record["decision"] == "act" and record["triggered"] == ["lvrat"]
    assert {"feature", "kind", "statistic", "value", "severity"} <= set(record["rows"][0])
    markdown = Path(written["markdown"]).read_text()
    assert "**Decision: ACT**" in markdown and "| lvrat | numeric | psi |" in markdown
    html = Path(written["html"]).read_text()
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)
    assert "Decision: ACT" in html and html.count("<svg") == 4  # one chart per statistic
    assert "warn 0.1" in html and "act 0.2" in html
    metrics = report.metrics(result)
    assert metrics["decision_code"] == 2.0
    assert metrics["lvrat_psi"] == pytest.approx(_rows_of(result, "lvrat")[mcfg.PSI].value)
    assert metrics["features_act"] == 1.0 and metrics["predictions"] == N


def test_cli_prints_the_table_and_exits_0_whatever_the_decision(tmp_path, rows, registry, capsys):
    from components.monitor.__main__ import main

    log = _log(tmp_path, rows, mutate=lambda r: r.update(lvrat=r["lvrat"] + 0.15))
    assert main(["--log", str(log), "--registry", registry, "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "decision: act" in out and "| lvrat | numeric | psi |" in out
    assert (tmp_path / "o" / names.REPORT_HTML_FILE).exists()
    assert main(["--log", str(tmp_path / "nope.jsonl"), "--registry", registry]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_component_compiles_with_the_shared_artifact_names(tmp_path):
    import yaml
    from kfp import compiler

    from components.monitor.component import monitor

    path = tmp_path / "monitor.yaml"
    compiler.Compiler().compile(monitor, str(path))
    spec = yaml.safe_load(path.read_text())
    component = next(iter(spec["components"].values()))
    outputs = component["outputDefinitions"]
    assert set(outputs["artifacts"]) == {names.DRIFT_METRICS, names.DRIFT_REPORT, names.DRIFT_SUMMARY, names.DRIFT}
    assert outputs["artifacts"][names.DRIFT_METRICS]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["artifacts"][names.DRIFT_REPORT]["artifactType"]["schemaTitle"] == "system.HTML"
    assert outputs["parameters"]["decision"]["parameterType"] == "STRING"
    assert outputs["parameters"]["retrain"]["parameterType"] == "BOOLEAN"
    assert {"prediction_log_uri", "registry_uri", "model_name", "act_threshold", "retrain_on"} <= set(
        component["inputDefinitions"]["parameters"])


class _Artifact:
    def __init__(self, path: Path):
        self.path = str(path)
        self.metadata: dict = {}
        self.logged: dict[str, float] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.logged[name] = value


def test_component_body_returns_the_decision_and_fills_the_artifacts(tmp_path, rows, registry):
    from components.monitor.component import monitor

    log = _log(tmp_path, rows, bias_after=1000)
    arts = {name: _Artifact(tmp_path / name) for name in ("m", "r.html", "s.md", "drift")}
    outputs = monitor.python_func(prediction_log_uri=str(log), registry_uri=registry, model_name="model",
                                  drift_metrics=arts["m"], drift_report=arts["r.html"], drift_summary=arts["s.md"],
                                  drift=arts["drift"])
    assert (outputs.decision, outputs.retrain) == ("act", True)
    assert arts["drift"].metadata["retrain"] is True
    assert arts["drift"].metadata["triggered"] == [mcfg.PREDICTION_FEATURE]
    assert json.loads((tmp_path / "drift" / names.DRIFT_RESULT_FILE).read_text())["decision"] == "act"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert "**Decision: ACT**" in (tmp_path / "s.md").read_text()
    assert arts["m"].logged["decision_code"] == 2.0 and arts["m"].logged["probability_psi"] > 0.2
    # retraining only at or above retrain_on
    shutil.rmtree(tmp_path / "drift")
    outputs = monitor.python_func(prediction_log_uri=str(log), registry_uri=registry, model_name="model",
                                  drift_metrics=arts["m"], drift_report=arts["r.html"], drift_summary=arts["s.md"],
                                  drift=arts["drift"], act_threshold=10.0, warn_threshold=5.0)
    assert (outputs.decision, outputs.retrain) == ("ok", False)
    # unusable input fails the task, with the reason next to the outputs
    shutil.rmtree(tmp_path / "drift")
    with pytest.raises(PipelineInputError):
        monitor.python_func(prediction_log_uri=str(tmp_path / "none.jsonl"), registry_uri=registry, model_name="model",
                            drift_metrics=arts["m"], drift_report=arts["r.html"], drift_summary=arts["s.md"],
                            drift=arts["drift"])
    assert "does not exist" in (tmp_path / "drift" / "FAILURE.json").read_text()


@pytest.mark.parametrize("decision, retrain_on, expected", [
    ("ok", "act", False), ("warn", "act", False), ("act", "act", True),
    ("ok", "warn", False), ("warn", "warn", True), ("act", "warn", True),
    ("ok", "always", True),
])
def test_should_retrain_at_or_above_the_trigger_level(decision, retrain_on, expected):
    assert mon.should_retrain(decision, retrain_on) is expected


def test_should_retrain_rejects_unknown_levels():
    with pytest.raises(PipelineInputError, match="retrain_on must be one of"):
        mon.should_retrain("act", "sometimes")
    with pytest.raises(PipelineInputError, match="unknown drift decision"):
        mon.should_retrain("fine", "act")
