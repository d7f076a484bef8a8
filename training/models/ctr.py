"""The base of every ranking (click) model: feature specs in, click probability out."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from training.layers.blocks import MLP
from training.layers.ctr import FieldEmbedding, WideLinear, check_features, log_count, numeric_value


@keras.saving.register_keras_serializable(package="recpipe")
class ClickModel(keras.Model, metaclass=abc.ABCMeta):
    """Click probability [B] from a dict of feature tensors; subclasses define ``logit`` [B, 1].

    ``logit`` is abstract: a subclass without one fails at construction with a ``TypeError`` naming it.

    Args:
        features: feature specs as dicts (``name``, ``kind``, ``vocab_size``), from the contract.
        embedding_dim: size of every categorical feature's (or field's) embedding.
        oov_buckets: hashed out-of-vocabulary rows of each categorical feature: ids newer than the model
            (a warm-started model keeps its vocabulary) share them instead of failing.
        embedding_l2: L2 penalty of every embedding table and wide weight; id features with thousands of
            values overfit within an epoch without it.
        embedding_l2_scope: ``"table"`` (the whole table at every step, as FuxiCTR) or ``"batch"`` (the rows
            each batch looks up); see ``CategoricalEmbedding``.
        embedding_init_stddev: tables start normal with this deviation; ``None`` keeps Keras's uniform +-0.05.
    """

    def __init__(
        self,
        features: Sequence[dict],
        embedding_dim: int,
        oov_buckets: int = 1,
        embedding_l2: float = 0.0,
        embedding_l2_scope: str = "table",
        embedding_init_stddev: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if embedding_dim <= 0 or embedding_l2 < 0:
            raise ValueError(
                "`embedding_dim` should be positive and `embedding_l2` non-negative. "
                f"Received: embedding_dim={embedding_dim}, embedding_l2={embedding_l2}"
            )
        self.embedding_l2 = embedding_l2
        self.embedding_l2_scope = embedding_l2_scope
        self.embedding_init_stddev = embedding_init_stddev
        # How every table of the model is regularised and initialised (``CategoricalEmbedding``'s arguments).
        self.embedding_options = {"l2": embedding_l2, "l2_scope": embedding_l2_scope, "init_stddev": embedding_init_stddev}
        self.features = check_features(features)
        self.embedding_dim = embedding_dim
        self.oov_buckets = oov_buckets
        self.categorical = [f for f in self.features if f["kind"] == "categorical"]
        self.numeric = [f["name"] for f in self.features if f["kind"] == "numeric"]
        # Standardisation of log1p(numeric) with the training set's statistics (identity until set).
        width = max(len(self.numeric), 1)
        stats = {"shape": (width,), "trainable": False, "autocast": False}
        self.numeric_mean = self.add_weight(initializer="zeros", name="numeric_mean", **stats)
        self.numeric_std = self.add_weight(initializer="ones", name="numeric_std", **stats)
        # Features reach ``call`` as fed (float32), not cast to a mixed policy's float16: the GBDT's trees
        # compare raw values with float32 thresholds, and a rate such as 0.1234 has no exact float16.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True  # a dict of NumPy arrays, then, reaches ``call`` as is

    def set_numeric_stats(self, features: dict[str, np.ndarray]) -> None:
        """Standardise each numeric feature's ``log1p(max(x, 0))`` with its mean and deviation over ``features``."""
        if not self.numeric:
            return
        missing = sorted(set(self.numeric) - set(features))
        if missing:
            raise ValueError(f"`features` lacks numeric features {missing}. Received: {sorted(features)}")
        values = np.stack([np.log1p(np.maximum(np.asarray(features[n], np.float64), 0.0)) for n in self.numeric], axis=1)
        std = values.std(axis=0)
        self.numeric_mean.assign(values.mean(axis=0).astype(np.float32))
        self.numeric_std.assign(np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def standardize(self, inputs) -> dict:
        """``inputs`` with each numeric feature replaced by its standardised log count [B]."""
        out = dict(inputs)
        for k, name in enumerate(self.numeric):
            out[name] = (log_count(inputs[name]) - self.numeric_mean[k]) / self.numeric_std[k]
        return out

    def categorical_embedding(self, name: str = "deep_embedding") -> FieldEmbedding:
        """A field embedding of the categorical features only (the deep input of Wide&Deep-style models)."""
        return FieldEmbedding(self.categorical, self.embedding_dim, self.oov_buckets, **self.embedding_options, name=name)

    def dense_input(self, fields, inputs):
        """The flattened categorical field vectors [B, C, d] next to the numeric features' values: [B, C * d + N]."""
        parts = [ops.reshape(fields, (-1, len(self.categorical) * self.embedding_dim))]
        parts += [ops.cast(numeric_value(inputs[name]), fields.dtype) for name in self.numeric]
        return ops.concatenate(parts, axis=-1)

    def example_inputs(self, rows: int = 1) -> dict[str, np.ndarray]:
        """Zeros of each feature's dtype (int32 ids, float32 values): enough to build the model."""
        return {f["name"]: np.zeros(rows, np.int32 if f["kind"] == "categorical" else np.float32) for f in self.features}

    def get_build_config(self) -> dict:
        return {"example_rows": 1}

    def build_from_config(self, config: dict) -> None:
        """Build on example inputs (how Keras rebuilds a loaded model before it sets the weights)."""
        self(self.example_inputs(config.get("example_rows", 1)))

    @abc.abstractmethod
    def logit(self, inputs, raw, training=None):
        """[B, 1] logits from the standardised ``inputs``; ``raw`` holds the features as fed."""

    def call(self, inputs, training=None):
        logits = self.logit(self.standardize(inputs), inputs, training=training)
        # float32 whatever the dtype policy: a float16 sigmoid rounds small click probabilities to 0.
        return ops.sigmoid(ops.squeeze(ops.cast(logits, "float32"), axis=-1))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "features": self.features,
            "embedding_dim": self.embedding_dim,
            "oov_buckets": self.oov_buckets,
            "embedding_l2": self.embedding_l2,
            "embedding_l2_scope": self.embedding_l2_scope,
            "embedding_init_stddev": self.embedding_init_stddev,
        }


@keras.saving.register_keras_serializable(package="recpipe")
class DeepClickModel(ClickModel):
    """A ``ClickModel`` whose deep part ends in an MLP and a one-unit logit layer (``head``).

    Args:
        features: feature specs.
        embedding_dim: size of every categorical feature's (or field's) embedding.
        hidden_units: MLP layer sizes.
        dropout: MLP dropout.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
        batch_norm: batch normalisation in each MLP layer (before its ReLU).
    """

    def __init__(
        self,
        features: Sequence[dict],
        embedding_dim: int,
        hidden_units: Sequence[int],
        dropout: float = 0.0,
        oov_buckets: int = 1,
        batch_norm: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(features, embedding_dim, oov_buckets, **kwargs)
        self.hidden_units = list(hidden_units)
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.mlp = MLP(self.hidden_units, dropout, batch_norm, name="mlp")
        self.mlp_logit = keras.layers.Dense(1, name="mlp_logit")

    def head(self, x, training=None):
        """The MLP's logit [B, 1] of its input [B, k]."""
        return self.mlp_logit(self.mlp(x, training=training))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
        }


class WidePart(abc.ABC):
    """Mixin of a ``ClickModel`` (listed before it): the Wide&Deep wide part beside a deep part on embeddings.

    logit = wide(ids, crossed ids, numeric values) + ``deep_logit``(embedded categorical and numeric features).
    A subclass calls ``add_wide_part`` in its constructor and defines ``deep_logit``.
    """

    def add_wide_part(self, crosses: Sequence[Sequence[str]], cross_bins: int) -> None:
        """Add the wide part (``crosses``: pairs of categorical features, ``cross_bins`` ids each) and the deep embedding."""
        self.crosses = [list(c) for c in crosses]
        self.cross_bins = cross_bins
        self.wide = WideLinear(self.features, self.crosses, cross_bins, self.oov_buckets, **self.embedding_options, name="wide")
        self.deep_embedding = self.categorical_embedding()

    @abc.abstractmethod
    def deep_logit(self, x, raw, training=None):
        """The logit [B, 1] added to the wide part's, from the deep input ``x`` [B, C * d + N] and ``raw`` as fed."""

    def logit(self, inputs, raw, training=None):
        deep = self.deep_logit(self.dense_input(self.deep_embedding(inputs), inputs), raw, training=training)
        return self.wide(inputs) + deep

    def get_config(self) -> dict:
        return {**super().get_config(), "crosses": self.crosses, "cross_bins": self.cross_bins}
