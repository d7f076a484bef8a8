"""YouTube DNN recall: a user tower over history, profile and context, trained with a sampled softmax."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import keras_rs
import numpy as np
from keras import ops

from recpipe import contracts
from training.layers.blocks import MLP, CategoricalEmbedding, MaskedMeanPooling, check_positive, lookup, sampling_probs

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


def add_item_tables(model: keras.Model, n_items: int) -> None:
    """Give ``model`` two non-trainable int tables indexed by item id, ``item_city`` and ``item_category`` (-1: unset)."""
    int_table = {"dtype": "int32", "trainable": False, "initializer": keras.initializers.Constant(-1)}
    model.item_city = model.add_weight(shape=(n_items,), name="item_city", **int_table)
    model.item_category = model.add_weight(shape=(n_items,), name="item_category", **int_table)


def assign_item_tables(model: keras.Model, item_city: np.ndarray, item_category: np.ndarray) -> None:
    """Fill the tables of ``add_item_tables``: each item's city and category, by item id (-1 or out of range: unknown)."""
    for name, values in (("item_city", item_city), ("item_category", item_category)):
        v = np.asarray(values)
        if v.shape != (model.n_items,):
            raise ValueError(f"`{name}` should have shape ({model.n_items},). Received: shape={v.shape}")
        getattr(model, name).assign(v.astype(np.int32))


def check_item_tables(model: keras.Model) -> None:
    """Raise unless ``assign_item_tables`` has filled the model's item tables."""
    if not (ops.convert_to_numpy(model.item_city) >= 0).any():
        raise ValueError("The item tables are unset (every item_city is -1): call `set_item_tables` first.")


@keras.saving.register_keras_serializable(package="recpipe")
class YouTubeDNN(keras.Model):
    """Covington et al. 2016: next-item softmax over all items, approximated by sampled negatives.

    ``call`` takes ``history`` [B, L] (-1 pads) and the ``USER_FIELDS`` [B] and returns the user vectors;
    ``item_vectors()`` returns the softmax's item vectors, in the same space, so FAISS inner-product search
    ranks like the full softmax:

    - ``temperature=None`` (the paper's form): raw dot products plus a per-item bias. User vectors are
      [B, embedding_dim + 1], the tower output with a constant 1 appended; item vectors are the softmax
      table with each item's bias appended. Neither is normalised (that would change the ranking).
    - ``temperature > 0``: cosine / temperature. Both are L2-normalised [B, embedding_dim] and there is no
      bias. Bounded scores keep the popular items from dominating every list (coverage).

    Training (``compute_loss``) also needs ``item_id`` (the positive) and ``item_prob`` (its probability
    under ``neg_prob``); the example weight is ``sample_weight`` if given, else ``inputs["weight"]``.

    Args:
        n_items, n_cities, n_categories: vocabulary sizes.
        embedding_dim: size of every embedding and of the user and item vectors (before any bias slot).
        hidden_units: MLP layer sizes of the user tower.
        num_negatives: item ids sampled per batch from ``neg_prob`` (shared by all rows).
        neg_prob: [n_items] sampling distribution (e.g. popularity ** 0.75, normalised here to sum 1);
            uniform when None. Kept in a non-trainable weight, so it is saved with the model, not in the config.
        dropout: dropout rate of the MLP.
        seed: seed of the negative sampler.
        temperature: None for the biased dot product, else the softmax temperature of the cosine.
        in_batch_negatives: also score each row against the batch's other positives (mixed negative
            sampling); every logit is then corrected by the mixture of both proposals, with the in-batch
            one from ``set_batch_prob``.
        item_features: item vectors are the id's row plus its city's and category's embeddings, and the
            user tower also pools the categories of the history (call ``set_item_tables`` before training).
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
        temperature: float | None = None,
        in_batch_negatives: bool = False,
        item_features: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if temperature is not None and not temperature > 0:
            raise ValueError(f"`temperature` should be positive or None. Received: temperature={temperature}")
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
        self.temperature, self.in_batch_negatives, self.item_features = temperature, in_batch_negatives, item_features
        d = embedding_dim
        self.history_embedding = CategoricalEmbedding(n_items, d, name="history_embedding")
        self.field_embeddings = {
            f: CategoricalEmbedding(n, d, name=f"{f}_embedding") for f, n in zip(USER_FIELDS, user_vocab(n_cities), strict=True)
        }
        self.pool = MaskedMeanPooling(name="history_pool")
        self.mlp = MLP(self.hidden_units, dropout, name="user_mlp")
        self.user_projection = keras.layers.Dense(d, name="user_projection")
        self.item_table = self.add_weight(shape=(n_items, d), initializer="glorot_uniform", name="item_table")
        self.item_bias = None  # cosine scores have no bias
        if temperature is None:
            self.item_bias = self.add_weight(shape=(n_items,), initializer="zeros", name="item_bias")
        if item_features:
            add_item_tables(self, n_items)
            self.city_embedding = CategoricalEmbedding(n_cities, d, name="item_city_embedding")
            self.category_embedding = CategoricalEmbedding(n_categories, d, name="item_category_embedding")
            self.interests = MaskedMeanPooling(name="category_interests")
        self.neg_prob = self.add_weight(shape=(n_items,), initializer="ones", trainable=False, name="neg_prob")
        self.set_neg_prob(np.full(n_items, 1.0 / n_items) if neg_prob is None else neg_prob)
        # Each item's share of the train positives: the probability that an in-batch negative is that item.
        self.batch_prob = self.add_weight(shape=(n_items,), initializer="ones", trainable=False, name="batch_prob")
        self.set_batch_prob(np.ones(n_items))
        self.sampler = keras.random.SeedGenerator(seed, name="negative_sampler")
        self.correction = keras_rs.layers.SamplingProbabilityCorrection(name="logq", dtype="float32")

    def set_neg_prob(self, neg_prob: np.ndarray) -> None:
        """Replace the negative sampling distribution ([n_items], non-negative, normalised to sum 1)."""
        self.neg_prob.assign(sampling_probs(neg_prob, self.n_items))

    def set_batch_prob(self, batch_prob: np.ndarray) -> None:
        """Each item's share of the train positives ([n_items], e.g. counts; normalised to sum 1): the in-batch q."""
        self.batch_prob.assign(sampling_probs(batch_prob, self.n_items, "batch_prob"))

    def set_item_tables(self, item_city: np.ndarray, item_category: np.ndarray) -> None:
        """Each item's city and category by item id (-1 or out-of-range values embed as unknown); ``item_features`` only."""
        if not self.item_features:
            raise ValueError("This model has no item tables: construct it with item_features=True.")
        assign_item_tables(self, item_city, item_category)

    def build(self, input_shape=None) -> None:
        # Build every table whatever the first inputs hold (``call`` uses no item-side table), so a saved
        # model always finds every weight it saved.
        ids = ops.zeros((1,), "int32")
        self._users({"history": ops.zeros((1, 2), "int32"), **dict.fromkeys(USER_FIELDS, ids)})
        self.item_rows(ids)

    def _users(self, inputs, training=None):
        history = ops.cast(inputs["history"], "int32")
        mask = history >= 0
        fields = [self.pool(self.history_embedding(history), mask)] + [self.field_embeddings[f](inputs[f]) for f in USER_FIELDS]
        if self.item_features:
            fields.append(self.interests(self.category_embedding(lookup(self.item_category, history, -1)), mask))
        user = self.user_projection(self.mlp(ops.concatenate(fields, axis=-1), training=training))
        user = ops.cast(user, "float32")  # the softmax and FAISS need float32 under mixed precision
        if self.temperature is not None:
            return ops.normalize(user, axis=-1)
        return ops.concatenate([user, ops.ones_like(user[:, :1])], axis=-1)

    def call(self, inputs, training=None):
        return self._users(inputs, training)

    def item_rows(self, ids):
        """The item vectors of ``ids`` (each in [0, n_items)), in the space of ``call``'s user vectors."""
        rows = ops.take(self.item_table, ids, axis=0)
        if self.item_features:
            rows = (
                rows
                + self.city_embedding(ops.take(self.item_city, ids))
                + self.category_embedding(ops.take(self.item_category, ids))
            )
        if self.temperature is not None:
            return ops.normalize(rows, axis=-1)
        return ops.concatenate([rows, ops.expand_dims(ops.take(self.item_bias, ids), -1)], axis=-1)

    def sampled_softmax_loss(self, users, item_ids, item_prob, negatives):
        """Per-row loss of the positive against ``negatives`` [N] (and, with ``in_batch_negatives``, the batch's
        other positives), logQ-corrected, accidental hits removed.

        With in-batch negatives every logit, the positive's too, is corrected by the mixture of both proposals,
        q(i) = (B * batch_prob[i] + N * neg_prob[i]) / (B + N); without, by ``item_prob`` and ``neg_prob``.
        """
        item_ids, negatives = ops.cast(item_ids, "int32"), ops.cast(negatives, "int32")
        columns = ops.concatenate([item_ids, negatives]) if self.in_batch_negatives else negatives
        q = ops.take(self.neg_prob, columns)
        q_pos = ops.cast(item_prob, "float32")
        if self.in_batch_negatives:
            b, n = ops.cast(ops.shape(item_ids)[0], "float32"), float(self.num_negatives)
            q = (b * ops.take(self.batch_prob, columns) + n * q) / (b + n)
            q_pos = q[: ops.shape(item_ids)[0]]
        scale = 1.0 if self.temperature is None else 1.0 / self.temperature
        pos = ops.sum(users * self.item_rows(item_ids), axis=-1, keepdims=True) * scale
        neg = ops.matmul(users, ops.transpose(self.item_rows(columns))) * scale
        logits = ops.concatenate([pos, neg], axis=-1)
        logits = self.correction(logits, ops.concatenate([q_pos[:, None], ops.broadcast_to(q[None, :], ops.shape(neg))], axis=-1))
        hit = ops.concatenate([ops.zeros_like(pos, "bool"), columns[None, :] == item_ids[:, None]], axis=-1)
        logits = ops.where(hit, -1e9, logits)  # keras_rs RemoveAccidentalHits 0.4.0 leaves logits unchanged
        return ops.logsumexp(logits, axis=-1) - logits[:, 0]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = ops.expand_dims(ops.log(self.neg_prob), 0)
        negatives = keras.random.categorical(logits, self.num_negatives, seed=self.sampler)[0]
        loss = self.sampled_softmax_loss(y_pred, x["item_id"], x["item_prob"], negatives)
        return weighted_mean(loss, x, sample_weight, self.losses)

    def user_vectors(self, inputs: dict, batch_size: int = 1024) -> np.ndarray:
        """User vectors, as ``call`` returns them (see the class docstring)."""
        return np.asarray(self.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """Item vectors [n_items, ...] of every item id, in the user vectors' space (see the class docstring)."""
        if self.item_features:
            check_item_tables(self)
        return np.asarray(ops.convert_to_numpy(self.item_rows(ops.arange(self.n_items))), dtype=np.float32)

    def get_config(self) -> dict:
        keys = ("n_items", "n_cities", "n_categories", "embedding_dim", "hidden_units", "num_negatives", "dropout", "seed")
        keys += ("temperature", "in_batch_negatives", "item_features")
        return {**super().get_config(), **{k: getattr(self, k) for k in keys}}
