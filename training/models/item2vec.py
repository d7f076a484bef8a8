"""Item2Vec over session click sequences: skip-gram with the Spark-made negatives, or CBOW with sampled ones."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from training.layers.blocks import MaskedMeanPooling, check_positive, sampling_probs
from training.models.youtube_dnn import weighted_mean


def _init(embedding_dim: int) -> keras.initializers.Initializer:
    return keras.initializers.RandomUniform(-0.5 / embedding_dim, 0.5 / embedding_dim)


def _unit_rows(embedding: keras.layers.Embedding) -> np.ndarray:
    table = np.asarray(ops.convert_to_numpy(embedding.embeddings), dtype=np.float32)
    return table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)


@keras.saving.register_keras_serializable(package="recpipe")
class Item2Vec(keras.Model):
    """Scores (target, context) item pairs by the dot product of their two embeddings.

    Trained with binary cross-entropy on Spark-made positive pairs and sampled negatives; the target
    embedding table is the item vector table handed to indexing.
    """

    def __init__(self, n_items: int, embedding_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if n_items <= 0 or embedding_dim <= 0:
            raise ValueError(
                f"`n_items` and `embedding_dim` should be positive. Received: n_items={n_items}, embedding_dim={embedding_dim}"
            )
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        init = _init(embedding_dim)
        self.target_embedding = keras.layers.Embedding(
            n_items, embedding_dim, embeddings_initializer=init, name="target_embedding"
        )
        self.context_embedding = keras.layers.Embedding(
            n_items, embedding_dim, embeddings_initializer=init, name="context_embedding"
        )

    def call(self, inputs):
        target = self.target_embedding(ops.cast(inputs["target"], "int32"))
        context = self.context_embedding(ops.cast(inputs["context"], "int32"))
        return ops.sum(target * context, axis=-1)

    def item_vectors(self) -> np.ndarray:
        """The item vector table, L2-normalised (rows: item ids)."""
        return _unit_rows(self.target_embedding)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_items": self.n_items, "embedding_dim": self.embedding_dim}


@keras.saving.register_keras_serializable(package="recpipe")
class Item2VecCBOW(keras.Model):
    """CBOW (Mikolov et al. 2013): the mean of a click's context items' input embeddings predicts the click.

    ``call`` takes ``context`` [B, W] (item ids, -1 pads; ids outside the table are ignored too) and returns
    the context vector h [B, embedding_dim] in float32. ``compute_loss`` also needs ``target`` [B]: the loss of
    a row is ``-log σ(h·o_target) - Σ_n log σ(-h·o_n)`` over the output embeddings ``o`` of ``num_negatives``
    items drawn once per batch from ``neg_prob`` (negatives equal to the row's target are left out).

    Why these negatives: word2vec's own scheme, popularity^0.75 (the ``training/item_popularity`` table's
    ``neg_prob``, the global sampler of the skip-gram pairs), keeps both modes on the same objective, so
    their vectors compare. Drawn in the model, a target meets new negatives every epoch (the Spark ones are
    fixed for the night) and no skip-gram pair table has to be joined to CBOW rows it was not built for;
    one draw per batch makes the negative logits one matmul. No logQ correction: negative sampling
    deliberately learns against the smoothed popularity, as word2vec does (nor does it filter the rare
    draw of a context item), and skip-gram mode does not correct either.

    The input table (the one averaged) is the item vector table: a user's query is also a mean of it.

    Args:
        n_items: item vocabulary size.
        embedding_dim: size of the item vectors.
        num_negatives: items drawn per batch, shared by its rows.
        neg_prob: [n_items] sampling distribution (normalised here to sum 1); uniform when None. Kept in a
            non-trainable weight, so it is saved with the model, not in the config.
        seed: seed of the negative sampler.
    """

    def __init__(
        self,
        n_items: int,
        embedding_dim: int,
        num_negatives: int = 16,
        neg_prob: np.ndarray | None = None,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_positive(n_items=n_items, embedding_dim=embedding_dim, num_negatives=num_negatives)
        self.n_items, self.embedding_dim, self.num_negatives, self.seed = n_items, embedding_dim, num_negatives, seed
        init = _init(embedding_dim)
        self.input_embedding = keras.layers.Embedding(n_items, embedding_dim, embeddings_initializer=init, name="input_embedding")
        self.output_embedding = keras.layers.Embedding(
            n_items, embedding_dim, embeddings_initializer=init, name="output_embedding"
        )
        self.pool = MaskedMeanPooling(name="context_mean")
        self.neg_prob = self.add_weight(shape=(n_items,), initializer="ones", trainable=False, name="neg_prob", dtype="float32")
        self.set_neg_prob(np.ones(n_items) if neg_prob is None else neg_prob)
        self.sampler = keras.random.SeedGenerator(seed, name="negative_sampler")

    def set_neg_prob(self, neg_prob: np.ndarray) -> None:
        """Replace the negative sampling distribution ([n_items], non-negative, normalised to sum 1)."""
        self.neg_prob.assign(sampling_probs(neg_prob, self.n_items))

    def build(self, input_shape=None) -> None:
        # The output table is used by the loss only: built here so a loaded model has it to restore.
        self.input_embedding.build()
        self.output_embedding.build()
        super().build(input_shape)

    def call(self, inputs):
        context = ops.cast(inputs["context"], "int32")
        valid = ops.logical_and(context >= 0, context < self.n_items)
        vectors = self.input_embedding(ops.where(valid, context, 0))
        return ops.cast(self.pool(vectors, valid), "float32")  # float32 under mixed precision too

    def negative_sampling_loss(self, context_vectors, target, negatives):
        """Per-row loss of ``target`` [B] against the shared ``negatives`` [N], given the context vectors [B, d]."""
        target, negatives = ops.cast(target, "int32"), ops.cast(negatives, "int32")
        pos = ops.sum(context_vectors * ops.cast(self.output_embedding(target), "float32"), axis=-1)
        neg = ops.matmul(context_vectors, ops.transpose(ops.cast(self.output_embedding(negatives), "float32")))
        keep = ops.cast(negatives[None, :] != target[:, None], "float32")  # an accidental hit is no negative
        return -ops.log_sigmoid(pos) - ops.sum(keep * ops.log_sigmoid(-neg), axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = ops.expand_dims(ops.log(self.neg_prob), 0)
        negatives = keras.random.categorical(logits, self.num_negatives, seed=self.sampler)[0]
        return weighted_mean(self.negative_sampling_loss(y_pred, x["target"], negatives), x, sample_weight, self.losses)

    def item_vectors(self) -> np.ndarray:
        """The item vector table: the input embeddings, L2-normalised (rows: item ids)."""
        return _unit_rows(self.input_embedding)

    def get_config(self) -> dict:
        keys = ("n_items", "embedding_dim", "num_negatives", "seed")
        return {**super().get_config(), **{k: getattr(self, k) for k in keys}}
