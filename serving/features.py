"""Request parsing and validation against the model's raw feature types.

Every failure raises kserve's `InvalidInput` (HTTP 400) with a message that names the feature and
the problem. A feature may be null (JSON `null`), meaning "missing": it is passed to the model as
the training contract's missing value (NaN for floats, int64 min for ints, "__missing__" for
strings), which the transform graph imputes exactly as for an absent tf.Example feature. A feature
that is *absent* from a request is an error (most likely a typo or a client built for another
model); features the model does not take (the label, ids) are ignored.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
from kserve.errors import InvalidInput

FLOAT, INT, STRING = "float", "int", "string"
KINDS = (FLOAT, INT, STRING)
INT_MISSING = -(2**63)
STRING_MISSING = "__missing__"
DTYPES = {FLOAT: np.float32, INT: np.int64, STRING: object}
V2_DATATYPES = {FLOAT: "FP32", INT: "INT64", STRING: "BYTES"}
# V2 datatypes a client may send for each kind (numbers are converted; FP64 → FP32 loses nothing
# the model would see).
V2_ACCEPTED = {
    FLOAT: {"FP32", "FP64", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"},
    INT: {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"},
    STRING: {"BYTES"},
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def convert_value(column: str, kind: str, value: Any, where: str) -> tuple[Any, Any]:
    """(model value, value to log) of one raw feature value; raises InvalidInput."""
    if value is None:
        missing = {FLOAT: math.nan, INT: INT_MISSING, STRING: STRING_MISSING}[kind]
        return missing, None
    if kind == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"{where}: feature '{column}' must be a number (float), got {_describe(value)}")
        if not math.isfinite(float(value)):
            raise InvalidInput(f"{where}: feature '{column}' must be finite (use null for missing), got {value}")
        return float(value), float(value)
    if kind == INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{where}: feature '{column}' must be an integer, got {_describe(value)}")
        if not INT64_MIN < value <= INT64_MAX:
            raise InvalidInput(f"{where}: feature '{column}' is out of the int64 range: {value}")
        return value, value
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: feature '{column}' must be a string, got {_describe(value)}")
    return value, value


def _columns(rows: dict[str, list], feature_types: dict[str, str]) -> dict[str, np.ndarray]:
    return {c: np.asarray(rows[c], dtype=DTYPES[k]) for c, k in feature_types.items()}


def parse_v1(body: Any, feature_types: dict[str, str], max_instances: int) -> tuple[dict[str, np.ndarray], list[dict]]:
    """V1 `{"instances": [{feature: value, ...}, ...]}` → (columns, logged feature rows)."""
    if isinstance(body, (bytes, bytearray, str)):  # kserve leaves non-JSON content types undecoded
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput('the request body must be a JSON object {"instances": [...]}')
    if "instances" not in body:
        raise InvalidInput('the request has no "instances" (expected {"instances": [{feature: value, ...}, ...]})')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidInput('"instances" must be a list of objects')
    if not instances:
        raise InvalidInput('"instances" is empty: send at least one instance')
    if len(instances) > max_instances:
        raise InvalidInput(f'"instances" has {len(instances)} rows; at most {max_instances} per request')
    rows: dict[str, list] = {c: [] for c in feature_types}
    logged: list[dict] = []
    for i, instance in enumerate(instances):
        where = f"instance {i}"
        if not isinstance(instance, dict):
            raise InvalidInput(f"{where} must be an object {{feature: value}}, got {_describe(instance)}")
        missing = [c for c in feature_types if c not in instance]
        if missing:
            raise InvalidInput(f"{where}: missing feature(s) {missing} (send null for a missing value)")
        record = {}
        for column, kind in feature_types.items():
            value, shown = convert_value(column, kind, instance[column], where)
            rows[column].append(value)
            record[column] = shown
        logged.append(record)
    return _columns(rows, feature_types), logged


def _flatten(data: Any) -> list:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).tolist()
    out: list = []
    stack = [data]
    while stack:  # iterative flatten keeps order
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def parse_v2(inputs: Sequence[Any], feature_types: dict[str, str], max_instances: int) -> tuple[dict[str, np.ndarray], list[dict]]:
    """V2 inputs (kserve InferInput: name, datatype, shape, data) → (columns, logged rows).

    One tensor per feature, shape [n] (or [n, 1]), the same n for every feature.
    """
    if not inputs:
        raise InvalidInput("the request has no inputs: send one tensor per feature")
    by_name: dict[str, Any] = {}
    for tensor in inputs:
        if tensor.name in by_name:
            raise InvalidInput(f"input '{tensor.name}' appears more than once")
        by_name[tensor.name] = tensor
    missing = [c for c in feature_types if c not in by_name]
    if missing:
        raise InvalidInput(f"missing input tensor(s) for feature(s) {missing}")
    rows: dict[str, list] = {}
    n_rows: int | None = None
    first = None
    for column, kind in feature_types.items():
        tensor = by_name[column]
        datatype = str(tensor.datatype).upper()
        if datatype not in V2_ACCEPTED[kind]:
            raise InvalidInput(
                f"input '{column}' has datatype {datatype}; the model takes {V2_DATATYPES[kind]} ({kind})"
            )
        shape = list(tensor.shape or [])
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidInput(f"input '{column}' has shape {shape}; expected [n] (one value per row)")
        raw = getattr(tensor, "_raw_data", None)
        values = _flatten(tensor.as_numpy()) if raw is not None else _flatten(tensor.data)
        if len(values) != shape[0]:
            raise InvalidInput(f"input '{column}' declares shape {shape} but has {len(values)} values")
        if n_rows is None:
            n_rows, first = shape[0], column
        elif shape[0] != n_rows:
            raise InvalidInput(
                f"inputs have different lengths: '{first}' has {n_rows} rows, '{column}' has {shape[0]}"
            )
        rows[column] = values
    if not n_rows:
        raise InvalidInput("the inputs are empty: send at least one row")
    if n_rows > max_instances:
        raise InvalidInput(f"the request has {n_rows} rows; at most {max_instances} per request")
    converted: dict[str, list] = {c: [] for c in feature_types}
    logged: list[dict] = [{} for _ in range(n_rows)]
    for column, kind in feature_types.items():
        for i, value in enumerate(rows[column]):
            model_value, shown = convert_value(column, kind, value, f"input '{column}' row {i}")
            converted[column].append(model_value)
            logged[i][column] = shown
    return _columns(converted, feature_types), logged
