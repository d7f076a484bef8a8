"""FNN (Zhang et al. 2016): an MLP over field vectors initialised from a trained factorization machine."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from training.layers.blocks import MLP
from training.layers.ctr import FieldEmbedding, numeric_value
from training.models.ctr import ClickModel
from training.models.fm import FactorizationMachine


@keras.saving.register_keras_serializable(package="recpipe")
class FNN(ClickModel):
    """Each categorical field is ``(w_i, v_i)``, the FM's linear weight and latent vector; their concatenation
    and the numeric features' values feed an MLP.

    Without ``init_from_fm`` the field vectors start random: the plain DNN of the published baselines.

    Args:
        features: feature specs.
        embedding_dim: size of each field's latent vector (the FM's).
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
        self.weights_1 = FieldEmbedding(self.categorical, 1, oov_buckets, self.embedding_l2, name="field_weights")
        self.fields = FieldEmbedding(self.categorical, embedding_dim, oov_buckets, self.embedding_l2, name="fields")
        self.mlp = MLP(self.hidden_units, dropout, name="mlp")
        self.out = keras.layers.Dense(1, name="logit")

    def init_from_fm(self, fm: FactorizationMachine) -> None:
        """Copy a trained FM's linear weights and latent vectors into the field vectors (same features and sizes)."""
        if fm.features != self.features or fm.embedding_dim != self.embedding_dim or fm.oov_buckets != self.oov_buckets:
            raise ValueError(
                "The FM should have the FNN's features, embedding_dim and oov_buckets. Received: "
                f"embedding_dim={fm.embedding_dim} (expected {self.embedding_dim}), oov_buckets={fm.oov_buckets} "
                f"(expected {self.oov_buckets}), same features: {fm.features == self.features}"
            )
        if not fm.built:
            raise ValueError("The FM is not built: fit or call it before initialising the FNN from it.")
        if not self.built:
            self(self.example_inputs())
        self.numeric_mean.assign(fm.numeric_mean)
        self.numeric_std.assign(fm.numeric_std)
        self.weights_1.set_weights([fm.linear.linear.tables[f["name"]].get_weights()[0] for f in self.categorical])
        self.fields.set_weights(fm.fields.get_weights())

    def logit(self, inputs, raw, training=None):
        z = ops.concatenate([self.weights_1(inputs), self.fields(inputs)], axis=-1)
        flat = [ops.reshape(z, (-1, len(self.categorical) * (self.embedding_dim + 1)))]
        flat += [ops.cast(numeric_value(inputs[name]), z.dtype) for name in self.numeric]
        return self.out(self.mlp(ops.concatenate(flat, axis=-1), training=training))

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_units": self.hidden_units, "dropout": self.dropout}
