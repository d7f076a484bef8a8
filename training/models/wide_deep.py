"""Wide&Deep (Cheng et al. 2016): a linear model on one-hot and crossed ids plus an MLP on embeddings, trained jointly."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from training.models.ctr import DeepClickModel, WidePart


@keras.saving.register_keras_serializable(package="recpipe")
class WideDeep(WidePart, DeepClickModel):
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
        self.add_wide_part(crosses, cross_bins)

    def extra_inputs(self, raw) -> tuple[list, list]:
        """(wide logits [B, 1], deep inputs [B, k]) that subclasses add from the features as fed; none here."""
        return [], []

    def deep_logit(self, x, raw, training=None):
        """The MLP's logit of ``x`` and the extra deep inputs, plus the extra wide logits."""
        extra_wide, extra_deep = self.extra_inputs(raw)
        logit = self.head(keras.ops.concatenate([x, *extra_deep], axis=-1), training=training)
        for term in extra_wide:
            logit = logit + term
        return logit
