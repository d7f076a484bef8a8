"""Wide&Deep (Cheng et al. 2016): a linear model on one-hot and crossed ids plus an MLP on embeddings, trained jointly."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from training.layers.ctr import WideLinear
from training.models.ctr import DeepClickModel


@keras.saving.register_keras_serializable(package="recpipe")
class WideDeep(DeepClickModel):
    """Click probability from a dict of feature tensors.

    Args:
        features: feature specs as dicts (``name``, ``kind``, ``vocab_size``), from the contract.
        crosses: pairs of categorical feature names crossed in the wide part.
        cross_bins: size of the id space of each crossed feature.
        embedding_dim: embedding size of every categorical feature in the deep part.
        hidden_units: layer sizes of the deep MLP.
        dropout: dropout rate of the deep MLP.
        oov_buckets: out-of-vocabulary rows of each categorical feature.
    """

    def __init__(
        self,
        features: Sequence[dict],
        crosses: Sequence[Sequence[str]],
        cross_bins: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        dropout: float = 0.0,
        oov_buckets: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(features, embedding_dim, hidden_units, dropout, oov_buckets, **kwargs)
        self.crosses = [list(c) for c in crosses]
        self.cross_bins = cross_bins
        self.wide = WideLinear(self.features, self.crosses, cross_bins, oov_buckets, self.embedding_l2, name="wide")
        self.deep_embedding = self.categorical_embedding()

    def extra_inputs(self, raw) -> tuple[list, list]:
        """(wide logits [B, 1], deep inputs [B, k]) that subclasses add from the features as fed; none here."""
        return [], []

    def logit(self, inputs, raw, training=None):
        extra_wide, extra_deep = self.extra_inputs(raw)
        deep = keras.ops.concatenate([self.dense_input(self.deep_embedding(inputs), inputs), *extra_deep], axis=-1)
        logit = self.wide(inputs) + self.head(deep, training=training)
        for term in extra_wide:
            logit = logit + term
        return logit

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "crosses": self.crosses,
            "cross_bins": self.cross_bins,
        }
