"""Every model: one fit step, predictions in range, and a save/load round trip with identical outputs."""

import keras
import numpy as np
import pytest

from tests.training_tests import ranking_models
from training.layers.blocks import MLP, CategoricalEmbedding
from training.layers.ctr import FMInteraction, OuterProduct
from training.models.deepfm import DeepFM
from training.models.fnn import FNN
from training.models.item2vec import Item2Vec
from training.models.pnn import PNN
from training.models.wide_deep import WideDeep


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


@pytest.mark.parametrize("variant", ranking_models.VARIANTS)
def test_every_ranking_model_fits_and_round_trips(variant, tmp_path):
    model = ranking_models.make(variant)
    x, y = ranking_models.batch(64)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy")
    loss = model.fit(x, y, epochs=6, batch_size=16, verbose=0).history["loss"]
    assert np.isfinite(loss).all()
    assert loss[-1] < loss[0]  # it learns the planted rule
    probs = model.predict(x, verbose=0)
    assert probs.shape == (64,) and ((probs > 0) & (probs < 1)).all()
    _round_trip(model, x, tmp_path)


def test_unseen_ids_go_to_hashed_oov_buckets():
    emb = CategoricalEmbedding(3, 2, oov_buckets=4)
    out = keras.ops.convert_to_numpy(emb(np.array([0, 3, 7, 4, -1, 2])))
    table = keras.ops.convert_to_numpy(emb.embedding.embeddings)
    # In-vocabulary ids keep their row; id i outside [0, 3) takes row 3 + (i mod 4): 3 -> 6, 7 -> 6, 4 -> 3, -1 -> 6.
    np.testing.assert_array_equal(out, table[[0, 6, 6, 3, 6, 2]])
    model = ranking_models.make("deepfm")
    x, _ = ranking_models.batch(4)
    x["item_id"] = np.array([5, 10_000, -3, 29], dtype=np.int32)
    x["user_city"] = np.array([0, 500, 1, 2], dtype=np.int32)
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_numeric_features_are_standardised_log_counts():
    model = ranking_models.make("wide_deep")
    counts = {name: np.array([0.0, np.e - 1, -5.0], np.float32) for name in model.numeric}
    model.set_numeric_stats(counts)  # log1p(max(x, 0)) = 0, 1, 0: mean 1/3, deviation sqrt(2)/3
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.numeric_mean)[0], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.numeric_std)[0], np.sqrt(2) / 3, rtol=1e-6)
    out = model.standardize({name: np.array([np.e - 1], np.float32) for name in model.numeric})
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out[model.numeric[0]]), [(1 - 1 / 3) / (np.sqrt(2) / 3)], rtol=1e-5)


def test_fm_interaction_and_outer_product_by_hand():
    fields = np.array([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]], np.float32)  # pairs: 0, 1, 2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(FMInteraction()(fields)), [[3.0]])
    # Sum-pooled: (2, 3); its outer product flattened row by row.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(OuterProduct()(fields)), [[4.0, 6.0, 6.0, 9.0]])


def test_fnn_starts_from_the_trained_fm():
    fm = ranking_models.make("fm")
    x, y = ranking_models.batch(64)
    fm.compile(optimizer="adam", loss="binary_crossentropy")
    fm.fit(x, y, epochs=1, verbose=0)
    fnn = FNN(**ranking_models.COMMON, hidden_units=[8])
    fnn.init_from_fm(fm)
    for f in fnn.categorical:
        name = f["name"]
        np.testing.assert_array_equal(fnn.fields.tables[name].get_weights()[0], fm.fields.tables[name].get_weights()[0])
        np.testing.assert_array_equal(fnn.weights_1.tables[name].get_weights()[0], fm.linear.linear.tables[name].get_weights()[0])
    np.testing.assert_array_equal(fnn.numeric_mean.numpy(), fm.numeric_mean.numpy())
    with pytest.raises(ValueError, match=r"embedding_dim=4 \(expected 6\)"):
        FNN(**(ranking_models.COMMON | {"embedding_dim": 6}), hidden_units=[8]).init_from_fm(fm)


def test_wide_resnet_batch_norm_switch():
    with_bn, without = ranking_models.make("wide_resnet"), ranking_models.make("wide_resnet_no_bn")
    assert any("bn_1" in w.path for w in with_bn.weights)
    assert not any("bn_" in w.path for w in without.weights)


def test_cnn_dnn_uses_the_image_table_and_zeros_for_unknown_items():
    model = ranking_models.make("cnn_dnn")
    x, _ = ranking_models.batch(2)
    x["item_id"] = np.array([3, 3], np.int32)
    base = model.predict(x, verbose=0)
    table = model.image_table.numpy()
    table[3] += 5.0
    model.set_image_embeddings(table)
    assert not np.allclose(model.predict(x, verbose=0), base)  # the item's image row feeds the MLP
    with pytest.raises(ValueError, match=r"shape \(30, 5\). Received: shape=\(2, 5\)"):
        model.set_image_embeddings(np.zeros((2, 5)))


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
    with pytest.raises(ValueError, match=r"one of \('inner', 'outer'\). Received: product='cross'"):
        PNN(**ranking_models.COMMON, hidden_units=[4], product="cross")
    with pytest.raises(ValueError, match="Received: embedding_dim=0, embedding_l2=-1"):
        DeepFM(**(ranking_models.COMMON | {"embedding_dim": 0, "embedding_l2": -1}), hidden_units=[4])
    with pytest.raises(ValueError, match=r"unique `name`.*Received: \['a', 'a'\]"):
        DeepFM([{"name": "a", "kind": "numeric"}] * 2, 4, [4])
    with pytest.raises(ValueError, match="Received: vocab_size=3, output_dim=2, oov_buckets=0"):
        CategoricalEmbedding(3, 2, oov_buckets=0)
