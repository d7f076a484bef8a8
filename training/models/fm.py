"""Factorization machine (Rendle 2010): a linear model plus every pair of fields' latent-vector product.

Trained on its own first in the FNN recipe, whose network starts from its field vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from training.layers.ctr import FieldEmbedding, FMInteraction, WideLinear
from training.models.ctr import ClickModel


@keras.saving.register_keras_serializable(package="recpipe")
class FactorizationMachine(ClickModel):
    """logit = bias + sum_i w_i x_i + sum_{i<j} <v_i, v_j>: linear in every feature, pairs of categorical fields.

    Numeric features enter the linear part only, as in DeepCTR: pairwise products of ~40 correlated
    counts add noise, not signal.

    Args:
        features: feature specs (dicts with ``name``, ``kind``, ``vocab_size``).
        embedding_dim: size of the latent vectors v.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
    """

    def __init__(self, features: Sequence[dict], embedding_dim: int, oov_buckets: int = 1, **kwargs) -> None:
        super().__init__(features, embedding_dim, oov_buckets, **kwargs)
        self.linear = WideLinear(self.features, oov_buckets=oov_buckets, **self.embedding_options, name="linear")
        self.fields = FieldEmbedding(self.categorical, embedding_dim, oov_buckets, **self.embedding_options, name="fields")
        self.fm = FMInteraction(name="fm")

    def logit(self, inputs, raw, training=None):
        return self.linear(inputs) + self.fm(self.fields(inputs))
