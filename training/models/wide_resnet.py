"""Wide&ResNet: the Wide&Deep wide part with a deep part of residual MLP blocks, BatchNorm switchable for the ablation."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from training.layers.ctr import ResidualBlock
from training.models.ctr import ClickModel, WidePart


@keras.saving.register_keras_serializable(package="recpipe")
class WideResNet(WidePart, ClickModel):
    """logit = wide(ids, crosses) + Dense(ResBlock^n(Dense_width(embeddings, numeric values))).

    Args:
        features: feature specs.
        crosses: pairs of categorical feature names crossed in the wide part.
        cross_bins: size of the id space of each crossed feature.
        embedding_dim: embedding size of every categorical feature in the deep part.
        width: width of the residual blocks.
        blocks: number of residual blocks.
        batch_norm: BatchNorm inside each block (False: the ablation).
        dropout: dropout after each block.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
    """

    def __init__(
        self,
        features: Sequence[dict],
        crosses: Sequence[Sequence[str]],
        cross_bins: int,
        embedding_dim: int,
        width: int,
        blocks: int,
        batch_norm: bool = True,
        dropout: float = 0.0,
        oov_buckets: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(features, embedding_dim, oov_buckets, **kwargs)
        if width <= 0 or blocks <= 0:
            raise ValueError(f"`width` and `blocks` should be positive. Received: width={width}, blocks={blocks}")
        self.width = width
        self.blocks = blocks
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.add_wide_part(crosses, cross_bins)
        self.stem = keras.layers.Dense(width, activation="relu", name="stem")
        self.res = [ResidualBlock(width, batch_norm, dropout, name=f"res_{i}") for i in range(blocks)]
        self.deep_out = keras.layers.Dense(1, name="deep_logit")

    def deep_logit(self, x, raw, training=None):
        h = self.stem(x)
        for block in self.res:
            h = block(h, training=training)
        return self.deep_out(h)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "width": self.width,
            "blocks": self.blocks,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout,
        }
