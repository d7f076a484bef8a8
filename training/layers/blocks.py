"""Shared Keras blocks: categorical embeddings with an out-of-vocabulary bucket, and an MLP."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="recpipe")
class CategoricalEmbedding(keras.layers.Layer):
    """Embeds integer ids in ``[0, vocab_size)``; ids outside that range share one extra OOV row."""

    def __init__(self, vocab_size: int, output_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if vocab_size <= 0 or output_dim <= 0:
            raise ValueError(
                f"`vocab_size` and `output_dim` should be positive. Received: vocab_size={vocab_size}, output_dim={output_dim}"
            )
        self.vocab_size = vocab_size
        self.output_dim = output_dim
        self.embedding = keras.layers.Embedding(vocab_size + 1, output_dim, name="embedding")

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        in_vocab = ops.logical_and(ids >= 0, ids < self.vocab_size)
        return self.embedding(ops.where(in_vocab, ids, self.vocab_size))

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "output_dim": self.output_dim}


@keras.saving.register_keras_serializable(package="recpipe")
class MLP(keras.layers.Layer):
    """Dense ReLU layers with dropout."""

    def __init__(self, hidden_units: Sequence[int], dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` should be in [0, 1). Received: dropout={dropout}")
        self.hidden_units = list(hidden_units)
        self.dropout = dropout
        self.dense = [keras.layers.Dense(u, activation="relu", name=f"dense_{i}") for i, u in enumerate(self.hidden_units)]
        self.drop = [keras.layers.Dropout(dropout) for _ in self.hidden_units]

    def call(self, x, training=None):
        for dense, drop in zip(self.dense, self.drop, strict=True):
            x = drop(dense(x), training=training)
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_units": self.hidden_units, "dropout": self.dropout}
