"""The serving image ships serving/ only, so it repeats some of components/common/names.py; these
must stay equal, or the model server, the infra validator and the monitor would read other files
than the pipeline writes. (Runs in .venv-serving: names.py imports nothing outside the stdlib.)"""

from __future__ import annotations

from components.common import names
from serving import backends, infra_validator, prediction_log


def test_registry_layout_names_match():
    assert backends.CHAMPION_FILE == names.CHAMPION_FILE
    assert backends.SAVED_MODEL_DIR == names.SAVED_MODEL_DIR
    assert backends.ONNX_FILE == names.ONNX_FILE
    assert backends.MODEL_INFO_FILE == names.MODEL_INFO_FILE
    assert backends.LINEAGE_FILE == names.LINEAGE_FILE


def test_prediction_log_names_match():
    assert prediction_log.SYNTHETIC_TRAFFIC_HEADER == names.SYNTHETIC_TRAFFIC_HEADER
    assert prediction_log.SYNTHETIC_FIELD == names.SYNTHETIC_FIELD
    assert infra_validator.SYNTHETIC_TRAFFIC_HEADER == names.SYNTHETIC_TRAFFIC_HEADER


def test_infra_validator_reads_and_writes_the_pipeline_names():
    assert infra_validator.EVAL_SPLIT == names.EVAL
    assert infra_validator.EXAMPLES_FILE == names.EXAMPLES_FILE
    assert infra_validator.BLESSING_FILE == names.INFRA_BLESSING_FILE


def test_the_local_payload_logger_sends_what_the_sink_reads():
    """The local splitter's CloudEvents (components/deploy/payload_logger.py) are KServe's, and the
    sink (serving/log_sink.py) reads KServe's: the same types, and the synthetic-traffic header in
    the canonical form KServe's agent puts in `metadata`."""
    from components.deploy import payload_logger
    from serving import log_sink

    assert (payload_logger.REQUEST_TYPE, payload_logger.RESPONSE_TYPE) == (log_sink.REQUEST_TYPE, log_sink.RESPONSE_TYPE)
    assert payload_logger.SYNTHETIC_METADATA_HEADER == "X-Synthetic-Traffic"
    assert payload_logger.SYNTHETIC_METADATA_HEADER.lower() == log_sink.SYNTHETIC_TRAFFIC_HEADER


def test_label_kind_outputs_match():
    """The model server reads the output train exports for each label kind, and the stand-in model
    versions answer under the same names."""
    from components.common import label_kinds
    from serving.tests import stand_in

    from serving import label_kinds as serving_kinds

    assert serving_kinds.OUTPUT_NAMES == label_kinds.OUTPUT_NAMES == stand_in.OUTPUT_NAMES
    assert (serving_kinds.BINARY, serving_kinds.MULTICLASS, serving_kinds.REGRESSION) == label_kinds.KINDS
    assert set(prediction_log.PREDICTION_FIELDS) == set(label_kinds.KINDS)
