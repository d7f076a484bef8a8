"""Shared blocks of the ranking (click) models, driven by the feature contract.

Every ranking model reads the same dict of feature tensors, described by feature specs (dicts with
``name``, ``kind`` and ``vocab_size`` from ``recpipe.contracts.ranking_features``). A categorical feature
is an embedding row (hashed out-of-vocabulary buckets for unseen ids). A numeric feature (a count or a
rate) reaches these layers already transformed (``ClickModel`` standardises ``log1p(max(x, 0))`` with the
training set's mean and deviation); as a field it is that value times a learned vector, as FuxiCTR and
DeepCTR embed dense features.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from training.layers.blocks import CategoricalEmbedding


def log_count(x):
    """The first transform of a raw numeric feature: ``log1p(max(x, 0))`` in float32 (counts span decades)."""
    return ops.log1p(ops.maximum(ops.cast(x, "float32"), 0.0))


def numeric_value(x):
    """A transformed numeric feature [B] as a float32 column [B, 1]."""
    return ops.expand_dims(ops.cast(x, "float32"), -1)


def check_features(features: Sequence[dict]) -> list[dict]:
    """Feature specs as plain dicts, checked: unique names, a known kind, a positive vocabulary when categorical."""
    specs = [dict(f) for f in features]
    if not specs:
        raise ValueError("`features` should list at least one feature spec. Received: []")
    names = [f.get("name") for f in specs]
    bad = [f for f in specs if f.get("kind") not in ("categorical", "numeric")]
    bad += [f for f in specs if f.get("kind") == "categorical" and not int(f.get("vocab_size", 0)) > 0]
    if bad or len(set(names)) != len(names):
        raise ValueError(
            "Each feature spec needs a unique `name`, `kind` 'categorical' or 'numeric', and a positive `vocab_size` "
            f"when categorical. Received: {bad or names}"
        )
    return specs


@keras.saving.register_keras_serializable(package="recpipe")
class FieldEmbedding(keras.layers.Layer):
    """Every feature as one field vector: a dict of [B] tensors -> [B, F, d], in spec order.

    Args:
        features: feature specs (dicts with ``name``, ``kind``, ``vocab_size``).
        output_dim: size d of every field vector (1 gives each feature's linear weight).
        oov_buckets: out-of-vocabulary rows of each categorical feature (see ``CategoricalEmbedding``).
        l2, l2_scope, init_stddev: each categorical feature's table's L2 penalty and initialisation (see
            ``CategoricalEmbedding``).
    """

    def __init__(
        self,
        features: Sequence[dict],
        output_dim: int,
        oov_buckets: int = 1,
        l2: float = 0.0,
        l2_scope: str = "table",
        init_stddev: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.features = check_features(features)
        self.output_dim = output_dim
        self.oov_buckets = oov_buckets
        self.l2 = l2
        self.l2_scope = l2_scope
        self.init_stddev = init_stddev
        options = {"l2": l2, "l2_scope": l2_scope, "init_stddev": init_stddev}
        self.tables = {
            f["name"]: CategoricalEmbedding(f["vocab_size"], output_dim, oov_buckets, **options, name=f"emb_{f['name']}")
            for f in self.features
            if f["kind"] == "categorical"
        }
        self.numeric = [f["name"] for f in self.features if f["kind"] == "numeric"]
        self.numeric_vectors = None

    @property
    def num_fields(self) -> int:
        return len(self.features)

    def build(self, input_shape=None) -> None:
        if self.numeric:
            self.numeric_vectors = self.add_weight(
                shape=(len(self.numeric), self.output_dim), initializer="glorot_uniform", name="numeric_vectors"
            )
        for table in self.tables.values():
            table.build((None,))

    def call(self, inputs):
        fields, k = [], 0
        for f in self.features:
            if f["kind"] == "categorical":
                fields.append(self.tables[f["name"]](inputs[f["name"]]))
            else:
                value = ops.cast(numeric_value(inputs[f["name"]]), self.compute_dtype)
                fields.append(value * ops.cast(self.numeric_vectors[k], self.compute_dtype))
                k += 1
        return ops.stack([ops.cast(v, self.compute_dtype) for v in fields], axis=1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "features": self.features,
            "output_dim": self.output_dim,
            "oov_buckets": self.oov_buckets,
            "l2": self.l2,
            "l2_scope": self.l2_scope,
            "init_stddev": self.init_stddev,
        }


@keras.saving.register_keras_serializable(package="recpipe")
class WideLinear(keras.layers.Layer):
    """The wide part: one weight per categorical id, per crossed-id pair and per numeric feature, plus a bias.

    A cross of features a and b is the id ``(a * vocab_b + b) mod cross_bins``. Returns the logit [B, 1].

    Args:
        features: feature specs.
        crosses: pairs of categorical feature names.
        cross_bins: size of the id space of each crossed feature.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
        l2, l2_scope, init_stddev: the weights' L2 penalty and initialisation (see ``CategoricalEmbedding``).
    """

    def __init__(
        self,
        features: Sequence[dict],
        crosses: Sequence[Sequence[str]] = (),
        cross_bins: int = 1024,
        oov_buckets: int = 1,
        l2: float = 0.0,
        l2_scope: str = "table",
        init_stddev: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.features = check_features(features)
        self.crosses = [list(c) for c in crosses]
        self.cross_bins = cross_bins
        self.oov_buckets = oov_buckets
        self.l2 = l2
        self.l2_scope = l2_scope
        self.init_stddev = init_stddev
        self.vocab = {f["name"]: f["vocab_size"] for f in self.features if f["kind"] == "categorical"}
        unknown = [n for pair in self.crosses for n in pair if n not in self.vocab]
        if unknown or any(len(pair) != 2 for pair in self.crosses):
            raise ValueError(
                f"`crosses` should be pairs of categorical features. Received: {self.crosses}; not categorical: {unknown}. "
                f"Categorical: {sorted(self.vocab)}"
            )
        options = {"l2": l2, "l2_scope": l2_scope, "init_stddev": init_stddev}
        self.linear = FieldEmbedding(self.features, 1, oov_buckets, **options, name="linear")
        self.cross_tables = [CategoricalEmbedding(cross_bins, 1, **options, name=f"cross_{a}_x_{b}") for a, b in self.crosses]

    def build(self, input_shape=None) -> None:
        self.linear.build(input_shape)
        for table in self.cross_tables:
            table.build((None,))
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="bias")

    def call(self, inputs):
        terms = [ops.sum(self.linear(inputs), axis=1)]
        for (a, b), table in zip(self.crosses, self.cross_tables, strict=True):
            ids = ops.mod(ops.cast(inputs[a], "int32") * self.vocab[b] + ops.cast(inputs[b], "int32"), self.cross_bins)
            terms.append(ops.cast(table(ids), self.compute_dtype))
        return ops.sum(ops.stack(terms, axis=0), axis=0) + ops.cast(self.bias, self.compute_dtype)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "features": self.features,
            "crosses": self.crosses,
            "cross_bins": self.cross_bins,
            "oov_buckets": self.oov_buckets,
            "l2": self.l2,
            "l2_scope": self.l2_scope,
            "init_stddev": self.init_stddev,
        }


@keras.saving.register_keras_serializable(package="recpipe")
class FMInteraction(keras.layers.Layer):
    """Second-order factorization machine term: sum over field pairs of <v_i, v_j>, [B, F, d] -> [B, 1].

    Computed as ``0.5 * sum_d((sum_i v_i)^2 - sum_i v_i^2)`` (Rendle 2010), linear in the number of fields.
    """

    def call(self, fields):
        square_of_sum = ops.square(ops.sum(fields, axis=1))
        sum_of_squares = ops.sum(ops.square(fields), axis=1)
        return 0.5 * ops.sum(square_of_sum - sum_of_squares, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="recpipe")
class OuterProduct(keras.layers.Layer):
    """PNN's outer-product signal with sum pooling (Qu et al. 2016, OPNN): p = f_S f_S^T, [B, F, d] -> [B, d * d].

    ``f_S`` is the sum of the field vectors; the pairwise outer products summed over all pairs equal this
    one outer product, which costs d^2 instead of F^2 d^2.
    """

    def call(self, fields):
        pooled = ops.sum(fields, axis=1)
        outer = ops.einsum("bi,bj->bij", pooled, pooled)
        return ops.reshape(outer, (-1, pooled.shape[-1] * pooled.shape[-1]))


@keras.saving.register_keras_serializable(package="recpipe")
class ResidualBlock(keras.layers.Layer):
    """``relu(x + BN(W2 relu(BN(W1 x))))``: a residual MLP block; ``batch_norm=False`` drops both BatchNorms.

    Args:
        units: width of the block (its input must have this width).
        batch_norm: whether to normalise after each dense layer.
        dropout: dropout after the block.
    """

    def __init__(self, units: int, batch_norm: bool = True, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if units <= 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`units` should be positive and `dropout` in [0, 1). Received: units={units}, dropout={dropout}")
        self.units = units
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.dense_1 = keras.layers.Dense(units, use_bias=not batch_norm, name="dense_1")
        self.dense_2 = keras.layers.Dense(units, use_bias=not batch_norm, name="dense_2")
        self.norm_1 = keras.layers.BatchNormalization(name="bn_1") if batch_norm else None
        self.norm_2 = keras.layers.BatchNormalization(name="bn_2") if batch_norm else None
        self.drop = keras.layers.Dropout(dropout)

    def call(self, x, training=None):
        h = self.dense_1(x)
        if self.norm_1 is not None:
            h = self.norm_1(h, training=training)
        h = self.dense_2(ops.relu(h))
        if self.norm_2 is not None:
            h = self.norm_2(h, training=training)
        return self.drop(ops.relu(x + h), training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "batch_norm": self.batch_norm, "dropout": self.dropout}
