"""Ranking metrics shared by the monitor's live metrics and the deployer's canary analysis."""

from __future__ import annotations

import numpy as np


def auc_score(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC by the rank-sum (Mann–Whitney) formula, tied scores sharing their average rank."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank of each distinct score
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def auc_standard_error(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """DeLong's (1988) nonparametric standard error of the AUC, from each positive's share of
    negatives ranked below it and each negative's share of positives ranked above it (ties half)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) < 2 or len(neg) < 2:
        return None
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, "left") + 0.5 * (
        np.searchsorted(neg_sorted, pos, "right") - np.searchsorted(neg_sorted, pos, "left"))
    above = len(pos) - np.searchsorted(pos_sorted, neg, "right") + 0.5 * (
        np.searchsorted(pos_sorted, neg, "right") - np.searchsorted(pos_sorted, neg, "left"))
    v10, v01 = below / len(neg), above / len(pos)
    return float(np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)))
