"""Shared Keras blocks: categorical embeddings with an out-of-vocabulary bucket, and an MLP."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

L2_SCOPES = ("table", "batch")


@keras.saving.register_keras_serializable(package="recpipe")
class CategoricalEmbedding(keras.layers.Layer):
    """Embeds integer ids in ``[0, vocab_size)``; any other id goes to one of ``oov_buckets`` extra rows.

    An out-of-vocabulary id ``i`` takes row ``vocab_size + (i mod oov_buckets)``: ids newer than the model
    (new items, a new city) share a few learned rows instead of failing, and consecutive new ids spread
    over all buckets. ``oov_buckets=1`` is one shared unknown row.

    Args:
        vocab_size: ids ``0..vocab_size-1`` have their own row.
        output_dim: size of each row.
        oov_buckets: extra rows shared by every other id.
        l2: the L2 penalty's weight; how it applies is ``l2_scope``.
        l2_scope: ``"table"`` adds ``l2 / 2 * (squared norm of the whole table)`` to the loss at every step,
            as FuxiCTR's ``embedding_regularizer`` does (rows a batch does not use shrink too); ``"batch"``
            adds ``l2 * mean over the batch of the looked-up rows' squared norms``, whose gradient touches
            only those rows (cheaper for a vocabulary of millions).
        init_stddev: rows start normal with this deviation (FuxiCTR's is 1e-4); ``None`` keeps Keras's
            default (uniform in +-0.05).
    """

    def __init__(
        self,
        vocab_size: int,
        output_dim: int,
        oov_buckets: int = 1,
        l2: float = 0.0,
        l2_scope: str = "table",
        init_stddev: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if vocab_size <= 0 or output_dim <= 0 or oov_buckets <= 0:
            raise ValueError(
                "`vocab_size`, `output_dim` and `oov_buckets` should be positive. "
                f"Received: vocab_size={vocab_size}, output_dim={output_dim}, oov_buckets={oov_buckets}"
            )
        if l2 < 0 or l2_scope not in L2_SCOPES or (init_stddev is not None and not init_stddev > 0):
            raise ValueError(
                f"`l2` should be non-negative, `l2_scope` one of {L2_SCOPES} and `init_stddev` positive or None. "
                f"Received: l2={l2}, l2_scope={l2_scope!r}, init_stddev={init_stddev}"
            )
        self.vocab_size = vocab_size
        self.output_dim = output_dim
        self.oov_buckets = oov_buckets
        self.l2 = l2
        self.l2_scope = l2_scope
        self.init_stddev = init_stddev
        initializer = "uniform" if init_stddev is None else keras.initializers.RandomNormal(stddev=init_stddev)
        regularizer = keras.regularizers.L2(l2 / 2) if l2 and l2_scope == "table" else None
        self.embedding = keras.layers.Embedding(
            vocab_size + oov_buckets,
            output_dim,
            embeddings_initializer=initializer,
            embeddings_regularizer=regularizer,
            name="embedding",
        )

    def build(self, input_shape=None) -> None:
        self.embedding.build(input_shape)

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        in_vocab = ops.logical_and(ids >= 0, ids < self.vocab_size)
        rows = self.embedding(ops.where(in_vocab, ids, self.vocab_size + ops.mod(ids, self.oov_buckets)))
        if self.l2 and self.l2_scope == "batch":
            self.add_loss(self.l2 * ops.mean(ops.sum(ops.square(ops.cast(rows, "float32")), axis=-1)))
        return rows

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "output_dim": self.output_dim,
            "oov_buckets": self.oov_buckets,
            "l2": self.l2,
            "l2_scope": self.l2_scope,
            "init_stddev": self.init_stddev,
        }


@keras.saving.register_keras_serializable(package="recpipe")
class MLP(keras.layers.Layer):
    """Dense layers, each followed by batch normalisation (optional), ReLU and dropout (FuxiCTR's MLP block).

    Args:
        hidden_units: the layers' sizes.
        dropout: dropout rate after each layer's activation.
        batch_norm: normalise each layer's pre-activation over the batch.
    """

    def __init__(self, hidden_units: Sequence[int], dropout: float = 0.0, batch_norm: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` should be in [0, 1). Received: dropout={dropout}")
        self.hidden_units = list(hidden_units)
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.dense = [
            keras.layers.Dense(u, activation=None if batch_norm else "relu", name=f"dense_{i}")
            for i, u in enumerate(self.hidden_units)
        ]
        # PyTorch's defaults (FuxiCTR's): running statistics at momentum 0.9, not Keras's 0.99, which would still
        # be far from the data's after the few hundred steps of a short training run.
        self.norms = [
            keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"batch_norm_{i}")
            for i in range(len(self.hidden_units))
        ]
        self.drop = [keras.layers.Dropout(dropout) for _ in self.hidden_units]

    def call(self, x, training=None):
        for dense, norm, drop in zip(self.dense, self.norms, self.drop, strict=True):
            x = dense(x)
            if self.batch_norm:
                x = ops.relu(norm(x, training=training))
            x = drop(x, training=training)
        return x

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
        }


def check_positive(**sizes: int | Sequence[int]) -> None:
    """Raise a ValueError naming every size (or sequence of sizes) that is not positive, with its value."""
    bad = [f"{k}={v}" for k, v in sizes.items() if (min(v, default=1) if isinstance(v, Sequence) else v) <= 0]
    if bad:
        raise ValueError(f"Sizes should be positive. Received: {', '.join(bad)}")


def sampling_probs(neg_prob, n_items: int, name: str = "neg_prob") -> np.ndarray:
    """A negative sampler's distribution: ``n_items`` finite non-negative values, normalised to sum 1 (float32).
    ``name`` names the argument in the error."""
    p = np.asarray(neg_prob, dtype=np.float64)
    if p.shape != (n_items,) or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValueError(
            f"`{name}` should be {n_items} finite non-negative values with a positive sum. "
            f"Received: shape={p.shape}, min={p.min() if p.size else None}, sum={p.sum()}"
        )
    return (p / p.sum()).astype(np.float32)


def lookup(table, ids, fill):
    """``table[ids]``, with ``fill`` where an id is outside ``[0, len(table))`` (e.g. the -1 pads)."""
    n = table.shape[0]
    rows = ops.take(table, ops.clip(ids, 0, n - 1), axis=0)
    valid = ops.logical_and(ids >= 0, ids < n)
    for _ in range(len(table.shape) - 1):
        valid = ops.expand_dims(valid, -1)
    return ops.where(valid, rows, fill)


def _masked_sum(values, weights):
    """Sum of ``values`` [B, L, d] over L, weighted by ``weights`` [B, L]."""
    return ops.sum(values * ops.expand_dims(weights, -1), axis=1)


@keras.saving.register_keras_serializable(package="recpipe")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean of ``values`` [B, L, d] over the positions where ``mask`` [B, L] is true; zeros where none is."""

    def call(self, values, mask):
        weights = ops.cast(mask, values.dtype)
        count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
        return _masked_sum(values, weights) / count

    def get_config(self) -> dict:
        return super().get_config()


@keras.saving.register_keras_serializable(package="recpipe")
class AttentionPooling(keras.layers.Layer):
    """Scaled dot-product attention of one query per row over a masked sequence.

    The query [B, q] is projected to the value size d; each position's score is
    ``<query, value> / sqrt(d)``, padded positions get no weight, and a row with no valid position gives
    zeros (not the uniform mean a plain softmax would give).

    Args:
        use_bias: whether the query projection has a bias.
    """

    def __init__(self, use_bias: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_bias = use_bias

    def build(self, query_shape, values_shape, mask_shape=None) -> None:
        self.query_projection = keras.layers.Dense(values_shape[-1], use_bias=self.use_bias, name="query_projection")
        self.query_projection.build(query_shape)

    def call(self, query, values, mask):
        q = self.query_projection(query)
        scores = ops.einsum("bd,bld->bl", q, values) / ops.sqrt(ops.cast(ops.shape(values)[-1], values.dtype))
        valid = ops.cast(mask, "bool")
        # A softmax over the valid positions only: padded ones get exactly 0, and so does every position
        # of an all-padding row (a plain masked softmax would spread it uniformly over the padding).
        # In float32 even under mixed precision: -1e9 and 1e-12 are -inf and 0 in float16 (NaN rows).
        scores = ops.where(valid, ops.cast(scores, "float32"), -1e9)
        weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True)) * ops.cast(valid, "float32")
        weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-12)
        return _masked_sum(values, ops.cast(weights, values.dtype))

    def get_config(self) -> dict:
        return {**super().get_config(), "use_bias": self.use_bias}
