"""FNN (Zhang et al. 2016): an MLP over field vectors initialised from a trained factorization machine."""

from __future__ import annotations

import keras
from keras import ops

from training.layers.ctr import FieldEmbedding, numeric_value
from training.models.ctr import DeepClickModel
from training.models.fm import FactorizationMachine


@keras.saving.register_keras_serializable(package="recpipe")
class FNN(DeepClickModel):
    """Each categorical field is ``(w_i, v_i)``, the FM's linear weight and latent vector; their concatenation
    and the numeric features' values feed an MLP.

    Without ``init_from_fm`` the field vectors start random: the plain DNN of the published baselines.

    Takes the arguments of ``DeepClickModel``; ``embedding_dim`` is the size of each field's latent vector
    (the FM's).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.weights_1 = FieldEmbedding(self.categorical, 1, self.oov_buckets, **self.embedding_options, name="field_weights")
        self.fields = self.categorical_embedding("fields")

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
        return self.head(ops.concatenate(flat, axis=-1), training=training)
