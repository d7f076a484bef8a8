"""XGBoost + Wide&Deep: a GBDT's leaf indices as categorical features of the wide (and optionally deep) part.

The GBDT is trained first (``training.xgb``) on the dense and statistical features; the model walks its
trees itself (``GBDTLeaves``), so the exported SavedModel maps raw features to a click probability with
no XGBoost at serving time. The booster itself is logged as XGBoost JSON beside the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from training.layers.blocks import CategoricalEmbedding
from training.layers.gbdt import GBDTLeaves
from training.models.wide_deep import WideDeep


@keras.saving.register_keras_serializable(package="recpipe")
class XGBWideDeep(WideDeep):
    """Wide&Deep plus one wide weight per (tree, leaf) and, with ``leaves_to_deep``, a leaf embedding per tree.

    Args:
        gbdt_features: the features the trees split on, in the booster's column order.
        n_trees, max_nodes, depth, max_leaves: the shape of ``training.xgb.tree_arrays(booster)``.
        leaves_to_deep: also feed each tree's leaf embedding to the deep MLP.
        **kwargs: the ``WideDeep`` arguments.
    """

    def __init__(
        self,
        *,
        gbdt_features: Sequence[str],
        n_trees: int,
        max_nodes: int,
        depth: int,
        max_leaves: int,
        leaves_to_deep: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.gbdt_features = list(gbdt_features)
        missing = sorted(set(self.gbdt_features) - {f["name"] for f in self.features})
        if missing or not self.gbdt_features:
            raise ValueError(
                f"`gbdt_features` should be non-empty feature names. Received: {self.gbdt_features}; unknown: {missing}"
            )
        if max_leaves <= 0:
            raise ValueError(f"`max_leaves` should be positive. Received: max_leaves={max_leaves}")
        self.n_trees, self.max_nodes, self.depth, self.max_leaves = n_trees, max_nodes, depth, max_leaves
        self.leaves_to_deep = leaves_to_deep
        # float32 under any policy: float16 would round the raw values and the thresholds the trees compare.
        self.trees = GBDTLeaves(n_trees, max_nodes, depth, len(self.gbdt_features), dtype="float32", name="gbdt")
        self.leaf_wide = CategoricalEmbedding(n_trees * max_leaves, 1, **self.embedding_options, name="leaf_wide")
        self.leaf_deep = (
            CategoricalEmbedding(n_trees * max_leaves, self.embedding_dim, **self.embedding_options, name="leaf_deep")
            if leaves_to_deep
            else None
        )

    def set_trees(self, arrays: dict[str, np.ndarray]) -> None:
        """Load the booster's trees (``training.xgb.tree_arrays``)."""
        leaves = int(np.max(arrays["n_leaves"]))
        if leaves > self.max_leaves:
            raise ValueError(f"The trees have up to {leaves} leaves; the model was built for max_leaves={self.max_leaves}")
        self.trees.set_trees(arrays)

    def extra_inputs(self, raw) -> tuple[list, list]:
        x = ops.stack([ops.cast(raw[name], "float32") for name in self.gbdt_features], axis=-1)  # the trees split raw values
        ids = self.trees(x) + ops.arange(self.n_trees, dtype="int32") * self.max_leaves  # [B, T], one id space per tree
        wide = [ops.cast(ops.sum(self.leaf_wide(ids), axis=1), self.compute_dtype)]
        if self.leaf_deep is None:
            return wide, []
        deep = ops.reshape(self.leaf_deep(ids), (-1, self.n_trees * self.embedding_dim))
        return wide, [ops.cast(deep, self.compute_dtype)]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "gbdt_features": self.gbdt_features,
            "n_trees": self.n_trees,
            "max_nodes": self.max_nodes,
            "depth": self.depth,
            "max_leaves": self.max_leaves,
            "leaves_to_deep": self.leaves_to_deep,
        }
