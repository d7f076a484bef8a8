"""CNN+DNN: each item's image embedding (from a frozen CNN) beside the other features in an MLP.

The CNN runs once per item when training starts (``training.images``); the model keeps the resulting
per-item table as a non-trainable weight and looks rows up by ``item_id``, so serving needs no images.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from training.models.ctr import DeepClickModel


@keras.saving.register_keras_serializable(package="recpipe")
class CNNDNN(DeepClickModel):
    """MLP(categorical embeddings, numeric values, image embedding of ``item_feature``).

    Args:
        features: feature specs.
        embedding_dim: embedding size of every categorical feature.
        hidden_units: MLP layer sizes.
        n_items: rows of the image table (item ids outside it, or without an image, get zeros).
        image_dim: size of an image embedding.
        dropout: MLP dropout.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
        item_feature: the feature holding the item id.
    """

    def __init__(
        self,
        features: Sequence[dict],
        embedding_dim: int,
        hidden_units: Sequence[int],
        n_items: int,
        image_dim: int,
        dropout: float = 0.0,
        oov_buckets: int = 1,
        item_feature: str = "item_id",
        **kwargs,
    ) -> None:
        super().__init__(features, embedding_dim, hidden_units, dropout, oov_buckets, **kwargs)
        if n_items <= 0 or image_dim <= 0:
            raise ValueError(f"`n_items` and `image_dim` should be positive. Received: n_items={n_items}, image_dim={image_dim}")
        if item_feature not in {f["name"] for f in self.features}:
            raise ValueError(f"`item_feature` should name a feature. Received: item_feature={item_feature!r}")
        self.n_items = n_items
        self.image_dim = image_dim
        self.item_feature = item_feature
        self.image_table = self.add_weight(shape=(n_items, image_dim), initializer="zeros", trainable=False, name="image_table")
        self.deep_embedding = self.categorical_embedding()

    def set_image_embeddings(self, table: np.ndarray) -> None:
        """Set the per-item image embeddings: [n_items, image_dim], row i for item id i."""
        table = np.asarray(table, dtype=np.float32)
        if table.shape != (self.n_items, self.image_dim) or not np.isfinite(table).all():
            raise ValueError(
                f"The image table should be finite with shape {(self.n_items, self.image_dim)}. Received: shape={table.shape}"
            )
        self.image_table.assign(table)

    def logit(self, inputs, raw, training=None):
        ids = ops.cast(inputs[self.item_feature], "int32")
        rows = ops.take(self.image_table, ops.clip(ids, 0, self.n_items - 1), axis=0)
        known = ops.expand_dims(ops.cast(ops.logical_and(ids >= 0, ids < self.n_items), rows.dtype), -1)
        dense = self.dense_input(self.deep_embedding(inputs), inputs)
        deep = ops.concatenate([dense, ops.cast(rows * known, dense.dtype)], axis=-1)
        return self.head(deep, training=training)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "n_items": self.n_items,
            "image_dim": self.image_dim,
            "item_feature": self.item_feature,
        }
