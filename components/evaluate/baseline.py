"""Baselines a candidate must beat ("a simpler model must not be better"): plain functions, no KFP/TFMA.

* majority: predicts the train split's positive rate for every row (AUC 0.5, the floor).
* logistic: scikit-learn LogisticRegression on the train split's raw columns, numerics
  standardised (median-imputed), categoricals one-hot (unknown values ignored).

Both are fitted on the train split and scored on the eval split, over the model's own feature
columns; gates.baseline_gate judges the candidate against the logistic one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from components.common import names
from components.common.ranking import auc_score, auc_standard_error

LOGISTIC = "logistic_regression"
MAJORITY = "majority"


@dataclasses.dataclass
class BaselineScores:
    name: str
    auc: float | None
    brier: float
    auc_standard_error: float | None = None
    """DeLong's, over the eval rows."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "auc": self.auc, "brier": float(self.brier),
                "auc_standard_error": self.auc_standard_error}


def auc_and_brier(name: str, labels: Sequence[int], scores: Sequence[float]) -> BaselineScores:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    auc = auc_score(y, p)  # None with one class
    se = None if auc is None else auc_standard_error(y, p)
    return BaselineScores(name, auc, float(np.mean((p - y) ** 2)), se)


def majority_baseline(train_labels: Sequence[int], eval_labels: Sequence[int]) -> BaselineScores:
    """Every eval row scored with the train positive rate."""
    rate = float(np.mean(np.asarray(train_labels, dtype=np.float64)))
    return auc_and_brier(MAJORITY, eval_labels, np.full(len(eval_labels), rate))


def logistic_baseline(
    train: "Any", eval_frame: "Any", label: str, numeric: Sequence[str], categorical: Sequence[str],
    seed: int = 0,
) -> BaselineScores:
    """Fit on `train` (a pandas DataFrame), score `eval_frame`."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(numeric)))
    if categorical:
        parts.append(("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="__missing__"),
                                           OneHotEncoder(handle_unknown="ignore")), list(categorical)))
    if not parts:
        raise ValueError("logistic baseline needs at least one feature column")
    model = Pipeline([("features", ColumnTransformer(parts)),
                      ("lr", LogisticRegression(max_iter=1000, random_state=seed))])
    features = list(numeric) + list(categorical)
    model.fit(train[features], np.asarray(train[label], dtype=np.int64))
    scores = model.predict_proba(eval_frame[features])[:, 1]
    return auc_and_brier(LOGISTIC, eval_frame[label], scores)


def split_columns(column_types: dict[str, str], label: str, exclude: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns from ingest's column_types (int/float/string)."""
    skip = {label, *exclude}
    numeric = [c for c, t in column_types.items() if c not in skip and t in ("int", "float")]
    categorical = [c for c, t in column_types.items() if c not in skip and t == "string"]
    return numeric, categorical


def fit_baselines(examples_dir: str) -> dict[str, BaselineScores]:
    """Majority and logistic-regression baselines from an ingest output: fitted on its train split
    over the model's feature columns, scored on its eval split."""
    from components.ingest.ingest import read_metadata, read_split_frame

    metadata = read_metadata(examples_dir)
    label, features = metadata["label"], set(metadata["feature_columns"])
    types = {c: t for c, t in metadata["column_types"].items() if c in features}
    numeric, categorical = split_columns(types, label)
    train = read_split_frame(examples_dir, names.TRAIN)
    eval_frame = read_split_frame(examples_dir, names.EVAL)
    return {
        MAJORITY: majority_baseline(train[label], eval_frame[label]),
        LOGISTIC: logistic_baseline(train, eval_frame, label, numeric, categorical),
    }
