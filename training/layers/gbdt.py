"""A Keras layer that walks XGBoost trees, so a saved model maps raw features to leaf ordinals by itself."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from training.layers.blocks import check_positive

# Weight name -> (dtype, initial value, per-tree (True) or per-node (False)). Before ``set_trees`` every
# node is a leaf with ordinal 0, so an unset layer maps every row to leaf 0 of every tree.
_TABLES = {
    "left": ("int32", -1, False),
    "right": ("int32", -1, False),
    "feature": ("int32", 0, False),
    "threshold": ("float32", 0, False),
    "default_left": ("int32", 0, False),
    "leaf_ordinal": ("int32", 0, False),
    "n_leaves": ("int32", 1, True),
}


@keras.saving.register_keras_serializable(package="recpipe")
class GBDTLeaves(keras.layers.Layer):
    """Maps features to the leaf each tree of a GBDT sends them to, with XGBoost's split rule.

    The trees are non-trainable weights, filled by ``set_trees(training.xgb.tree_arrays(booster))``, so they
    are saved in ``.keras`` files and SavedModels. A row goes left at a node when its value is below the
    threshold, or is NaN and the node's default direction is left; otherwise right.

    Args:
        n_trees: Number of trees T.
        max_nodes: Nodes per tree after padding N (the largest tree's node count).
        depth: Deepest root-to-leaf path over all trees; 0 when every tree is a single leaf.
        n_features: Number of input columns F.
    """

    def __init__(self, n_trees: int, max_nodes: int, depth: int, n_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive(n_trees=n_trees, max_nodes=max_nodes, n_features=n_features)
        if depth < 0:
            raise ValueError(f"`depth` should be non-negative. Received: depth={depth}")
        self.n_trees, self.max_nodes, self.depth, self.n_features = n_trees, max_nodes, depth, n_features
        for name, (dtype, init, per_tree) in _TABLES.items():
            shape = (n_trees,) if per_tree else (n_trees, max_nodes)
            weight = self.add_weight(
                shape=shape, dtype=dtype, initializer=keras.initializers.Constant(init), trainable=False, name=name
            )
            setattr(self, name, weight)
        self.built = True

    def set_trees(self, arrays: dict) -> None:
        """Assigns the trees.

        Args:
            arrays: ``training.xgb.tree_arrays`` output: ``left``, ``right``, ``feature``, ``threshold``,
                ``default_left``, ``leaf_ordinal`` of shape [n_trees, max_nodes], ``n_leaves`` of shape
                [n_trees] and ``depth``.

        Raises:
            KeyError: If an array is missing.
            ValueError: If a shape, the depth or a feature index does not match the constructor's sizes.
        """
        missing = [k for k in (*_TABLES, "depth") if k not in arrays]
        if missing:
            raise KeyError(f"`arrays` is missing {missing}. Received keys: {sorted(arrays)}")
        values = {k: np.asarray(arrays[k]) for k in _TABLES}
        wrong = [
            f"{k}: expected {tuple(getattr(self, k).shape)}, received {v.shape}"
            for k, v in values.items()
            if v.shape != tuple(getattr(self, k).shape)
        ]
        if wrong:
            raise ValueError(f"Tree arrays do not match the layer's sizes: {'; '.join(wrong)}")
        if int(arrays["depth"]) > self.depth:
            raise ValueError(
                f"The trees are deeper than the layer walks: expected depth <= {self.depth}, received {int(arrays['depth'])}"
            )
        feature = values["feature"]
        if feature.min() < 0 or feature.max() >= self.n_features:
            raise ValueError(
                f"Feature indices should be in [0, {self.n_features}). Received: min={feature.min()}, max={feature.max()}"
            )
        for name, value in values.items():
            getattr(self, name).assign(value.astype(_TABLES[name][0]))

    @property
    def max_leaves(self) -> int:
        """The most leaves in one tree: a table of ``n_trees * max_leaves`` rows holds every (tree, leaf)."""
        return int(np.max(self.n_leaves.numpy()))

    def call(self, x):
        x = ops.cast(x, "float32")
        # Index the [T, N] tables as flat [T * N] vectors: node n of tree t is t * N + n.
        offset = ops.expand_dims(ops.arange(self.n_trees, dtype="int32") * self.max_nodes, 0)
        tables = {name: ops.reshape(getattr(self, name), (-1,)) for name in _TABLES if name != "n_leaves"}
        node = ops.zeros((ops.shape(x)[0], self.n_trees), dtype="int32")
        for _ in range(self.depth):
            idx = node + offset
            left, right = ops.take(tables["left"], idx), ops.take(tables["right"], idx)
            value = ops.take_along_axis(x, ops.take(tables["feature"], idx), axis=1)
            missing_left = ops.logical_and(ops.isnan(value), ops.take(tables["default_left"], idx) != 0)
            go_left = ops.logical_or(missing_left, value < ops.take(tables["threshold"], idx))
            node = ops.where(left < 0, node, ops.where(go_left, left, right))
        return ops.take(tables["leaf_ordinal"], node + offset)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_trees)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "n_trees": self.n_trees,
            "max_nodes": self.max_nodes,
            "depth": self.depth,
            "n_features": self.n_features,
        }
