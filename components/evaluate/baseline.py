"""Baselines a candidate must beat ("a simpler model must not be better"): plain functions, no KFP/TFMA.

* majority: predicts the train split's positive rate for every row (AUC 0.5, the floor).
* logistic: scikit-learn LogisticRegression on the train split's raw columns, numerics
  standardised (median-imputed), categoricals one-hot (unknown values ignored).

The gate `baseline`: candidate AUC >= logistic baseline AUC - baseline_auc_margin.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from components.common.ranking import auc_score

GATE_BASELINE = "baseline"
DEFAULT_BASELINE_AUC_MARGIN = 0.01


@dataclasses.dataclass
class BaselineScores:
    name: str
    auc: float | None
    brier: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "auc": self.auc, "brier": float(self.brier)}


def auc_and_brier(name: str, labels: Sequence[int], scores: Sequence[float]) -> BaselineScores:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    return BaselineScores(name, auc_score(y, p), float(np.mean((p - y) ** 2)))  # AUC None with one class


def majority_baseline(train_labels: Sequence[int], eval_labels: Sequence[int]) -> BaselineScores:
    """Every eval row scored with the train positive rate."""
    rate = float(np.mean(np.asarray(train_labels, dtype=np.float64)))
    return auc_and_brier("majority", eval_labels, np.full(len(eval_labels), rate))


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
    return auc_and_brier("logistic_regression", eval_frame[label], scores)


def split_columns(column_types: dict[str, str], label: str, exclude: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns from ingest's column_types (int/float/string)."""
    skip = {label, *exclude}
    numeric = [c for c, t in column_types.items() if c not in skip and t in ("int", "float")]
    categorical = [c for c, t in column_types.items() if c not in skip and t == "string"]
    return numeric, categorical


def baseline_gate(candidate_auc: float | None, baseline: BaselineScores | None, margin: float):
    """Gate: candidate AUC >= baseline AUC - margin. No baseline figure: not applicable."""
    from components.evaluate.evaluate import Gate

    if baseline is None or baseline.auc is None:
        return Gate(GATE_BASELINE, True, None, margin, "not applicable: no baseline AUC", applicable=False)
    if candidate_auc is None or not math.isfinite(candidate_auc):
        return Gate(GATE_BASELINE, False, None, margin, f"candidate AUC undefined; {baseline.name} AUC {baseline.auc:.4f}")
    change = candidate_auc - baseline.auc
    passed = change >= -margin
    detail = (f"candidate AUC {candidate_auc:.4f} vs {baseline.name} baseline {baseline.auc:.4f} "
              f"(Brier {baseline.brier:.4f}): change {change:+.4f} "
              f"{'within' if passed else 'exceeds'} margin {margin:g}")
    return Gate(GATE_BASELINE, passed, change, margin, detail)
