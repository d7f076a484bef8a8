"""Every model: one fit step, predictions in range, and a save/load round trip with identical outputs."""

import keras
import numpy as np
import pytest

from recpipe import contracts
from training.layers.blocks import MLP, CategoricalEmbedding
from training.models.item2vec import Item2Vec
from training.models.wide_deep import WideDeep


def _wide_deep():
    specs = contracts.ranking_features(n_items=30)
    return WideDeep(
        features=[{"name": f.name, "kind": f.kind, "vocab_size": f.vocab_size} for f in specs],
        crosses=[list(c) for c in contracts.WIDE_CROSSES],
        cross_bins=64,
        embedding_dim=4,
        hidden_units=[8],
        dropout=0.1,
    ), specs


def _ranking_batch(specs, n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = {}
    for f in specs:
        x[f.name] = (
            rng.integers(0, f.vocab_size, n).astype(np.int32) if f.kind == "categorical" else rng.random(n).astype(np.float32)
        )
    return x, (rng.random(n) < 0.3).astype(np.float32)


def _round_trip(model, x, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()


def test_item2vec_fits_and_round_trips(tmp_path):
    model = Item2Vec(n_items=20, embedding_dim=4)
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x = {"target": np.array([1, 2, 3, 4]), "context": np.array([2, 1, 9, 7])}
    model(x)  # build
    before = model.item_vectors().copy()
    model.fit(x, np.array([1, 1, 0, 0], dtype=np.float32), epochs=1, verbose=0)
    after = model.item_vectors()
    assert after.shape == (20, 4)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(before[1], after[1])  # trained rows moved
    np.testing.assert_allclose(before[15], after[15])  # an untouched row did not
    _round_trip(model, x, tmp_path)


def test_wide_deep_fits_and_round_trips(tmp_path):
    model, specs = _wide_deep()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = _ranking_batch(specs)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    probs = model.predict(x, verbose=0)
    assert probs.shape == (16,) and ((probs > 0) & (probs < 1)).all()
    _round_trip(model, x, tmp_path)


def test_wide_deep_sends_unseen_ids_to_the_oov_bucket():
    model, specs = _wide_deep()
    x, _ = _ranking_batch(specs, n=4)
    x["item_id"] = np.array([5, 10_000, -3, 29], dtype=np.int32)
    assert np.isfinite(model.predict(x, verbose=0)).all()
    emb = CategoricalEmbedding(3, 2)
    out = keras.ops.convert_to_numpy(emb(np.array([0, 3, 99, -1])))
    np.testing.assert_allclose(out[1], out[2])
    np.testing.assert_allclose(out[1], out[3])


def test_bad_hyperparameters_say_what_was_received():
    with pytest.raises(ValueError, match="Received: n_items=0"):
        Item2Vec(n_items=0, embedding_dim=4)
    with pytest.raises(ValueError, match=r"Received: dropout=1.5"):
        MLP([4], dropout=1.5)
    with pytest.raises(ValueError, match=r"not categorical: \['nope'\]"):
        WideDeep(
            features=[{"name": "a", "kind": "categorical", "vocab_size": 3}],
            crosses=[["a", "nope"]],
            cross_bins=8,
            embedding_dim=2,
            hidden_units=[4],
        )
