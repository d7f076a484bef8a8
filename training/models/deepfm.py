"""DeepFM (Guo et al. 2017): a factorization machine and an MLP over the same field embeddings, summed."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from training.layers.blocks import MLP
from training.layers.ctr import FMInteraction, WideLinear
from training.models.ctr import ClickModel


@keras.saving.register_keras_serializable(package="recpipe")
class DeepFM(ClickModel):
    """logit = linear + FM(fields) + MLP(fields, numeric values); the categorical field vectors are shared,
    no pre-training. Numeric features enter the linear part and the MLP, not the FM (as in DeepCTR).

    Args:
        features: feature specs.
        embedding_dim: size of each field vector.
        hidden_units: MLP layer sizes.
        dropout: MLP dropout.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
    """

    def __init__(
        self,
        features: Sequence[dict],
        embedding_dim: int,
        hidden_units: Sequence[int],
        dropout: float = 0.0,
        oov_buckets: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(features, embedding_dim, oov_buckets, **kwargs)
        self.hidden_units = list(hidden_units)
        self.dropout = dropout
        self.linear = WideLinear(self.features, oov_buckets=oov_buckets, l2=self.embedding_l2, name="linear")
        self.fields = self.categorical_embedding("fields")
        self.fm = FMInteraction(name="fm")
        self.mlp = MLP(self.hidden_units, dropout, name="mlp")
        self.out = keras.layers.Dense(1, name="deep_logit")

    def logit(self, inputs, raw, training=None):
        fields = self.fields(inputs)
        deep = self.out(self.mlp(self.dense_input(fields, inputs), training=training))
        return self.linear(inputs) + self.fm(fields) + deep

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_units": self.hidden_units, "dropout": self.dropout}
