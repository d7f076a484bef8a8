"""YouTube DNN recall: a user tower over history, profile and context, trained with a sampled softmax."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import keras_rs
import numpy as np
from keras import ops

from recpipe import contracts
from training.layers.blocks import MLP, CategoricalEmbedding, MaskedMeanPooling, check_positive, sampling_probs

# Profile and context fields of the user tower (the request's city is ``city_id``).
USER_FIELDS = ("user_city", "user_type", "device", "hour", "weekday", "city_id")


def user_vocab(n_cities: int) -> tuple[int, ...]:
    """Vocabulary sizes of ``USER_FIELDS``, in order."""
    return (n_cities, len(contracts.USER_TYPES), len(contracts.DEVICES), 24, 7, n_cities)


def weighted_mean(loss, x: dict, sample_weight=None, extra_losses=()):
    """Mean over the batch of ``loss`` [B] times the example weight, plus the layers' own losses.

    The weight is ``sample_weight`` when given, else ``x["weight"]`` when present, else 1.
    """
    weight = sample_weight if sample_weight is not None else x.get("weight")
    if weight is not None:
        loss = loss * ops.reshape(ops.cast(weight, loss.dtype), ops.shape(loss))
    total = ops.mean(loss)
    total = total + ops.sum(extra_losses) if extra_losses else total
    return replica_share(total)


def replica_share(loss):
    """``loss`` / the number of data-parallel replicas: each replica's mean, summed across replicas, is the global mean.

    Keras's own losses do this inside ``compute_loss``; a model that overrides ``compute_loss`` must do it
    itself, or MirroredStrategy sums the replicas' gradients into N times the step.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            return loss / replicas
    return loss


@keras.saving.register_keras_serializable(package="recpipe")
class YouTubeDNN(keras.Model):
    """Covington et al. 2016: next-item softmax over all items, approximated by sampled negatives.

    ``call`` takes ``history`` [B, L] (-1 pads) and the ``USER_FIELDS`` [B] and returns the user vector
    [B, embedding_dim + 1]: the tower output with a constant 1 appended. ``item_vectors()`` is the softmax
    table with each item's bias appended, so their inner product is exactly the trained logit and FAISS
    inner-product search ranks like the full softmax. Neither is L2-normalised: the softmax is trained on
    raw dot products plus bias, and normalising would change the ranking.

    Training (``compute_loss``) also needs ``item_id`` (the positive) and ``item_prob`` (its sampling
    probability q); the example weight is ``sample_weight`` if given, else ``inputs["weight"]``.

    Args:
        n_items, n_cities, n_categories: vocabulary sizes (``n_categories`` is validated only, so both
            recall models share one constructor: this softmax has no item-side features).
        embedding_dim: size of every embedding and of the user and item vectors (before the bias slot).
        hidden_units: MLP layer sizes of the user tower.
        num_negatives: item ids sampled per batch from ``neg_prob`` (shared by all rows).
        neg_prob: [n_items] sampling distribution (e.g. popularity ** 0.75, normalised here to sum 1);
            uniform when None. Kept in a non-trainable weight, so it is saved with the model, not in the config.
        dropout: dropout rate of the MLP.
        seed: seed of the negative sampler.
    """

    def __init__(
        self,
        n_items: int,
        n_cities: int,
        n_categories: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        num_negatives: int = 100,
        neg_prob: np.ndarray | None = None,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_positive(
            n_items=n_items,
            n_cities=n_cities,
            n_categories=n_categories,
            embedding_dim=embedding_dim,
            num_negatives=num_negatives,
            hidden_units=list(hidden_units),
        )
        self.n_items, self.n_cities, self.n_categories = n_items, n_cities, n_categories
        self.embedding_dim, self.hidden_units, self.num_negatives = embedding_dim, list(hidden_units), num_negatives
        self.dropout, self.seed = dropout, seed
        d = embedding_dim
        self.history_embedding = CategoricalEmbedding(n_items, d, name="history_embedding")
        self.field_embeddings = {
            f: CategoricalEmbedding(n, d, name=f"{f}_embedding") for f, n in zip(USER_FIELDS, user_vocab(n_cities), strict=True)
        }
        self.pool = MaskedMeanPooling(name="history_pool")
        self.mlp = MLP(self.hidden_units, dropout, name="user_mlp")
        self.user_projection = keras.layers.Dense(d, name="user_projection")
        self.item_table = self.add_weight(shape=(n_items, d), initializer="glorot_uniform", name="item_table")
        self.item_bias = self.add_weight(shape=(n_items,), initializer="zeros", name="item_bias")
        self.neg_prob = self.add_weight(shape=(n_items,), initializer="ones", trainable=False, name="neg_prob")
        self.set_neg_prob(np.full(n_items, 1.0 / n_items) if neg_prob is None else neg_prob)
        self.sampler = keras.random.SeedGenerator(seed, name="negative_sampler")
        self.correction = keras_rs.layers.SamplingProbabilityCorrection(name="logq", dtype="float32")

    def set_neg_prob(self, neg_prob: np.ndarray) -> None:
        """Replace the negative sampling distribution ([n_items], non-negative, normalised to sum 1)."""
        self.neg_prob.assign(sampling_probs(neg_prob, self.n_items))

    def call(self, inputs, training=None):
        history = ops.cast(inputs["history"], "int32")
        pooled = self.pool(self.history_embedding(history), history >= 0)
        fields = [pooled] + [self.field_embeddings[f](inputs[f]) for f in USER_FIELDS]
        user = self.user_projection(self.mlp(ops.concatenate(fields, axis=-1), training=training))
        user = ops.cast(user, "float32")  # the sampled softmax and FAISS need float32 under mixed precision
        return ops.concatenate([user, ops.ones_like(user[:, :1])], axis=-1)

    def _item_rows(self, ids):
        return ops.take(ops.concatenate([self.item_table, ops.expand_dims(self.item_bias, -1)], axis=-1), ids, axis=0)

    def sampled_softmax_loss(self, users, item_ids, item_prob, negatives):
        """Per-row loss of the positive against ``negatives`` [N], logQ-corrected, accidental hits removed."""
        item_ids, negatives = ops.cast(item_ids, "int32"), ops.cast(negatives, "int32")
        pos = ops.sum(users * self._item_rows(item_ids), axis=-1, keepdims=True)
        neg = ops.matmul(users, ops.transpose(self._item_rows(negatives)))
        logits = ops.concatenate([pos, neg], axis=-1)
        neg_q = ops.broadcast_to(ops.take(self.neg_prob, negatives)[None, :], ops.shape(neg))
        logits = self.correction(logits, ops.concatenate([ops.cast(item_prob, "float32")[:, None], neg_q], axis=-1))
        hit = ops.concatenate([ops.zeros_like(pos, "bool"), negatives[None, :] == item_ids[:, None]], axis=-1)
        logits = ops.where(hit, -1e9, logits)  # keras_rs RemoveAccidentalHits 0.4.0 leaves logits unchanged
        return ops.logsumexp(logits, axis=-1) - logits[:, 0]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = ops.expand_dims(ops.log(self.neg_prob), 0)
        negatives = keras.random.categorical(logits, self.num_negatives, seed=self.sampler)[0]
        loss = self.sampled_softmax_loss(y_pred, x["item_id"], x["item_prob"], negatives)
        return weighted_mean(loss, x, sample_weight, self.losses)

    def user_vectors(self, inputs: dict, batch_size: int = 1024) -> np.ndarray:
        """User vectors [B, embedding_dim + 1] (last coordinate 1), not normalised: see the class docstring."""
        return np.asarray(self.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """Item vectors [n_items, embedding_dim + 1]: softmax weights with the bias last, not normalised."""
        return np.asarray(ops.convert_to_numpy(self._item_rows(ops.arange(self.n_items))), dtype=np.float32)

    def get_config(self) -> dict:
        keys = ("n_items", "n_cities", "n_categories", "embedding_dim", "hidden_units", "num_negatives", "dropout", "seed")
        return {**super().get_config(), **{k: getattr(self, k) for k in keys}}
