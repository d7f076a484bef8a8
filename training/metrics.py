"""Evaluation metrics shared by every model: ranking (AUC, logloss) and recall (recall@K, HR@K)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score


def ranking_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """AUC, logloss, mean prediction and observed CTR of binary labels against predicted probabilities."""
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    if labels.shape != probs.shape or labels.size == 0:
        raise ValueError(f"labels and probs need the same non-empty shape, received {labels.shape} and {probs.shape}")
    if len(np.unique(labels)) < 2:
        positives = int((labels > 0.5).sum())
        raise ValueError(f"AUC needs both positive and negative labels; the eval set has {positives} of {labels.size} positive")
    return {
        "auc": float(roc_auc_score(labels, probs)),
        "logloss": float(log_loss(labels, probs)),
        "mean_pred": float(probs.mean()),
        "ctr": float(labels.mean()),
    }


def recall_metrics(recommended: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], k: int) -> dict[str, float]:
    """Mean recall@k (share of each user's targets in their top k) and HR@k (share of users with a hit)."""
    if len(recommended) != len(targets) or not targets:
        raise ValueError(f"need one recommendation list per user, received {len(recommended)} lists for {len(targets)} users")
    recalls, hits = [], []
    for row, (recs, truth) in enumerate(zip(recommended, targets, strict=True)):
        truth_set = set(int(t) for t in truth)
        if not truth_set:
            raise ValueError(f"every eval user needs at least one target item; user row {row} has none")
        found = len(truth_set.intersection(int(r) for r in list(recs)[:k]))
        recalls.append(found / len(truth_set))
        hits.append(1.0 if found else 0.0)
    return {f"recall_at_{k}": float(np.mean(recalls)), f"hr_at_{k}": float(np.mean(hits))}


def top_k(user_vectors: np.ndarray, item_vectors: np.ndarray, k: int, batch: int = 1024) -> np.ndarray:
    """Exact top-k item ids by inner product for each user vector (ties broken by item id)."""
    k = min(k, item_vectors.shape[0])
    out = np.empty((user_vectors.shape[0], k), dtype=np.int64)
    for start in range(0, user_vectors.shape[0], batch):
        scores = user_vectors[start : start + batch] @ item_vectors.T
        # A stable sort of the negated scores keeps equal scores in item-id order, at the boundary too.
        out[start : start + batch] = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return out
