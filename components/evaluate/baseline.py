"""Baselines a candidate must beat ("a simpler model must not be better"): plain functions, no KFP/TFMA.

Per label kind (components/common/label_kinds.py):

* binary: majority (the train split's positive rate for every row: AUC 0.5, the floor) and a
  scikit-learn LogisticRegression; gates.baseline_gate judges the candidate's AUC against the
  logistic one.
* multiclass: majority (the train split's class shares for every row: macro AUC 0.5) and a
  multinomial LogisticRegression; judged on the macro one-vs-rest AUC against the better one.
* regression: mean (the train split's mean label: R² <= 0 on eval) and a Ridge regression; judged
  on R² against the better one.

The learned models see the train split's raw columns, numerics standardised (median-imputed),
categoricals one-hot (unknown values ignored). All are fitted on the train split and scored on the
eval split, over the model's own feature columns.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from components.common import label_kinds as kinds
from components.common import names
from components.common.ranking import auc_score, auc_standard_error
from components.evaluate.gates import PRIMARY_METRIC

LOGISTIC = "logistic_regression"
MAJORITY = "majority"
MULTINOMIAL = "multinomial_logistic_regression"
MEAN = "mean"
RIDGE = "ridge_regression"


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


@dataclasses.dataclass
class KindScores:
    """A multiclass or regression baseline's figures on eval, under blessing.json's metric names."""
    name: str
    figures: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.figures}


def multiclass_figures(name: str, labels: Sequence[int], probabilities: np.ndarray) -> KindScores:
    """Macro one-vs-rest AUC (the mean over the classes with both outcomes in eval), accuracy,
    log-loss of [N, K] class probabilities."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    aucs = [a for a in (auc_score((y == c).astype(np.int64), p[:, c]) for c in range(p.shape[1])) if a is not None]
    log_loss = -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))
    return KindScores(name, {"macro_auc": float(np.mean(aucs)) if aucs else None,
                             "accuracy": float(np.mean(np.argmax(p, axis=1) == y)),
                             "log_loss": float(np.mean(log_loss))})


def regression_figures(name: str, labels: Sequence[float], predictions: Sequence[float]) -> KindScores:
    """R² (against the eval mean), MSE and MAE of the predictions."""
    y = np.asarray(labels, dtype=np.float64)
    error = y - np.asarray(predictions, dtype=np.float64)
    total = float(np.sum((y - y.mean()) ** 2))
    return KindScores(name, {"r2": 1.0 - float(np.sum(error ** 2)) / total if total > 0 else None,
                             "mean_squared_error": float(np.mean(error ** 2)),
                             "mean_absolute_error": float(np.mean(np.abs(error)))})


def _feature_pipeline(numeric: Sequence[str], categorical: Sequence[str]):
    """Numerics median-imputed and standardised, categoricals one-hot (unknown values ignored)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(numeric)))
    if categorical:
        parts.append(("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="__missing__"),
                                           OneHotEncoder(handle_unknown="ignore")), list(categorical)))
    if not parts:
        raise ValueError("a learned baseline needs at least one feature column")
    return ColumnTransformer(parts)


def _fitted(estimator, train: "Any", label: str, numeric: Sequence[str], categorical: Sequence[str],
            label_dtype) -> tuple[Any, list[str]]:
    from sklearn.pipeline import Pipeline

    model = Pipeline([("features", _feature_pipeline(numeric, categorical)), ("model", estimator)])
    features = list(numeric) + list(categorical)
    model.fit(train[features], np.asarray(train[label], dtype=label_dtype))
    return model, features


def logistic_baseline(
    train: "Any", eval_frame: "Any", label: str, numeric: Sequence[str], categorical: Sequence[str],
    seed: int = 0,
) -> BaselineScores:
    """Fit on `train` (a pandas DataFrame), score `eval_frame`."""
    from sklearn.linear_model import LogisticRegression

    model, features = _fitted(LogisticRegression(max_iter=1000, random_state=seed), train, label, numeric,
                              categorical, np.int64)
    scores = model.predict_proba(eval_frame[features])[:, 1]
    return auc_and_brier(LOGISTIC, eval_frame[label], scores)


def multiclass_baselines(train: "Any", eval_frame: "Any", label: str, numeric: Sequence[str],
                         categorical: Sequence[str], n_classes: int, seed: int = 0) -> dict[str, KindScores]:
    """Majority (train class shares for every row) and a multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression

    y_train = np.asarray(train[label], dtype=np.int64)
    shares = np.bincount(y_train, minlength=n_classes) / len(y_train)
    model, features = _fitted(LogisticRegression(max_iter=2000, random_state=seed), train, label, numeric,
                              categorical, np.int64)
    probabilities = np.zeros((len(eval_frame), n_classes))
    probabilities[:, model.classes_] = model.predict_proba(eval_frame[features])  # classes absent in train: 0
    return {MAJORITY: multiclass_figures(MAJORITY, eval_frame[label], np.tile(shares, (len(eval_frame), 1))),
            MULTINOMIAL: multiclass_figures(MULTINOMIAL, eval_frame[label], probabilities)}


def regression_baselines(train: "Any", eval_frame: "Any", label: str, numeric: Sequence[str],
                         categorical: Sequence[str]) -> dict[str, KindScores]:
    """Mean (the train mean for every row) and a ridge regression (alpha 1 on standardised inputs)."""
    from sklearn.linear_model import Ridge

    mean = float(np.mean(np.asarray(train[label], dtype=np.float64)))
    model, features = _fitted(Ridge(alpha=1.0), train, label, numeric, categorical, np.float64)
    return {MEAN: regression_figures(MEAN, eval_frame[label], np.full(len(eval_frame), mean)),
            RIDGE: regression_figures(RIDGE, eval_frame[label], model.predict(eval_frame[features]))}


def best_baseline(baselines: dict[str, dict[str, Any]], label_kind: str) -> dict[str, Any] | None:
    """The simple model the baseline gate judges against: binary, the logistic regression; the
    other kinds, the simple model with the best primary metric (None without one)."""
    if label_kind == kinds.BINARY:
        return baselines.get(LOGISTIC)
    metric = PRIMARY_METRIC[label_kind]
    scored = [b for b in baselines.values() if b.get(metric) is not None]
    return max(scored, key=lambda b: b[metric]) if scored else None


def split_columns(column_types: dict[str, str], label: str, exclude: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns from ingest's column_types (int/float/string)."""
    skip = {label, *exclude}
    numeric = [c for c, t in column_types.items() if c not in skip and t in ("int", "float")]
    categorical = [c for c, t in column_types.items() if c not in skip and t == "string"]
    return numeric, categorical


def fit_baselines(examples_dir: str) -> dict[str, BaselineScores | KindScores]:
    """The label kind's baselines (binary: majority and logistic regression) from an ingest output:
    fitted on its train split over the model's feature columns, scored on its eval split."""
    from components.ingest.ingest import read_metadata, read_split_frame

    metadata = read_metadata(examples_dir)
    label, features = metadata["label"], set(metadata["feature_columns"])
    types = {c: t for c, t in metadata["column_types"].items() if c in features}
    numeric, categorical = split_columns(types, label)
    train = read_split_frame(examples_dir, names.TRAIN)
    eval_frame = read_split_frame(examples_dir, names.EVAL)
    kind = kinds.check_kind(metadata.get("label_kind", kinds.BINARY))
    if kind == kinds.MULTICLASS:
        return multiclass_baselines(train, eval_frame, label, numeric, categorical, len(metadata["classes"]))
    if kind == kinds.REGRESSION:
        return regression_baselines(train, eval_frame, label, numeric, categorical)
    return {
        MAJORITY: majority_baseline(train[label], eval_frame[label]),
        LOGISTIC: logistic_baseline(train, eval_frame, label, numeric, categorical),
    }
