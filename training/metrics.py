"""Evaluation metrics shared by every model: ranking (AUC, logloss) and recall (recall, HR, NDCG at K, coverage, rank)."""

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


def retrieval_metrics(
    recommended: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], ks: Sequence[int], n_items: int
) -> dict[str, float]:
    """recall@k, HR@k, NDCG@k and catalogue coverage@k for each k, from ranked lists of at least max(ks) items.

    NDCG counts each target found at rank r as 1/log2(r + 1), normalised by the best possible DCG of
    min(|targets|, k) hits. Coverage is the share of the ``n_items`` items that appear in some top k.
    """
    out: dict[str, float] = {}
    for k in ks:
        out.update(recall_metrics(recommended, targets, k))
        ndcg = []
        for recs, truth in zip(recommended, targets, strict=True):
            truth_set = {int(t) for t in truth}
            dcg = sum(1.0 / np.log2(r + 2) for r, item in enumerate(list(recs)[:k]) if int(item) in truth_set)
            ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(truth_set), k)))
            ndcg.append(dcg / ideal)
        out[f"ndcg_at_{k}"] = float(np.mean(ndcg))
        shown = {int(i) for recs in recommended for i in list(recs)[:k]}
        out[f"coverage_at_{k}"] = len(shown) / n_items if n_items else 0.0
    return out


def mean_target_rank(
    user_vectors: np.ndarray, item_vectors: np.ndarray, targets: Sequence[Sequence[int]], n_items: int | None = None
) -> float:
    """Mean 1-based position of each target item in its user's full ranking of all items (ties count against it).

    A target without a vector (newer than the model) ranks last: at ``n_items`` (default: the table size).
    """
    ranks = []
    for row, truth in enumerate(targets):
        scores = item_vectors @ user_vectors[row]
        for t in truth:
            if 0 <= int(t) < len(scores):
                ranks.append(int((scores >= scores[int(t)]).sum()))
            else:
                ranks.append(n_items or len(scores))
    return float(np.mean(ranks)) if ranks else float("nan")


def sliced_recall(
    recommended: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    k: int,
    user_group: np.ndarray,
    item_group: np.ndarray,
    names: tuple[str, str] = ("city", "category"),
) -> dict[str, float]:
    """recall@k per user group (e.g. the user's city) and per item group of the targets (e.g. their category).

    A user-group slice averages the recall of its users; an item-group slice is the share of the targets
    in that group that were found. Names look like ``recall_at_50__city_3`` and ``recall_at_50__category_1``.
    """
    by_user: dict[int, list[float]] = {}
    found_in: dict[int, list[int]] = {}
    for recs, truth, group in zip(recommended, targets, user_group, strict=True):
        top = {int(i) for i in list(recs)[:k]}
        truth_set = {int(t) for t in truth}
        by_user.setdefault(int(group), []).append(len(truth_set & top) / len(truth_set))
        for t in truth_set:
            g = int(item_group[t]) if 0 <= t < len(item_group) else -1
            found_in.setdefault(g, []).append(int(t in top))
    out = {f"recall_at_{k}__{names[0]}_{g}": float(np.mean(v)) for g, v in sorted(by_user.items())}
    out.update({f"recall_at_{k}__{names[1]}_{g}": float(np.mean(v)) for g, v in sorted(found_in.items()) if g >= 0})
    return out


def top_k(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    k: int,
    batch: int = 1024,
    exclude: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """Exact top-k item ids by inner product for each user vector (ties broken by item id).

    ``exclude`` lists, per user, items that must not be recommended (e.g. already seen).
    """
    k = min(k, item_vectors.shape[0])
    out = np.empty((user_vectors.shape[0], k), dtype=np.int64)
    for start in range(0, user_vectors.shape[0], batch):
        scores = user_vectors[start : start + batch] @ item_vectors.T
        if exclude is not None:
            for row, seen in enumerate(exclude[start : start + batch]):
                ids = [i for i in seen if 0 <= i < scores.shape[1]]
                scores[row, ids] = -np.inf
        # A stable sort of the negated scores keeps equal scores in item-id order, at the boundary too.
        out[start : start + batch] = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return out
