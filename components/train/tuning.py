"""Hyperparameter tuning on the validation split, with KerasTuner.

KerasTuner's Bayesian optimisation oracle proposes hidden units, learning rate and dropout
(`SearchSpace`); each trial is a full fit of the train split with early stopping on the validation
loss and is scored by its best validation loss, the same proper scoring rule early stopping uses.
The eval split is never seen: it stays the gates'. The untuned settings are fitted too, as the
trial named "default", and keep their place unless a trial beats them, so tuning never hands
training a worse model on validation than no tuning.

KerasTuner's own `Tuner.run_trial` drives Keras 3 (what `import keras` is beside TensorFlow 2.16);
our model is Keras 2 (tf_keras, for tf.Transform), so the trials run through `BaseTuner`, whose
`run_trial` is ours: the oracle, the search and the trial records are KerasTuner's.

On a cluster the same space is searched at scale by Katib or Vertex AI Vizier: `as_dict()` is
the space in their terms (categorical units and dropout, a log-scaled learning rate).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from components.common.errors import PipelineInputError

OBJECTIVE = "val_loss"
DEFAULT_TRIAL = "default"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    first_layer_units: tuple[int, ...] = (16, 32, 64, 128)
    second_layer_units: tuple[int, ...] = (0, 8, 16, 32)
    """0: a single hidden layer."""
    learning_rate: tuple[float, float] = (1e-3, 3e-2)
    """Searched on a log scale."""
    dropout: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)

    def hyperparameters(self):
        import keras_tuner as kt

        hp = kt.HyperParameters()
        hp.Choice("units_1", list(self.first_layer_units))
        hp.Choice("units_2", list(self.second_layer_units))
        hp.Float("learning_rate", *self.learning_rate, sampling="log")
        hp.Choice("dropout", list(self.dropout))
        return hp

    def as_dict(self) -> dict:
        return {"units_1": {"values": list(self.first_layer_units)},
                "units_2": {"values": list(self.second_layer_units), "0": "a single hidden layer"},
                "learning_rate": {"min": self.learning_rate[0], "max": self.learning_rate[1], "scale": "log"},
                "dropout": {"values": list(self.dropout)}}


@dataclasses.dataclass(frozen=True)
class Setting:
    """The hyperparameters a trial trains with."""

    hidden_units: tuple[int, ...]
    learning_rate: float
    dropout: float

    @classmethod
    def of_values(cls, hidden_units: Sequence[int], learning_rate: float, dropout: float) -> "Setting":
        return cls(tuple(int(u) for u in hidden_units), float(learning_rate), float(dropout))

    @classmethod
    def of_trial(cls, values: dict) -> "Setting":
        """From a KerasTuner trial's values (units_2 0: one hidden layer)."""
        units = [u for u in (values["units_1"], values["units_2"]) if int(u) > 0]
        return cls.of_values(units, values["learning_rate"], values["dropout"])

    def as_dict(self) -> dict:
        return {"hidden_units": list(self.hidden_units), "learning_rate": self.learning_rate, "dropout": self.dropout}


@dataclasses.dataclass
class Fitted:
    """What one fit returns: the model (kept only while it is the best) and its history."""

    model: Any
    history: dict[str, list[float]]

    @property
    def score(self) -> float:
        losses = [v for v in self.history.get(OBJECTIVE, []) if math.isfinite(v)]
        return min(losses) if losses else math.inf


Fit = Callable[[Setting], Fitted]


@dataclasses.dataclass
class TuningResult:
    best: Fitted
    best_setting: Setting
    record: dict
    """For model_info.json (the lineage): every trial, the chosen values, the default's score."""


def validate_trials(trials: int, multi_worker: bool) -> None:
    if trials < 0:
        raise PipelineInputError(f"tuning_trials must be >= 0, got {trials}")
    if trials and multi_worker:
        raise PipelineInputError("tuning runs on one worker: set tuning_trials to 0 for multi-worker training "
                                 "(on a cluster, tune at scale with Katib or Vertex AI Vizier over the same space)")


def tune(fit: Fit, default: Setting, trials: int, seed: int, space: SearchSpace = SearchSpace(),
         progress: Callable[[str], None] = print) -> TuningResult:
    """The default setting and `trials` KerasTuner trials, each fitted by `fit`; the best by validation loss."""
    import keras_tuner as kt

    if trials < 1:
        raise ValueError("tune needs at least one trial")
    started = time.monotonic()
    records: list[dict] = []
    state: dict[str, Any] = {}

    def run(name: str, setting: Setting) -> float:
        trial_started = time.monotonic()
        fitted = fit(setting)
        seconds = time.monotonic() - trial_started
        record = {"trial": name, **setting.as_dict(), OBJECTIVE: fitted.score,
                  "epochs_run": len(fitted.history.get("loss", [])), "seconds": round(seconds, 2)}
        records.append(record)
        if "best" not in state or fitted.score < state["best"].score:
            state.update(best=fitted, setting=setting, name=name)
        progress(f"tuning {name} ({len(records)}/{trials + 1}): units {list(setting.hidden_units)}, "
                 f"learning rate {setting.learning_rate:.4g}, dropout {setting.dropout:g} → {OBJECTIVE} "
                 f"{fitted.score:.4f} ({record['epochs_run']} epochs, {seconds:.1f} s); best so far: {state['name']}")
        return fitted.score

    class ValidationTuner(kt.engine.base_tuner.BaseTuner):
        def run_trial(self, trial, **search_kwargs):  # search(verbose=0) passes verbose on
            return {OBJECTIVE: run(f"trial {trial.trial_id}", Setting.of_trial(trial.hyperparameters.values))}

        def save_model(self, trial_id, model, step=0):
            """Nothing to save: the best trial's model stays in memory."""

        def load_model(self, trial):
            raise NotImplementedError("trials keep no models on disk")

    run(DEFAULT_TRIAL, default)
    oracle = kt.oracles.BayesianOptimizationOracle(
        objective=kt.Objective(OBJECTIVE, "min"), max_trials=trials, hyperparameters=space.hyperparameters(),
        num_initial_points=min(trials, 4), seed=seed)
    with tempfile.TemporaryDirectory(prefix="tuning-") as directory:
        ValidationTuner(oracle=oracle, directory=directory, project_name="train", overwrite=True).search(verbose=0)
    default_score = records[0][OBJECTIVE]
    best_setting: Setting = state["setting"]
    record = {
        "tuner": f"keras_tuner {kt.__version__} BayesianOptimizationOracle",
        "objective": f"min {OBJECTIVE} (the validation split; early stopping on it in every trial)",
        "trials_requested": trials,
        "space": space.as_dict(),
        "trials": records,
        "chosen": {"trial": state["name"], **best_setting.as_dict(), OBJECTIVE: state["best"].score},
        "default": {**default.as_dict(), OBJECTIVE: default_score},
        "seconds": round(time.monotonic() - started, 2),
    }
    progress(f"tuning chose {state['name']}: {best_setting.as_dict()} ({OBJECTIVE} {state['best'].score:.4f}; "
             f"default {default_score:.4f})")
    return TuningResult(state["best"], best_setting, record)
