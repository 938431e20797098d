"""Distribution strategy decisions (no accelerator needed) and the CPU default."""

from __future__ import annotations

import json

import pytest

from components.common.errors import PipelineInputError
from components.train.train import (
    KIND_DEFAULT,
    KIND_MIRRORED,
    KIND_MULTI_WORKER,
    KIND_TPU,
    choose_strategy,
    strategy_kind,
)

TF_CONFIG = json.dumps({"cluster": {"worker": ["w0:2222", "w1:2222"]}, "task": {"type": "worker", "index": 0}})


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(accelerator_type="", accelerator_count=0, visible_gpus=0), KIND_DEFAULT),
        (dict(accelerator_type="", accelerator_count=0, visible_gpus=2), KIND_DEFAULT),
        (dict(accelerator_type="nvidia.com/gpu", accelerator_count=1, visible_gpus=1), KIND_MIRRORED),
        (dict(accelerator_type="NVIDIA_L4", accelerator_count=0, visible_gpus=4), KIND_MIRRORED),
        (dict(accelerator_type="", accelerator_count=2, visible_gpus=2), KIND_MIRRORED),
        (dict(accelerator_type="TPU_V5_LITEPOD", accelerator_count=8, visible_gpus=0), KIND_TPU),
        (dict(accelerator_type="", accelerator_count=0, tpu_address="local", visible_gpus=0), KIND_TPU),
        (dict(accelerator_type="", accelerator_count=0, multi_worker=True, visible_gpus=0,
              tf_config=TF_CONFIG), KIND_MULTI_WORKER),
        (dict(accelerator_type="nvidia.com/gpu", accelerator_count=1, multi_worker=True, visible_gpus=1,
              tf_config=TF_CONFIG), KIND_MULTI_WORKER),
    ],
)
def test_strategy_kind(kwargs, expected):
    assert strategy_kind(**kwargs) == expected


def test_gpu_requested_but_not_visible_names_request_and_devices():
    with pytest.raises(RuntimeError) as info:
        strategy_kind("nvidia.com/gpu", 2, visible_gpus=0)
    message = str(info.value)
    assert "nvidia.com/gpu" in message and "accelerator_count=2" in message and "CPU only" in message


def test_gpu_count_without_type_also_needs_a_gpu():
    with pytest.raises(RuntimeError, match="GPU was requested"):
        strategy_kind("", 1, visible_gpus=0)


def test_multi_worker_needs_tf_config():
    with pytest.raises(RuntimeError, match="TF_CONFIG"):
        strategy_kind("", 0, multi_worker=True, visible_gpus=0, tf_config="")
    with pytest.raises(RuntimeError, match="not valid JSON"):
        strategy_kind("", 0, multi_worker=True, visible_gpus=0, tf_config="{oops")
    with pytest.raises(RuntimeError, match="cluster"):
        strategy_kind("", 0, multi_worker=True, visible_gpus=0, tf_config="{}")


def test_tpu_and_multi_worker_conflict():
    with pytest.raises(PipelineInputError, match="TPU"):
        strategy_kind("TPU_V3", 8, multi_worker=True, tf_config=TF_CONFIG)


def test_negative_count_rejected():
    with pytest.raises(PipelineInputError):
        strategy_kind("", -1, visible_gpus=0)


def test_choose_strategy_cpu_is_default_strategy():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible; the CPU default is tested on CPU-only machines")
    strategy = choose_strategy("", 0)
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    with pytest.raises(RuntimeError, match="no GPU"):
        choose_strategy("nvidia.com/gpu", 1)
