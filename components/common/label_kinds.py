"""The three kinds of label a run can learn, and what each kind's model answers.

Ingest infers the kind (or takes `label_kind`) and records it, with the class names, in the examples'
metadata; train records them in model_info.json; every later step reads them from there.

- binary: the label is 0/1; the model answers "probability" [N, 1], P(label == 1).
- multiclass: the label is a class index 0..K-1 (`classes[i]` names class i); the model answers
  "probabilities" [N, K], one row of class probabilities summing to 1.
- regression: the label is a float; the model answers "value" [N, 1].

Drift and canary analysis compare one number per prediction (`scalar_prediction`): the probability,
the predicted class index (binned one bin per class, `class_bin_edges`) or the value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
KINDS = (BINARY, MULTICLASS, REGRESSION)
AUTO = "auto"
CHOICES = (AUTO, *KINDS)

OUTPUT_NAMES = {BINARY: "probability", MULTICLASS: "probabilities", REGRESSION: "value"}

# auto: a label with more distinct values than this is a numeric target if it is numeric, and an
# error otherwise (a string label with 40 values is more likely an ID than a class).
MAX_AUTO_CLASSES = 20
# Every class needs this many rows in the data: fewer cannot be learned nor judged.
MIN_CLASS_ROWS = 10


def check_kind(kind: str, allow_auto: bool = False) -> str:
    allowed = CHOICES if allow_auto else KINDS
    if kind not in allowed:
        raise ValueError(f"label kind must be one of {list(allowed)}, got {kind!r}")
    return kind


def output_name(kind: str) -> str:
    return OUTPUT_NAMES[check_kind(kind)]


def is_classification(kind: str) -> bool:
    return check_kind(kind) in (BINARY, MULTICLASS)


def scalar_prediction(kind: str, outputs: Sequence | np.ndarray) -> np.ndarray:
    """One float per row: the probability (binary), the predicted class index (multiclass), the
    value (regression). `outputs`: the model's answer, [N], [N, 1] or (multiclass) [N, K]."""
    array = np.asarray(outputs, dtype=np.float64)
    if check_kind(kind) == MULTICLASS:
        if array.ndim != 2:
            raise ValueError(f"multiclass outputs must be [N, K], got shape {array.shape}")
        return np.argmax(array, axis=1).astype(np.float64)
    return array.reshape(len(array), -1)[:, 0] if array.ndim > 1 else array


def class_bin_edges(n_classes: int) -> np.ndarray:
    """PSI bin edges putting each class index 0..K-1 in a bin of its own."""
    return np.arange(n_classes - 1, dtype=np.float64) + 0.5
