"""PNN (Qu et al. 2016): field embeddings and their pairwise products feed an MLP; inner (IPNN) or outer (OPNN)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import keras_rs
from keras import ops

from training.layers.ctr import OuterProduct
from training.models.ctr import DeepClickModel

PRODUCTS = ("inner", "outer")


@keras.saving.register_keras_serializable(package="recpipe")
class PNN(DeepClickModel):
    """The product layer: ``z`` (the categorical field vectors, and the numeric values) beside ``p`` (every
    pair of categorical fields' inner product, or their sum-pooled outer product), then an MLP.

    Args:
        features: feature specs.
        embedding_dim: size of each field vector.
        hidden_units: MLP layer sizes.
        product: ``"inner"`` (keras-rs ``DotInteraction``, F(F-1)/2 values) or ``"outer"`` (d*d values).
        dropout: MLP dropout.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
    """

    def __init__(
        self,
        features: Sequence[dict],
        embedding_dim: int,
        hidden_units: Sequence[int],
        product: str = "inner",
        dropout: float = 0.0,
        oov_buckets: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(features, embedding_dim, hidden_units, dropout, oov_buckets, **kwargs)
        if product not in PRODUCTS:
            raise ValueError(f"`product` should be one of {PRODUCTS}. Received: product={product!r}")
        self.product = product
        self.fields = self.categorical_embedding("fields")
        self.products = keras_rs.layers.DotInteraction(name="inner") if product == "inner" else OuterProduct(name="outer")

    def logit(self, inputs, raw, training=None):
        fields = self.fields(inputs)
        if self.product == "inner":
            p = self.products([fields[:, i, :] for i in range(len(self.categorical))])
        else:
            p = self.products(fields)
        z = self.dense_input(fields, inputs)
        return self.head(ops.concatenate([z, ops.cast(p, z.dtype)], axis=-1), training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "product": self.product}
