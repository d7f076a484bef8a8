"""Item2Vec: skip-gram with negative sampling over session click sequences."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="recpipe")
class Item2Vec(keras.Model):
    """Scores (target, context) item pairs by the dot product of their two embeddings.

    Trained with binary cross-entropy on Spark-made positive pairs and sampled negatives; the target
    embedding table is the item vector table handed to indexing.
    """

    def __init__(self, n_items: int, embedding_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if n_items <= 0 or embedding_dim <= 0:
            raise ValueError(
                f"`n_items` and `embedding_dim` should be positive. Received: n_items={n_items}, embedding_dim={embedding_dim}"
            )
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        init = keras.initializers.RandomUniform(-0.5 / embedding_dim, 0.5 / embedding_dim)
        self.target_embedding = keras.layers.Embedding(
            n_items, embedding_dim, embeddings_initializer=init, name="target_embedding"
        )
        self.context_embedding = keras.layers.Embedding(
            n_items, embedding_dim, embeddings_initializer=init, name="context_embedding"
        )

    def call(self, inputs):
        target = self.target_embedding(ops.cast(inputs["target"], "int32"))
        context = self.context_embedding(ops.cast(inputs["context"], "int32"))
        return ops.sum(target * context, axis=-1)

    def item_vectors(self) -> np.ndarray:
        """The item vector table, L2-normalised (rows: item ids)."""
        table = np.asarray(keras.ops.convert_to_numpy(self.target_embedding.embeddings), dtype=np.float32)
        return table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_items": self.n_items, "embedding_dim": self.embedding_dim}
