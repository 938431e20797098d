"""The model card push writes: from the blessing and the lineage, for every outcome; in the registry
only with a published version."""

from __future__ import annotations

import json
import os

import pytest

from components.common import io as fio
from components.common import names
from components.evaluate.blessing import Blessing
from components.evaluate.gates import Gate
from components.push import model_card
from components.push import push as push_module
from components.push import registry
from components.push.tests.test_push import _push, artifacts  # noqa: F401  (artifacts: a fixture)

CHAMPION = "v20250101T000000Z-0badcafe"
METRICS = {"auc": 0.8123456, "accuracy": 0.9012, "precision": 0.61, "recall": 0.42, "false_positive_rate": 0.03,
           "false_negative_rate": 0.58, "calibration": 1.02, "example_count": 400.0, "mean_label": 0.12}
CHAMPION_METRICS = {"auc": 0.79, "accuracy": 0.9, "example_count": 400.0}
SLICES = {
    "afam": {"no": {"example_count": 340.0, "auc": 0.8, "false_negative_rate": 0.55, "false_positive_rate": 0.02,
                    "accuracy": 0.91},
             "yes": {"example_count": 60.0, "auc": 0.77, "false_negative_rate": 0.62, "false_positive_rate": 0.08,
                     "accuracy": 0.85}},
    "phist": {"no": {"example_count": 391.0, "auc": 0.81, "false_negative_rate": 0.57},
              "yes": {"example_count": 9.0, "auc": None, "false_negative_rate": 0.5}},
}
SKIPPED = [{"slice": "phist=yes", "column": "phist", "value": "yes", "example_count": 9,
            "reason": "9 examples < min_slice_examples 20"}]


def sliced_blessing(blessed: bool = True) -> dict:
    """A blessing as components/evaluate writes it: against a champion, two slice columns, one
    slice value skipped for too few examples."""
    gates = [
        Gate("metric_floor", blessed, METRICS["auc"] if blessed else 0.61, 0.7, "AUC vs floor"),
        Gate("no_regression", True, 0.0223456, 0.01, f"candidate AUC vs champion {CHAMPION}"),
        Gate("fairness", True, 0.07, 0.25, "afam: false_negative_rate gap 0.0700 <= 0.25"),
    ]
    return Blessing(blessed=blessed, gates=gates, metrics=METRICS, baseline_metrics=CHAMPION_METRICS,
                    baseline_version=CHAMPION, slices=SLICES, skipped_slices=SKIPPED,
                    evaluation_seconds=12.5).to_dict()


def unsliced_blessing() -> dict:
    """No slice column configured: the fairness gate is not applicable; no champion."""
    gates = [Gate("metric_floor", True, 0.8, 0.7, "AUC vs floor"),
             Gate("no_regression", True, None, 0.01, "no champion: nothing to regress against"),
             Gate("fairness", True, None, 0.25, "not applicable: no slice column configured", applicable=False)]
    return Blessing(blessed=True, gates=gates, metrics={"auc": 0.8}, baseline_metrics=None, baseline_version=None,
                    slices={}, skipped_slices=[], evaluation_seconds=1.0).to_dict()


@pytest.fixture()
def run(artifacts, tmp_path):  # noqa: F811
    """Upstream artifacts whose blessing is `blessing`, and an infra blessing."""
    def make(blessing: dict, weights="w1", infra=None):
        dirs = artifacts(blessed=blessing["blessed"], weights=weights)
        with open(os.path.join(dirs["blessing"], names.BLESSING_FILE), "w") as f:
            json.dump(blessing, f)
        dirs["infra"] = os.path.join(os.path.dirname(dirs["blessing"]), "infra")
        os.makedirs(dirs["infra"], exist_ok=True)
        with open(os.path.join(dirs["infra"], names.INFRA_BLESSING_FILE), "w") as f:
            json.dump(infra or {"blessed": True, "reason": "served", "load_seconds": 2.5, "rows": 5,
                                "v1": {"requests": 5, "p50_ms": 3.1, "p99_ms": 9.7},
                                "v2": {"rows": 5, "latency_ms": 4.0, "max_abs_diff_vs_v1": 1e-7}}, f)
        return dirs
    return make


DATA_VALIDATION = {"passed": True, "anomaly_count": 0, "schema_source": "inferred",
                   "row_counts": {"train": 8, "eval": 2}}


def _push_run(dirs, reg, **kwargs):
    """Push as the pipeline would: the blessing names the registry's champion as the one evaluate
    compared with (its figures stay the fixture's CHAMPION_METRICS), or push refuses it."""
    path = os.path.join(dirs["blessing"], names.BLESSING_FILE)
    blessing = fio.read_json(path)
    if blessing.get("baseline_metrics") is not None:
        champion = registry.read_champion(reg, "m")
        blessing["baseline_version"] = champion.version if champion else None
        with open(path, "w") as f:
            json.dump(blessing, f)
    return _push(dirs, reg, infra_blessing_dir=dirs["infra"], data_validation=DATA_VALIDATION, **kwargs)


def test_pushed_model_has_its_card_in_the_registry_version(run, tmp_path):
    reg = str(tmp_path / "registry")
    registry.swap_champion(reg, "m", None, {"version": CHAMPION, "path": f"versions/{CHAMPION}"})  # the one compared with
    dirs = run(sliced_blessing())
    result = _push_run(dirs, reg)
    champion = registry.read_champion(reg, "m")
    assert result.pushed and result.model_card_uri == champion.model_card_uri
    card = fio.read_json(champion.model_card_uri)
    assert card == json.loads(json.dumps(result.card))  # the registry's card is the one the UI shows
    blessing = fio.read_json(os.path.join(dirs["blessing"], names.BLESSING_FILE))
    lineage = fio.read_json(champion.lineage_uri)

    assert card["model_version"] == result.version == lineage["model_version"] and card["published"]
    assert card["registry_uri"] == champion.uri
    assert [(g["name"], g["verdict"]) for g in card["gates"]] == [
        ("metric_floor", "PASS"), ("no_regression", "PASS"), ("fairness", "PASS")]
    assert card["metrics"]["eval_split"] == blessing["metrics"]
    assert card["metrics"]["intervals"] is None and "not computed" in card["metrics"]["intervals_note"]
    assert card["comparison"]["champion_version"] == CHAMPION
    assert card["comparison"]["champion_metrics"] == blessing["baseline_metrics"]
    assert card["comparison"]["change"]["auc"] == pytest.approx(METRICS["auc"] - 0.79)
    assert card["slices"] == blessing["slices"] and card["skipped_slices"] == blessing["skipped_slices"]
    assert "Slice phist=yes left out of the fairness gate: 9 examples < min_slice_examples 20." in card["caveats"]
    assert card["versions"]["code_version"] == "abc123" == lineage["code_version"]
    assert card["versions"]["data_sha256"] == "abc" == lineage["data"]["sha256"]
    assert card["versions"]["artifacts_sha256"] == lineage["artifacts_sha256"]
    assert card["infra_validation"]["blessed"] and card["infra_validation"]["load_seconds"] == 2.5
    assert card["data_validation"] == DATA_VALIDATION == lineage["data_validation"]
    assert card["intended_use"]["use"].startswith("Binary classifier: the probability that `deny` is positive")

    text = open(os.path.join(champion.uri, names.MODEL_CARD_MD_FILE)).read()
    assert text == model_card.card_markdown(card)
    assert text.startswith(f"# Model card: m `{result.version}`")
    assert f"| model version | `{result.version}` |" in text
    assert "| code version | `abc123` |" in text and "| data sha256 | `abc` |" in text
    assert "| metric_floor | PASS | 0.8123 | n/a | n/a | candidate AUC >= 0.7 | point estimate | AUC vs floor |" in text
    assert "| fairness | PASS | 0.0700 | n/a | n/a | largest slice gap <= 0.25 |" in text
    assert f"| metric | candidate | champion {CHAMPION} | change |" in text
    assert "| auc | 0.8123 | 0.7900 | +0.0223 |" in text and "| example_count | 400 | 400 | +0.0000 |" in text
    assert "| precision | 0.6100 | n/a | n/a |" in text
    assert model_card.INTERVALS_NOT_COMPUTED in text
    assert "| yes | 9 | n/a | n/a | 0.5000 | n/a | no (skipped) |" in text
    assert "| yes | 60 | 0.7700 | 0.0800 | 0.6200 | 0.8500 | yes |" in text
    assert "- Slice phist=yes left out of the fairness gate: 9 examples < min_slice_examples 20." in text
    assert "Passed: served" in text and "- V1: 5 requests, p50 3.1 ms, p99 9.7 ms" in text
    assert "Passed: 0 anomalies; schema inferred; rows train 8, eval 2." in text


def test_card_shows_gate_intervals_and_the_simple_baselines(run, tmp_path):
    blessing = sliced_blessing()
    blessing["gates"][0].update(lower=0.74, upper=0.88, n=400, rule="interval_bound")
    blessing["intervals"] = {"overall": {"auc": {"lower": 0.74, "upper": 0.88, "standard_error": 0.035}}}
    blessing["simple_baselines"] = {"logistic_regression": {"name": "logistic_regression", "auc": 0.79, "brier": 0.08}}
    blessing["metrics"]["brier_score"] = 0.075
    result = _push_run(run(blessing), str(tmp_path / "registry"))
    card = result.card
    assert card["metrics"]["intervals"]["auc"]["lower"] == 0.74
    assert card["simple_baselines"]["logistic_regression"]["auc"] == 0.79
    text = model_card.card_markdown(card)
    assert "| metric_floor | PASS | 0.8123 | [0.7400, 0.8800] | 400 | candidate AUC >= 0.7 | interval bound |" in text
    assert "| auc | 0.8123 | [0.7400, 0.8800] |" in text and model_card.INTERVALS_COMPUTED in text
    assert "| candidate | 0.8123 | 0.0750 |" in text and "| logistic_regression | 0.7900 | 0.0800 |" in text


def test_not_applicable_gate_is_n_a_in_the_card_and_the_report(run, tmp_path):
    dirs = run(unsliced_blessing())
    result = _push_run(dirs, str(tmp_path / "registry"))
    assert result.pushed
    assert [g["verdict"] for g in result.card["gates"]] == ["PASS", "PASS", "N/A"]
    text = model_card.card_markdown(result.card)
    assert ("| fairness | N/A | n/a | n/a | n/a | largest slice gap <= 0.25 | point estimate | "
            "not applicable: no slice column configured |") in text
    assert "- Gate fairness not applicable: no slice column configured." in text
    assert "no slice column was evaluated, so it was not measured." in text
    assert "No champion to compare against." in text and "| parent champion | none (first push) |" in text
    report = push_module.report_markdown(result, push_module.read_blessing(dirs["blessing"]),
                                         push_module.read_lineage(result))
    assert "| fairness | N/A | n/a |" in report


def test_not_blessed_model_gets_a_card_that_says_why_and_none_in_the_registry(run, tmp_path):
    reg = tmp_path / "registry"
    dirs = run(sliced_blessing(blessed=False))
    result = _push_run(dirs, str(reg))
    assert not result.pushed and result.model_card_uri is None
    assert not reg.exists(), "nothing, card included, is written for a model that was not pushed"
    card = result.card
    assert card["published"] is False and card["model_version"] is None
    assert card["reason"] == result.reason and card["reason"].startswith("not blessed: metric_floor: 0.6100 vs 0.7")
    assert [(g["name"], g["verdict"]) for g in card["gates"]][0] == ("metric_floor", "FAIL")
    assert card["metrics"]["eval_split"] == METRICS and card["skipped_slices"] == SKIPPED
    assert card["versions"]["code_version"] == "abc123" and card["versions"]["data_sha256"] == "abc"
    assert card["infra_validation"]["reason"] == "served"  # what the model server said, though not needed
    text = model_card.card_markdown(card)
    assert text.startswith("# Model card: m (candidate, not published)")
    assert f"**Not published:** {result.reason}" in text
    assert "| model version | none (not published) |" in text
    assert "| metric_floor | **FAIL** | 0.6100 |" in text


def test_model_refused_by_infra_validation_gets_a_card_with_the_infra_result(run, tmp_path):
    reg = tmp_path / "registry"
    dirs = run(sliced_blessing(), infra={"blessed": False, "reason": "infra validation failed: the server exited"})
    result = _push_run(dirs, str(reg))
    assert not result.pushed and not reg.exists()
    assert result.card["reason"] == "infra validation failed: the server exited"
    assert "FAILED: infra validation failed: the server exited" in model_card.card_markdown(result.card)


def test_the_champion_pushed_again_gets_the_champion_card_and_nothing_new(run, tmp_path):
    reg = str(tmp_path / "registry")
    dirs = run(sliced_blessing())
    first = _push_run(dirs, reg)
    again = _push_run(dirs, reg)
    assert not again.pushed and again.model_card_uri is None
    assert again.card["model_version"] == first.version and again.card["published"] is False
    assert model_card.card_markdown(again.card).startswith(f"# Model card: m `{first.version}` (nothing new published)")
    assert os.listdir(os.path.join(reg, "m", names.REGISTRY_VERSIONS_DIR)) == [first.version]


def test_a_failed_card_write_publishes_nothing(run, tmp_path, monkeypatch):
    reg = str(tmp_path / "registry")
    first = _push_run(run(sliced_blessing(), weights="w1"), reg)

    def fail(directory, card):
        raise OSError("disk full")

    monkeypatch.setattr(model_card, "write_card", fail)
    with pytest.raises(OSError, match="disk full"):
        _push_run(run(sliced_blessing(), weights="w2"), reg)
    assert registry.read_champion(reg, "m").version == first.version
    assert os.listdir(os.path.join(reg, "m", names.REGISTRY_VERSIONS_DIR)) == [first.version]


def test_intervals_are_shown_only_where_the_blessing_has_them():
    blessing = sliced_blessing() | {"intervals": {"overall": {"auc": {"lower": 0.78, "upper": 0.84}}}}
    card = model_card.build_card(model_name="m", published=False, reason="r", model_uri=None, blessing=blessing,
                                 lineage={}, infra=None, data_validation=None)
    assert card["metrics"]["intervals"] == {"auc": {"lower": 0.78, "upper": 0.84}}
    text = model_card.card_markdown(card)
    assert "| auc | 0.8123 | [0.7800, 0.8400] | 0.7900 | +0.0223 |" in text
    assert "| accuracy | 0.9012 | n/a | 0.9000 |" in text
    assert model_card.INTERVALS_NOT_COMPUTED not in text
    assert "Infra validation did not run: no infra blessing was given to push." in card["caveats"]
    assert "No data validation summary was recorded for the training data." in card["caveats"]


def test_card_shows_the_training_settings_and_the_tuning_trials():
    trials = [{"trial": "default", "hidden_units": [32, 16], "learning_rate": 0.01, "dropout": 0.0,
               "val_loss": 0.26, "epochs_run": 41},
              {"trial": "trial 0", "hidden_units": [64], "learning_rate": 0.003, "dropout": 0.2,
               "val_loss": 0.25, "epochs_run": 30}]
    lineage = {"parameters": {"train": {"hidden_units": [64], "learning_rate": 0.003, "dropout": 0.2, "seed": 42,
                                        "accelerator_type": ""}},
               "training": {"epochs_run": 30, "tuning": {"tuner": "keras_tuner", "trials": trials,
                                                         "chosen": {"trial": "trial 0", "val_loss": 0.25},
                                                         "default": {"val_loss": 0.26}}}}
    card = model_card.build_card(model_name="m", published=False, reason="r", model_uri=None,
                                 blessing=sliced_blessing(), lineage=lineage, infra=None, data_validation=None)
    assert card["training"]["parameters"] == {"hidden_units": [64], "learning_rate": 0.003, "dropout": 0.2, "seed": 42}
    text = model_card.card_markdown(card)
    assert "| learning rate | 0.0030 |" in text and "| epochs run (early stopping on the validation loss) | 30 |" in text
    assert "Tuned: 2 trials (keras_tuner)" in text and "chosen: trial 0, validation loss 0.2500 against the " \
        "untuned default's 0.2600." in text
    assert "| default | [32, 16] | 0.0100 | 0.0000 | 0.2600 | 41 |" in text
    untuned = model_card.build_card(model_name="m", published=False, reason="r", model_uri=None,
                                    blessing=sliced_blessing(), lineage={}, infra=None, data_validation=None)
    assert untuned["training"] is None and "## Training" not in model_card.card_markdown(untuned)


def test_data_validation_summary_from_kfp_metadata():
    metadata = {"passed": True, "anomaly_count": 0.0, "schema_source": "inferred",
                "row_counts": {"train": 600.0, "eval": 200.0}, "other": 1}
    assert model_card.data_validation_summary(metadata) == {
        "passed": True, "anomaly_count": 0, "schema_source": "inferred", "row_counts": {"train": 600, "eval": 200}}
    assert model_card.data_validation_summary({}) is None


def test_component_writes_the_model_card_artifact_for_a_rejected_model(run, tmp_path):
    from kfp import dsl

    from components.push.component import push as component

    dirs = run(sliced_blessing(blessed=False))
    statistics = dsl.Artifact(uri=dirs["stats"], metadata=dict(DATA_VALIDATION))
    card_artifact = dsl.Markdown(uri=str(tmp_path / "model_card.md"))
    component.python_func(
        model=dsl.Model(uri=dirs["model"]), transform_graph=dsl.Artifact(uri=dirs["transform"]),
        schema=dsl.Artifact(uri=dirs["schema"]), statistics=statistics,
        blessing=dsl.Artifact(uri=dirs["blessing"]), infra_blessing=dsl.Artifact(uri=dirs["infra"]),
        examples=dsl.Dataset(uri=dirs["examples"]),
        registry_uri=str(tmp_path / "registry"), model_name="m", code_version="abc123",
        pushed_model=dsl.Model(uri=str(tmp_path / "pushed")), push_report=dsl.Markdown(uri=str(tmp_path / "r.md")),
        model_card=card_artifact,
    )
    text = (tmp_path / "model_card.md").read_text()
    assert text.startswith("# Model card: m (candidate, not published)")
    assert "**Not published:** not blessed: metric_floor: 0.6100 vs 0.7" in text
    assert "Passed: 0 anomalies; schema inferred; rows train 8, eval 2." in text
    assert not (tmp_path / "registry").exists()
    assert "card" not in json.loads((tmp_path / "pushed" / names.PUSH_RESULT_FILE).read_text())


@pytest.mark.parametrize("kind, metrics, baselines, slice_figures, expected", [
    ("multiclass", {"accuracy": 0.985, "macro_auc": 1.0, "macro_f1": 0.98, "log_loss": 0.025, "example_count": 68.0},
     {"majority": {"name": "majority", "accuracy": 0.43, "macro_auc": 0.5, "log_loss": 1.06}},
     {"accuracy": 0.97, "macro_f1": 0.66, "macro_auc": 1.0, "log_loss": 0.05, "example_count": 32.0},
     ["Multi-class classifier: the probability of each class of `species` (`Adelie`, `Chinstrap`, `Gentoo`)",
      "| model | macro AUC | accuracy | log-loss |", "| candidate | 1.0000 | 0.9850 | 0.0250 |",
      "| majority | 0.5000 | 0.4300 | 1.0600 |", "| value | n | accuracy | macro-F1 | macro AUC | log-loss |",
      "| Biscoe | 32 | 0.9700 | 0.6600 | 1.0000 | 0.0500 | yes |", "candidate macro AUC >= 0.7"]),
    ("regression", {"r2": 0.35, "mean_absolute_error": 3.14, "mean_squared_error": 15.55, "example_count": 2052.0},
     {"mean": {"name": "mean", "r2": -0.0003, "mean_absolute_error": 3.88, "mean_squared_error": 23.8}},
     {"mean_absolute_error": 3.2, "root_mean_squared_error": 4.0, "r2": 0.3, "mean_prediction": 12.0,
      "mean_label": 12.1, "example_count": 764.0},
     ["Regressor: the expected value of `species`", "| model | R² | MAE | MSE |",
      "| candidate | 0.3500 | 3.1400 | 15.5500 |", "| mean | -0.0003 | 3.8800 | 23.8000 |",
      "| Biscoe | 764 | 3.2000 | 4.0000 | 0.3000 | 12.0000 | 12.1000 | yes |", "candidate R² >= 0.7",
      "R² change vs the best simple model >= -0.01"]),
])
def test_card_shows_the_label_kinds_figures(kind, metrics, baselines, slice_figures, expected):
    gates = [Gate("metric_floor", True, 0.9, 0.7, "floor"), Gate("baseline", True, 0.0, 0.01, "baseline")]
    blessing = Blessing(blessed=True, gates=gates, metrics=metrics, baseline_metrics=None, baseline_version=None,
                        slices={"island": {"Biscoe": slice_figures}}, skipped_slices=[],
                        evaluation_seconds=1.0).to_dict() | {"simple_baselines": baselines, "decision_threshold": 0.0}
    lineage = {"data": {"label": "species", "label_kind": kind,
                        "classes": ["Adelie", "Chinstrap", "Gentoo"] if kind == "multiclass" else []}}
    text = model_card.card_markdown(model_card.build_card(
        model_name="m", published=False, reason="r", model_uri=None, blessing=blessing, lineage=lineage, infra=None,
        data_validation=None))
    for line in expected:
        assert line in text, line
    assert "AUC change vs logistic regression" not in text and "decision threshold" not in text
