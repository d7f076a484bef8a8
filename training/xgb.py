"""The GBDT half of XGBoost + Wide&Deep: fit a booster on the ranking features and flatten its trees.

``tree_arrays`` turns a booster into padded per-tree arrays that ``training.layers.gbdt.GBDTLeaves`` walks
inside TensorFlow, so a serving model maps raw features to leaf indices without XGBoost; ``leaf_ordinals``
is the same mapping computed by XGBoost itself, the reference the layer is tested against.

Layout of ``booster.save_raw("json")`` in XGBoost 3.2 that the parser relies on: the trees are in
``learner.gradient_booster.model.trees`` (``learner.gradient_booster.gbtree.model.trees`` for dart); a
node is a leaf when ``left_children`` is -1, and a leaf's ``split_conditions`` entry holds its leaf value,
not a threshold; ``default_left`` is a list of 0/1 integers; ``split_type`` is 1 for a categorical split,
whose ``split_conditions`` entry is meaningless; the root's parent is 2147483647, not -1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import xgboost
from sklearn.metrics import roc_auc_score

# Categorical ranking features whose ids have a natural order, so a threshold split on them means something.
ORDINAL_FEATURES = ("position", "price_bucket", "city_match")


def _spec_field(spec, key: str):
    """One field of a feature spec given as a mapping or as an object with attributes (``FeatureSpec``)."""
    return spec[key] if isinstance(spec, Mapping) else getattr(spec, key)


def gbdt_features(features: Sequence[dict]) -> list[str]:
    """Names of the features the GBDT reads: every numeric one plus the ordinal categorical ones.

    Args:
        features: Feature specs with keys ``name``, ``kind`` ("categorical" or "numeric") and ``vocab_size``.

    Returns:
        The names, in spec order.

    Raises:
        ValueError: If no feature is numeric or in ``ORDINAL_FEATURES``.
    """
    names = [
        _spec_field(spec, "name")
        for spec in features
        if _spec_field(spec, "kind") == "numeric"
        or (_spec_field(spec, "kind") == "categorical" and _spec_field(spec, "name") in ORDINAL_FEATURES)
    ]
    if not names:
        received = [(_spec_field(s, "name"), _spec_field(s, "kind")) for s in features]
        raise ValueError(
            f"The GBDT needs at least one numeric feature or one of {ORDINAL_FEATURES}. Received (name, kind): {received}"
        )
    return names


def feature_matrix(x: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Stacks ``x[name]`` for each name into a float32 matrix.

    Args:
        x: Feature name -> values of shape [N] (or [N, 1]).
        names: The columns, in order, e.g. from ``gbdt_features``.

    Returns:
        A float32 array of shape [N, len(names)].

    Raises:
        KeyError: If a name is missing from ``x``.
        ValueError: If a feature is not one value per row, or the features disagree on N.
    """
    missing = [n for n in names if n not in x]
    if missing:
        raise KeyError(f"Features {missing} are missing from the input. Received features: {sorted(x)}")
    columns = []
    for name in names:
        col = np.asarray(x[name])
        if col.ndim == 2 and col.shape[1] == 1:
            col = col[:, 0]
        if col.ndim != 1:
            raise ValueError(f"Feature {name!r} should have shape [N] or [N, 1]. Received: shape={col.shape}")
        columns.append(col.astype(np.float32))
    lengths = {name: len(col) for name, col in zip(names, columns, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"All features should have the same number of rows. Received: {lengths}")
    if not columns:
        raise ValueError(f"`names` should name at least one feature. Received: names={list(names)}")
    return np.stack(columns, axis=1)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC, or NaN when ``y`` holds a single class (AUC is undefined there)."""
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _check_xy(x: np.ndarray, y: np.ndarray, n_features: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Checks a design matrix and its 0/1 labels, returning them as float32."""
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"`{what}` x should have shape [N, {n_features}] (one column per feature name). Received: {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"`{what}` y should have shape [{len(x)}] (one label per row of x). Received: {y.shape}")
    if len(x) == 0:
        raise ValueError(f"`{what}` should have at least one row. Received: x.shape={x.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"`{what}` labels should be 0 or 1. Received values: {np.unique(y)[:10].tolist()}")
    return x, y


def fit_gbdt(
    x: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: Sequence[str],
    n_trees: int,
    max_depth: int,
    learning_rate: float,
    seed: int,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[xgboost.Booster, dict[str, float]]:
    """Fits a binary:logistic GBDT with the hist tree method.

    Args:
        x: Features, shape [N, F]; NaN means missing.
        y: Labels in {0, 1}, shape [N].
        feature_names: F names, the columns of ``x``.
        n_trees: Boosting rounds (one tree each), positive.
        max_depth: Maximum tree depth, positive.
        learning_rate: Shrinkage, positive.
        seed: Random seed.
        eval_set: Optional held-out ``(x, y)`` scored after training.

    Returns:
        The booster and metrics ``gbdt_train_auc`` (plus ``gbdt_eval_auc`` with ``eval_set``); an AUC is NaN
        when its labels hold a single class.

    Raises:
        ValueError: On non-positive hyperparameters or inconsistent shapes.
    """
    bad = [
        f"{k}={v}" for k, v in {"n_trees": n_trees, "max_depth": max_depth, "learning_rate": learning_rate}.items() if not v > 0
    ]
    if bad:
        raise ValueError(f"`n_trees`, `max_depth` and `learning_rate` should be positive. Received: {', '.join(bad)}")
    feature_names = list(feature_names)
    x, y = _check_xy(x, y, len(feature_names), "train")
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": max_depth,
        "learning_rate": learning_rate,
        "seed": seed,
        "nthread": os.cpu_count(),
    }
    train = xgboost.DMatrix(x, label=y, feature_names=feature_names)
    booster = xgboost.train(params, train, num_boost_round=n_trees)
    metrics = {"gbdt_train_auc": _auc(y, booster.predict(train))}
    if eval_set is not None:
        ex, ey = _check_xy(*eval_set, len(feature_names), "eval_set")
        metrics["gbdt_eval_auc"] = _auc(ey, booster.predict(xgboost.DMatrix(ex, feature_names=feature_names)))
    return booster, metrics


def _trees_json(booster: xgboost.Booster) -> list[dict]:
    """The trees of a single-output tree booster, from its JSON dump."""
    learner = json.loads(booster.save_raw("json"))["learner"]
    params = learner["learner_model_param"]
    if int(params.get("num_class", 0)) > 1 or int(params.get("num_target", 1)) > 1:
        raise ValueError(
            "Only single-output models (e.g. binary:logistic) can be flattened. "
            f"Received: num_class={params.get('num_class')}, num_target={params.get('num_target')}"
        )
    gb = learner["gradient_booster"]
    if gb["name"] == "gbtree":
        model = gb["model"]
    elif gb["name"] == "dart":
        model = gb["gbtree"]["model"]
    else:
        raise ValueError(f"Only tree boosters (gbtree, dart) can be flattened. Received: booster={gb['name']!r}")
    trees = model["trees"]
    if not trees:
        raise ValueError("The booster has no trees. Received: 0 trees")
    for tree in trees:
        if int(tree["tree_param"].get("size_leaf_vector", 1)) > 1:
            raise ValueError(
                f"Multi-output trees cannot be flattened. Received: size_leaf_vector={tree['tree_param']['size_leaf_vector']}"
            )
        internal = np.asarray(tree["left_children"]) != -1
        categorical = internal & (np.asarray(tree["split_type"]) != 0)
        if categorical.any():
            raise ValueError(
                "Categorical splits cannot be flattened into threshold arrays; train without enable_categorical. "
                f"Received: tree {tree['id']} has categorical splits at nodes {np.flatnonzero(categorical).tolist()}"
            )
    return trees


def _reachable(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, int]:
    """Which nodes are reachable from the root (deleted nodes are not), and the deepest leaf's depth."""
    seen = np.zeros(len(left), bool)
    frontier, depth = [0], 0
    while True:
        seen[frontier] = True
        children = [c for n in frontier if left[n] != -1 for c in (left[n], right[n])]
        if not children:
            return seen, depth
        frontier, depth = children, depth + 1


def tree_arrays(booster: xgboost.Booster) -> dict[str, np.ndarray]:
    """Flattens a booster's trees into arrays padded to the largest tree's node count.

    Padding nodes, like leaves, have ``left == right == -1``; ``feature`` is 0 on leaves and padding, so it
    is always a valid column index.

    Args:
        booster: A single-output gbtree or dart booster with numeric splits only.

    Returns:
        ``left``, ``right``, ``feature`` (int32 [T, N]), ``threshold`` (float32 [T, N]), ``default_left``
        (int8 [T, N], 1 where missing values go left), ``leaf_ordinal`` (int32 [T, N]: k for the k-th leaf
        of a tree in node-id order, -1 elsewhere), ``n_leaves`` (int32 [T]) and ``depth`` (0-d int32: the
        deepest root-to-leaf path over all trees).

    Raises:
        ValueError: For multi-class or multi-target models, non-tree boosters or categorical splits.
    """
    trees = _trees_json(booster)
    n_nodes = max(len(t["left_children"]) for t in trees)
    shape = (len(trees), n_nodes)
    out = {
        "left": np.full(shape, -1, np.int32),
        "right": np.full(shape, -1, np.int32),
        "feature": np.zeros(shape, np.int32),
        "threshold": np.zeros(shape, np.float32),
        "default_left": np.zeros(shape, np.int8),
        "leaf_ordinal": np.full(shape, -1, np.int32),
        "n_leaves": np.zeros(len(trees), np.int32),
    }
    depth = 0
    for i, tree in enumerate(trees):
        left, right = np.asarray(tree["left_children"], np.int32), np.asarray(tree["right_children"], np.int32)
        n = len(left)
        internal = left != -1
        reachable, tree_depth = _reachable(left, right)
        depth = max(depth, tree_depth)
        out["left"][i, :n], out["right"][i, :n] = left, right
        out["feature"][i, :n] = np.where(internal, tree["split_indices"], 0)
        # A leaf's split_conditions entry is its leaf value; zero it so the arrays hold thresholds only.
        out["threshold"][i, :n] = np.where(internal, np.asarray(tree["split_conditions"], np.float32), 0.0)
        out["default_left"][i, :n] = np.asarray(tree["default_left"], np.int8) * internal
        leaves = np.flatnonzero(~internal & reachable)
        out["leaf_ordinal"][i, leaves] = np.arange(len(leaves), dtype=np.int32)
        out["n_leaves"][i] = len(leaves)
    out["depth"] = np.asarray(depth, np.int32)
    return out


def leaf_ordinals(booster: xgboost.Booster, x: np.ndarray) -> np.ndarray:
    """Leaf ordinals computed by XGBoost itself: the reference for ``GBDTLeaves``.

    Args:
        booster: A booster ``tree_arrays`` accepts.
        x: Features, shape [N, F]; NaN means missing.

    Returns:
        int32 [N, T]: for each row and tree, the ordinal (as in ``tree_arrays``) of the leaf the row reaches.
    """
    arrays = tree_arrays(booster)
    x = np.asarray(x, dtype=np.float32)
    nodes = booster.predict(xgboost.DMatrix(x, feature_names=booster.feature_names), pred_leaf=True)
    nodes = nodes.reshape(len(x), -1).astype(np.int64)
    return np.take_along_axis(arrays["leaf_ordinal"].T, nodes, axis=0).astype(np.int32)
