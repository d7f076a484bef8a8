"""Wide&Deep: a linear model on one-hot and crossed ids plus an MLP on embeddings, trained jointly."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from training.layers.blocks import MLP, CategoricalEmbedding


@keras.saving.register_keras_serializable(package="recpipe")
class WideDeep(keras.Model):
    """Click probability from a dict of feature tensors.

    Args:
        features: feature specs as dicts (``name``, ``kind``, ``vocab_size``), from the contract.
        crosses: pairs of categorical feature names crossed in the wide part.
        cross_bins: size of the id space of each crossed feature.
        embedding_dim: embedding size of every categorical feature in the deep part.
        hidden_units: layer sizes of the deep MLP.
        dropout: dropout rate of the deep MLP.
    """

    def __init__(
        self,
        features: Sequence[dict],
        crosses: Sequence[Sequence[str]],
        cross_bins: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.features = [dict(f) for f in features]
        self.crosses = [list(c) for c in crosses]
        self.cross_bins = cross_bins
        self.embedding_dim = embedding_dim
        self.hidden_units = list(hidden_units)
        self.dropout = dropout
        self.categorical = [f for f in self.features if f["kind"] == "categorical"]
        self.numeric = [f["name"] for f in self.features if f["kind"] == "numeric"]
        vocab = {f["name"]: f["vocab_size"] for f in self.categorical}
        unknown = [n for pair in self.crosses for n in pair if n not in vocab]
        if unknown:
            raise ValueError(f"`crosses` name features that are not categorical: {unknown}. Categorical: {sorted(vocab)}")
        self.wide_ids = {f["name"]: CategoricalEmbedding(f["vocab_size"], 1, name=f"wide_{f['name']}") for f in self.categorical}
        self.wide_crosses = [CategoricalEmbedding(cross_bins, 1, name=f"wide_{a}_x_{b}") for a, b in self.crosses]
        self.deep_ids = {
            f["name"]: CategoricalEmbedding(f["vocab_size"], embedding_dim, name=f"deep_{f['name']}") for f in self.categorical
        }
        self.mlp = MLP(self.hidden_units, dropout, name="deep_mlp")
        self.deep_out = keras.layers.Dense(1, name="deep_logit")
        self.bias = keras.layers.Dense(1, name="wide_bias")  # applied to a constant 1

    def _cross(self, a, b, vocab_b: int):
        return ops.mod(ops.cast(a, "int32") * vocab_b + ops.cast(b, "int32"), self.cross_bins)

    def call(self, inputs, training=None):
        vocab = {f["name"]: f["vocab_size"] for f in self.categorical}
        wide = [self.wide_ids[f["name"]](inputs[f["name"]]) for f in self.categorical]
        for (a, b), layer in zip(self.crosses, self.wide_crosses, strict=True):
            wide.append(layer(self._cross(inputs[a], inputs[b], vocab[b])))
        one = ops.ones_like(ops.cast(ops.expand_dims(inputs[self.categorical[0]["name"]], -1), "float32"))
        wide_logit = ops.sum(ops.concatenate(wide, axis=-1), axis=-1, keepdims=True) + self.bias(one)
        deep_in = [self.deep_ids[f["name"]](inputs[f["name"]]) for f in self.categorical]
        deep_in += [ops.log1p(ops.maximum(ops.expand_dims(ops.cast(inputs[n], "float32"), -1), 0.0)) for n in self.numeric]
        deep_logit = self.deep_out(self.mlp(ops.concatenate(deep_in, axis=-1), training=training))
        return ops.sigmoid(ops.squeeze(wide_logit + deep_logit, axis=-1))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "features": self.features,
            "crosses": self.crosses,
            "cross_bins": self.cross_bins,
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
        }
