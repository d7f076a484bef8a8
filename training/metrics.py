"""Evaluation metrics shared by every model: ranking (AUC, logloss) and recall (recall, HR, NDCG at K, coverage, rank)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score, roc_curve

from recpipe.tracking import SLICE_SEPARATOR


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


def target_positions(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    targets: Mapping[str, Sequence[Sequence[int]]],
    n_items: int | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Where each user's targets fall in the user's full ranking of all items, for each kind of target.

    ``targets[kind][row]`` are user ``row``'s target items of that kind (e.g. "click", "apply"). For every kind,
    returns (positions, aucs): each target's 1-based position among the ``n_items`` items (default: the table
    size; ties count against the target), and each user's AUC, the share of (target, non-target) pairs in which
    the target scores higher, for the users with targets of that kind (and not every item). Items without a
    vector (newer than the model) score below every item with one; a target without one is at position
    ``n_items`` and wins no pair.
    """
    n_vec = len(item_vectors)
    n = max(n_items or n_vec, n_vec)
    found: dict[str, tuple[list, list]] = {kind: ([], []) for kind in targets}
    for row, user in enumerate(user_vectors):
        scores = item_vectors @ user
        for kind, lists in targets.items():
            ids = np.unique(np.asarray(lists[row], np.int64))
            ids = ids[(ids >= 0) & (ids < n)]
            if not len(ids):
                continue
            known = ids[ids < n_vec]
            wins = scores[None, :] >= scores[known][:, None]  # [targets, items]: scores at least the target's
            positions, aucs = found[kind]
            positions.extend(wins.sum(axis=1).tolist() + [n] * (len(ids) - len(known)))
            if len(ids) < n:
                is_target = np.zeros(n_vec, bool)
                is_target[known] = True
                # Non-targets scored strictly lower: those with a vector, and every one without.
                beaten = (~wins & ~is_target[None, :]).sum(axis=1) + (n - n_vec) - (len(ids) - len(known))
                aucs.append(beaten.sum() / (len(ids) * (n - len(ids))))
    return {kind: (np.asarray(p, np.float64), np.asarray(a, np.float64)) for kind, (p, a) in found.items()}


def mean_target_rank(
    user_vectors: np.ndarray, item_vectors: np.ndarray, targets: Sequence[Sequence[int]], n_items: int | None = None
) -> float:
    """Mean 1-based position of each target item in its user's full ranking of all items (``target_positions``)."""
    positions, _ = target_positions(user_vectors, item_vectors, {"all": targets}, n_items)["all"]
    return float(positions.mean()) if len(positions) else float("nan")


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
    in that group that were found. Names look like ``recall_at_50__city_3`` and ``recall_at_50__category_1``;
    ``rows__city_3`` and ``rows__category_1`` count the users and the targets behind each.
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
    out = {f"recall_at_{k}{SLICE_SEPARATOR}{names[0]}_{g}": float(np.mean(v)) for g, v in sorted(by_user.items())}
    out.update(
        {f"recall_at_{k}{SLICE_SEPARATOR}{names[1]}_{g}": float(np.mean(v)) for g, v in sorted(found_in.items()) if g >= 0}
    )
    # How many users / targets each slice averages, so a gate can skip slices too small to compare.
    out.update({f"rows{SLICE_SEPARATOR}{names[0]}_{g}": float(len(v)) for g, v in sorted(by_user.items())})
    out.update({f"rows{SLICE_SEPARATOR}{names[1]}_{g}": float(len(v)) for g, v in sorted(found_in.items()) if g >= 0})
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


def _binary_labels(labels: np.ndarray, probs: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0/1 float64 and probs as float64, after checking shapes and values."""
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != probs.shape or labels.size == 0:
        raise ValueError(f"{what}: labels and probs need the same non-empty 1-d shape, received {labels.shape} and {probs.shape}")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError(f"{what}: labels must be 0 or 1, received values {np.unique(labels)[:10].tolist()}")
    if not np.isfinite(probs).all():
        raise ValueError(f"{what}: probs must be finite, received {int((~np.isfinite(probs)).sum())} NaN or infinite values")
    return labels, probs


def gauc(labels: np.ndarray, probs: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Group AUC: the AUC within each group (e.g. user) that has both classes, weighted by the group's rows.

    Groups with only positives or only negatives have no AUC and are left out; ``gauc_coverage`` is the
    share of all rows that lie in the groups that count. Equal scores within a group get half credit
    (average ranks), as in ``sklearn.metrics.roc_auc_score``.

    Args:
        labels: 0/1 click labels, shape ``(n,)``.
        probs: predicted click probabilities (or any scores), shape ``(n,)``.
        groups: group id of each row, shape ``(n,)``, any sortable dtype.

    Returns:
        ``{"gauc": ..., "gauc_coverage": ...}``.

    Raises:
        ValueError: on mismatched shapes, non-binary labels, or when no group has both classes.
    """
    labels, probs = _binary_labels(labels, probs, "gauc")
    groups = np.asarray(groups)
    if groups.shape != labels.shape:
        raise ValueError(f"gauc: groups need the shape of labels {labels.shape}, received {groups.shape}")
    _, codes = np.unique(groups, return_inverse=True)
    codes = codes.reshape(-1)
    # Sort by group, then score: each group becomes one contiguous block in ascending score order.
    order = np.lexsort((probs, codes))
    g, p, y = codes[order], probs[order], labels[order]
    n = g.size
    position = np.arange(n, dtype=np.float64)
    # Runs of equal (group, score) are ties; every member of a run gets the run's mean position.
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    new_run[1:] = (g[1:] != g[:-1]) | (p[1:] != p[:-1])
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_end = np.append(run_start[1:], n) - 1
    tied_position = ((run_start + run_end) / 2.0)[run_id]
    group_start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = tied_position - position[group_start][g] + 1.0  # 1-based rank within the group
    rows = np.bincount(g).astype(np.float64)
    pos = np.bincount(g, weights=y)
    neg = rows - pos
    pos_rank_sum = np.bincount(g, weights=rank * y)
    counts = (pos > 0) & (neg > 0)
    if not counts.any():
        raise ValueError(
            f"gauc: no group has both a positive and a negative label; received {rows.size} groups over {n} rows "
            f"with {int(pos.sum())} positives"
        )
    # Mann-Whitney: AUC = (sum of positive ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg).
    auc = (pos_rank_sum[counts] - pos[counts] * (pos[counts] + 1) / 2) / (pos[counts] * neg[counts])
    weights = rows[counts]
    return {"gauc": float(np.sum(auc * weights) / weights.sum()), "gauc_coverage": float(weights.sum() / n)}


def calibration(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean predicted probability over observed CTR: 1.0 is calibrated, above 1.0 over-predicts clicks.

    Args:
        labels: 0/1 click labels, shape ``(n,)``.
        probs: predicted click probabilities, shape ``(n,)``.

    Returns:
        ``mean(probs) / mean(labels)``.

    Raises:
        ValueError: on mismatched shapes, non-binary labels, or when there are no positives.
    """
    labels, probs = _binary_labels(labels, probs, "calibration")
    positives = labels.sum()
    if positives == 0:
        raise ValueError(f"calibration needs at least one positive label; received 0 of {labels.size} rows positive")
    return float(probs.mean() / (positives / labels.size))


def _slice_label(name: str, value: np.generic, value_names: dict[str, Sequence[str]] | None) -> str:
    """The printed label of one slice value: its name from ``value_names`` when given, else the value."""
    if value_names is not None and name in value_names:
        names = value_names[name]
        if not np.issubdtype(type(value), np.integer) or not 0 <= int(value) < len(names):
            raise ValueError(
                f"slice {name!r}: value {value.item()!r} has no entry in value_names[{name!r}], "
                f"which names values 0..{len(names) - 1}"
            )
        return str(names[int(value)])
    return str(int(value)) if np.issubdtype(type(value), np.integer) else str(value)


def sliced_ranking_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    slices: dict[str, np.ndarray],
    value_names: dict[str, Sequence[str]] | None = None,
    min_rows: int = 1,
) -> dict[str, float]:
    """AUC, calibration and row count within each value of each slicing column (city, category, user type...).

    Keys look like ``auc__city_3``, ``calibration__user_type_B`` and ``rows__category_1``. A slice value
    gets its ``auc__`` key only when it has both classes and its ``calibration__`` key only when it has
    positives; values with fewer than ``min_rows`` rows get no key at all.

    Args:
        labels: 0/1 click labels, shape ``(n,)``.
        probs: predicted click probabilities, shape ``(n,)``.
        slices: slice name -> the slicing value of each row, shape ``(n,)``.
        value_names: optional slice name -> printed name of each integer value (e.g. user_type 0 -> "B").
        min_rows: the smallest slice that is reported.

    Returns:
        One float per reported key.

    Raises:
        ValueError: on mismatched shapes, non-binary labels, or a value missing from ``value_names``.
    """
    labels, probs = _binary_labels(labels, probs, "sliced_ranking_metrics")
    out: dict[str, float] = {}
    for name, column in slices.items():
        column = np.asarray(column)
        if column.shape != labels.shape:
            raise ValueError(f"slice {name!r} needs the shape of labels {labels.shape}, received {column.shape}")
        for value in np.unique(column):
            mask = column == value
            rows = int(mask.sum())
            if rows < min_rows:
                continue
            label = _slice_label(name, value, value_names)
            y, p = labels[mask], probs[mask]
            positives = int(y.sum())
            if 0 < positives < rows:
                out[f"auc{SLICE_SEPARATOR}{name}_{label}"] = float(roc_auc_score(y, p))
            if positives > 0:
                out[f"calibration{SLICE_SEPARATOR}{name}_{label}"] = float(p.mean() / y.mean())
            out[f"rows{SLICE_SEPARATOR}{name}_{label}"] = float(rows)
    return out


def roc_points(labels: np.ndarray, probs: np.ndarray, max_points: int = 101) -> dict[str, list[float]]:
    """The ROC curve of binary labels against predicted probabilities, thinned to at most ``max_points`` points to plot.

    The curve is ``sklearn.metrics.roc_curve``'s (collinear points already dropped); when it has more than
    ``max_points`` points, points evenly spaced along it are kept. The endpoints (0, 0) and (1, 1) are always kept.

    Args:
        labels: 0/1 click labels, shape ``(n,)``, with both classes.
        probs: predicted click probabilities (or any scores), shape ``(n,)``.
        max_points: the most points returned, at least 2.

    Returns:
        ``{"fpr": [...], "tpr": [...]}``: false and true positive rates, same length, both non-decreasing.

    Raises:
        ValueError: on mismatched shapes, non-binary labels, labels of one class only, or ``max_points < 2``.
    """
    if max_points < 2:
        raise ValueError(f"roc_points: max_points must be at least 2 (the endpoints), received {max_points}")
    labels, probs = _binary_labels(labels, probs, "roc_points")
    positives = int(labels.sum())
    if positives in (0, labels.size):
        raise ValueError(f"roc_points needs both positive and negative labels; received {positives} of {labels.size} positive")
    fpr, tpr, _ = roc_curve(labels, probs)
    if len(fpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max_points)).astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr]}


def ranking_report(
    labels: np.ndarray,
    probs: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    slices: dict[str, np.ndarray] | None = None,
    value_names: dict[str, Sequence[str]] | None = None,
) -> dict[str, float]:
    """Every ranking metric of one eval set: ``ranking_metrics``, calibration, GAUC and sliced metrics.

    Args:
        labels: 0/1 click labels, shape ``(n,)``.
        probs: predicted click probabilities, shape ``(n,)``.
        groups: optional group id of each row (e.g. user id); adds ``gauc`` and ``gauc_coverage``.
        slices: optional slicing columns for ``sliced_ranking_metrics``.
        value_names: optional printed names of slice values, see ``sliced_ranking_metrics``.

    Returns:
        ``auc``, ``logloss``, ``mean_pred``, ``ctr``, ``calibration``, then the optional keys.
    """
    out = ranking_metrics(labels, probs)
    out["calibration"] = calibration(labels, probs)
    if groups is not None:
        out.update(gauc(labels, probs, groups))
    if slices:
        out.update(sliced_ranking_metrics(labels, probs, slices, value_names))
    return out
