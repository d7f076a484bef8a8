"""Two-tower recall: user and item towers (MLP, DCN or PNN bodies) trained with an in-batch softmax."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import keras_rs
import numpy as np
from keras import ops

from training.layers.blocks import MLP, AttentionPooling, CategoricalEmbedding, MaskedMeanPooling, check_positive, lookup
from training.models.youtube_dnn import (
    USER_FIELDS,
    add_item_tables,
    assign_item_tables,
    check_item_tables,
    user_vocab,
    weighted_mean,
)

TOWERS = ("mlp", "dcn", "pnn")
CITY_FIELDS = ("user_city", "city_id")  # embedded with the item-city table


@keras.saving.register_keras_serializable(package="recpipe")
class TowerBody(keras.layers.Layer):
    """Field embeddings [B, d] each -> an L2-normalised vector [B, d]: "mlp", "dcn" or "pnn" interactions, MLP, projection."""

    def __init__(self, tower: str, hidden_units: Sequence[int], output_dim: int, cross_layers: int = 2, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.tower, self.hidden_units, self.output_dim = tower, list(hidden_units), output_dim
        self.cross_layers, self.dropout = cross_layers, dropout
        n_cross = cross_layers if tower == "dcn" else 0
        self.cross = [keras_rs.layers.FeatureCross(name=f"cross_{i}") for i in range(n_cross)]
        self.dot = keras_rs.layers.DotInteraction(name="dot") if tower == "pnn" else None
        self.mlp = MLP(self.hidden_units, dropout, name="mlp")
        self.projection = keras.layers.Dense(output_dim, name="projection")

    def call(self, fields, training=None):
        x0 = ops.concatenate(fields, axis=-1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        if self.dot is not None:
            x = ops.concatenate([x, self.dot(fields)], axis=-1)
        # float32 out under mixed precision: the softmax over cosines and FAISS need the full mantissa.
        return ops.normalize(ops.cast(self.projection(self.mlp(x, training=training)), "float32"), axis=-1)

    def get_config(self) -> dict:
        keys = ("tower", "hidden_units", "output_dim", "cross_layers", "dropout")
        return {**super().get_config(), **{k: getattr(self, k) for k in keys}}


@keras.saving.register_keras_serializable(package="recpipe")
class TwoTower(keras.Model):
    """User and item towers whose L2-normalised outputs score by cosine / ``temperature``.

    ``call`` takes ``history`` [B, L] (-1 pads) and the ``USER_FIELDS`` [B] and returns the user vectors
    [B, embedding_dim]. Both towers' vectors are unit length, so FAISS inner product is the cosine the
    model ranks by (the temperature only scales it). Training (``compute_loss``) also needs ``item_id``,
    ``item_city``, ``category_id`` and ``item_prob`` [B] and, when present, ``hard_negatives`` [B, H]
    (-1 pads) with ``hard_negative_prob`` [B]; the example weight is ``sample_weight`` if given, else
    ``inputs["weight"]``. Call ``set_item_tables`` (and ``set_pretrained``) before training.

    Args:
        n_items, n_cities, n_categories: vocabulary sizes.
        embedding_dim: size of every field embedding and of the output vectors.
        hidden_units: MLP layer sizes of both towers.
        tower: body of both towers, one of ``TOWERS``.
        temperature: softmax temperature of the cosine scores.
        pretrained_dim: size of the frozen pre-trained item vectors (0: none).
        cross_layers: FeatureCross layers of the "dcn" body.
        dropout: dropout rate of the MLPs.
    """

    item_features = True  # the item tower reads the item tables (``set_item_tables``)

    def __init__(
        self,
        n_items: int,
        n_cities: int,
        n_categories: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        tower: str = "mlp",
        temperature: float = 0.05,
        pretrained_dim: int = 0,
        cross_layers: int = 2,
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if tower not in TOWERS:
            raise ValueError(f"`tower` should be one of {TOWERS}. Received: tower={tower!r}")
        if not temperature > 0 or pretrained_dim < 0:
            raise ValueError(
                f"`temperature` should be positive and `pretrained_dim` non-negative. "
                f"Received: temperature={temperature}, pretrained_dim={pretrained_dim}"
            )
        check_positive(
            n_items=n_items,
            n_cities=n_cities,
            n_categories=n_categories,
            embedding_dim=embedding_dim,
            cross_layers=cross_layers,
            hidden_units=list(hidden_units),
        )
        self.n_items, self.n_cities, self.n_categories, self.embedding_dim = n_items, n_cities, n_categories, embedding_dim
        self.hidden_units, self.tower, self.temperature = list(hidden_units), tower, temperature
        self.pretrained_dim, self.cross_layers, self.dropout = pretrained_dim, cross_layers, dropout
        d = embedding_dim
        # Item ids, cities and categories each have one table, shared by the user side (history, profile,
        # context) and the item side, so "same city" or "same category" starts from the same vector.
        self.item_embedding = CategoricalEmbedding(n_items, d, name="item_embedding")
        self.city_embedding = CategoricalEmbedding(n_cities, d, name="city_embedding")
        self.category_embedding = CategoricalEmbedding(n_categories, d, name="category_embedding")
        vocab = dict(zip(USER_FIELDS, user_vocab(n_cities), strict=True))
        self.field_embeddings = {
            f: CategoricalEmbedding(vocab[f], d, name=f"{f}_embedding") for f in USER_FIELDS if f not in CITY_FIELDS
        }
        self.attention = AttentionPooling(name="history_attention")
        self.interests = MaskedMeanPooling(name="category_interests")
        self.pretrained_projection = keras.layers.Dense(d, name="pretrained_projection") if pretrained_dim else None
        self.user_body = TowerBody(tower, hidden_units, d, cross_layers, dropout, name="user_tower")
        self.item_body = TowerBody(tower, hidden_units, d, cross_layers, dropout, name="item_tower")
        add_item_tables(self, n_items)
        self.pretrained = None
        if pretrained_dim:
            self.pretrained = self.add_weight(
                shape=(n_items, pretrained_dim), initializer="zeros", trainable=False, name="pretrained"
            )
        self.correction = keras_rs.layers.SamplingProbabilityCorrection(name="logq", dtype="float32")

    def set_item_tables(self, item_city: np.ndarray, item_category: np.ndarray) -> None:
        """Each item's city and category, indexed by item id (-1 or out-of-range values embed as unknown)."""
        assign_item_tables(self, item_city, item_category)

    def set_pretrained(self, vectors: np.ndarray) -> None:
        """The frozen pre-trained item vectors [n_items, pretrained_dim], e.g. ``Item2Vec.item_vectors()``."""
        v = np.asarray(vectors, dtype=np.float32)
        if self.pretrained is None or v.shape != (self.n_items, self.pretrained_dim):
            expected = f"({self.n_items}, {self.pretrained_dim}), with pretrained_dim > 0"
            raise ValueError(f"`vectors` should have shape {expected}. Received: shape={v.shape}")
        self.pretrained.assign(v)

    def build(self, input_shape=None) -> None:
        # Build both towers whatever the first inputs hold (``call`` runs only the user tower), so a saved
        # model always finds every weight it saved.
        ids = ops.zeros((1,), "int32")
        self._users({"history": ops.zeros((1, 2), "int32"), **dict.fromkeys(USER_FIELDS, ids)})
        self._items(ids, ids, ids)

    def _users(self, x, training=None):
        history = ops.cast(x["history"], "int32")
        mask = history >= 0
        fields = [self.city_embedding(x[f]) if f in CITY_FIELDS else self.field_embeddings[f](x[f]) for f in USER_FIELDS]
        attended = self.attention(ops.concatenate(fields, axis=-1), self.item_embedding(history), mask)
        interests = self.interests(self.category_embedding(lookup(self.item_category, history, -1)), mask)
        return self.user_body([*fields, attended, interests], training=training)

    def _items(self, ids, cities, categories, training=None):
        ids = ops.cast(ids, "int32")
        fields = [self.item_embedding(ids), self.city_embedding(cities), self.category_embedding(categories)]
        if self.pretrained is not None:
            fields.append(self.pretrained_projection(lookup(self.pretrained, ids, 0.0)))
        return self.item_body(fields, training=training)

    def _items_by_id(self, ids, training=None):
        return self._items(ids, lookup(self.item_city, ids, -1), lookup(self.item_category, ids, -1), training)

    def call(self, inputs, training=None):
        return self._users(inputs, training)

    def item_rows(self, ids):
        """The item vectors of ``ids`` (each in [0, n_items)) from the item tables, as ``item_vectors()`` has them."""
        return self._items_by_id(ids, training=False)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        ids = ops.cast(x["item_id"], "int32")
        items = self._items(ids, x["item_city"], x["category_id"], training)
        logits = ops.matmul(y_pred, ops.transpose(items)) / self.temperature
        logits = self.correction(logits, ops.broadcast_to(ops.cast(x["item_prob"], "float32")[None, :], ops.shape(logits)))
        positives = ops.diagonal(logits)
        # Masked, not left to keras_rs RemoveAccidentalHits (0.4.0 adds ~1e-40 to the logits: a no-op).
        same = ops.logical_and(ids[:, None] == ids[None, :], ops.logical_not(ops.eye(ops.shape(ids)[0], dtype="bool")))
        logits = ops.where(same, -1e9, logits)
        if "hard_negatives" in x:
            hard = ops.cast(x["hard_negatives"], "int32")
            vectors = ops.reshape(self._items_by_id(ops.reshape(hard, (-1,)), training), (*ops.shape(hard), self.embedding_dim))
            hard_logits = ops.einsum("bd,bhd->bh", y_pred, vectors) / self.temperature
            q = ops.broadcast_to(ops.cast(x["hard_negative_prob"], "float32")[:, None], ops.shape(hard_logits))
            valid = ops.logical_and(hard >= 0, hard != ids[:, None])
            logits = ops.concatenate([logits, ops.where(valid, self.correction(hard_logits, q), -1e9)], axis=-1)
        return weighted_mean(ops.logsumexp(logits, axis=-1) - positives, x, sample_weight, self.losses)

    def user_vectors(self, inputs: dict, batch_size: int = 1024) -> np.ndarray:
        """L2-normalised user vectors [B, embedding_dim] (inner product = the cosine the model ranks by)."""
        return np.asarray(self.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float32)

    def item_vectors(self, batch_size: int = 4096) -> np.ndarray:
        """L2-normalised vectors [n_items, embedding_dim] of every item id, features from the item tables."""
        check_item_tables(self)
        chunks = np.array_split(np.arange(self.n_items, dtype=np.int32), max(1, -(-self.n_items // batch_size)))
        return np.concatenate([ops.convert_to_numpy(self._items_by_id(c)) for c in chunks]).astype(np.float32)

    def get_config(self) -> dict:
        keys = ("n_items", "n_cities", "n_categories", "embedding_dim", "hidden_units")
        keys += ("tower", "temperature", "pretrained_dim", "cross_layers", "dropout")
        return {**super().get_config(), **{k: getattr(self, k) for k in keys}}
