"""Tuning with KerasTuner's oracle over fits that score known settings (no model: fast, exact)."""

from __future__ import annotations

import math

import pytest

from components.common.errors import PipelineInputError
from components.train import tuning

DEFAULT = tuning.Setting.of_values([32, 16], 0.01, 0.0)


def loss_of(setting: tuning.Setting) -> float:
    """A validation loss with its minimum at lr 0.003, two layers, dropout 0.1."""
    return (abs(math.log10(setting.learning_rate / 0.003)) + 0.1 * (len(setting.hidden_units) != 2)
            + abs(setting.dropout - 0.1) + 0.2)


def fitted(setting: tuning.Setting, loss: float | None = None) -> tuning.Fitted:
    value = loss_of(setting) if loss is None else loss
    return tuning.Fitted(model=setting, history={"loss": [1.0, 0.5], "val_loss": [value + 0.1, value, value + 0.05]})


def test_every_trial_is_recorded_and_the_best_on_validation_is_chosen():
    seen: list[tuning.Setting] = []
    lines: list[str] = []

    def fit(setting):
        seen.append(setting)
        return fitted(setting)

    result = tuning.tune(fit, DEFAULT, trials=6, seed=3, progress=lines.append)
    record = result.record
    assert seen[0] == DEFAULT and len(seen) == 7 and len(record["trials"]) == 7
    assert [t["trial"] for t in record["trials"]][0] == tuning.DEFAULT_TRIAL
    scores = [t[tuning.OBJECTIVE] for t in record["trials"]]
    assert scores == [loss_of(s) for s in seen], "each trial scored by its best validation loss"
    assert result.best.score == min(scores) == record["chosen"][tuning.OBJECTIVE]
    assert result.best.model == result.best_setting == seen[scores.index(min(scores))]
    assert record["default"][tuning.OBJECTIVE] == loss_of(DEFAULT)
    space = tuning.SearchSpace()
    for s in seen[1:]:  # the oracle's proposals lie in the space
        assert s.hidden_units[0] in space.first_layer_units and s.dropout in space.dropout
        assert space.learning_rate[0] <= s.learning_rate <= space.learning_rate[1]
        assert len(s.hidden_units) in (1, 2)
    assert len(lines) == 8 and lines[-1].startswith("tuning chose ")


def test_the_default_stays_when_no_trial_beats_it():
    result = tuning.tune(lambda s: fitted(s, 0.1 if s == DEFAULT else 0.5), DEFAULT, trials=3, seed=0,
                         progress=lambda line: None)
    assert result.best_setting == DEFAULT and result.record["chosen"]["trial"] == tuning.DEFAULT_TRIAL


def test_a_diverged_fit_scores_infinity_and_is_never_chosen():
    nan = tuning.Fitted(None, {"val_loss": [float("nan")]})
    assert nan.score == math.inf
    result = tuning.tune(lambda s: fitted(s) if s == DEFAULT else nan, DEFAULT, trials=6, seed=0,
                         progress=lambda line: None)  # 4 random trials, then the Gaussian process
    assert result.best_setting == DEFAULT
    assert len(result.record["trials"]) == 7 and all(t["val_loss"] == math.inf for t in result.record["trials"][1:])


def test_trial_settings_from_the_space():
    assert tuning.Setting.of_trial({"units_1": 64, "units_2": 0, "learning_rate": 0.002, "dropout": 0.2}) == \
        tuning.Setting((64,), 0.002, 0.2)
    assert tuning.Setting.of_trial({"units_1": 16, "units_2": 8, "learning_rate": 0.01, "dropout": 0.0}).hidden_units \
        == (16, 8)


def test_tuning_settings_are_checked():
    tuning.validate_trials(0, multi_worker=True)
    with pytest.raises(PipelineInputError, match="one worker"):
        tuning.validate_trials(4, multi_worker=True)
    with pytest.raises(PipelineInputError, match=">= 0"):
        tuning.validate_trials(-1, multi_worker=False)
