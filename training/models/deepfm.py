"""DeepFM (Guo et al. 2017): a factorization machine and an MLP over the same field embeddings, summed."""

from __future__ import annotations

import keras

from training.layers.ctr import FMInteraction, WideLinear
from training.models.ctr import DeepClickModel


@keras.saving.register_keras_serializable(package="recpipe")
class DeepFM(DeepClickModel):
    """logit = linear + FM(fields) + MLP(fields, numeric values); the categorical field vectors are shared,
    no pre-training. Numeric features enter the linear part and the MLP, not the FM (as in DeepCTR).

    Takes the arguments of ``DeepClickModel``; ``embedding_dim`` is the size of each field vector.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.linear = WideLinear(self.features, oov_buckets=self.oov_buckets, **self.embedding_options, name="linear")
        self.fields = self.categorical_embedding("fields")
        self.fm = FMInteraction(name="fm")

    def logit(self, inputs, raw, training=None):
        fields = self.fields(inputs)
        deep = self.head(self.dense_input(fields, inputs), training=training)
        return self.linear(inputs) + self.fm(fields) + deep
