"""GBDT half of XGBoost + Wide&Deep: fitting, flattening the trees, and the Keras layer that walks them."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import xgboost

from training.layers.gbdt import GBDTLeaves
from training.xgb import ORDINAL_FEATURES, feature_matrix, fit_gbdt, gbdt_features, leaf_ordinals, tree_arrays

NAMES = ["ctr_7d", "price_bucket", "noise"]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Planted rule: a click iff ctr_7d > 0.5 and price_bucket < 3; noise is irrelevant."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.random(n), rng.integers(0, 6, n), rng.normal(size=n)], axis=1).astype(np.float32)
    y = ((x[:, 0] > 0.5) & (x[:, 1] < 3)).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def booster() -> xgboost.Booster:
    x, y = _data(2000, seed=0)
    x[::10, 0] = np.nan  # missing values, so splits on ctr_7d learn a default direction
    booster, _ = fit_gbdt(x, y, feature_names=NAMES, n_trees=8, max_depth=3, learning_rate=0.3, seed=0)
    return booster


@pytest.fixture(scope="module")
def arrays(booster) -> dict[str, np.ndarray]:
    return tree_arrays(booster)


def _layer(arrays: dict[str, np.ndarray]) -> GBDTLeaves:
    n_trees, max_nodes = arrays["left"].shape
    layer = GBDTLeaves(n_trees, max_nodes, int(arrays["depth"]), len(NAMES))
    layer.set_trees(arrays)
    return layer


def _held_out(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Fresh rows, plus rows sitting exactly on each split threshold, plus rows with NaN in each feature."""
    x, _ = _data(200, seed=1)
    internal = arrays["left"] >= 0
    on_threshold = np.repeat(x[:1], internal.sum(), axis=0)
    on_threshold[np.arange(len(on_threshold)), arrays["feature"][internal]] = arrays["threshold"][internal]
    with_nan = np.repeat(x[:3], len(NAMES), axis=0)
    with_nan[np.arange(len(with_nan)), np.tile(np.arange(len(NAMES)), 3)] = np.nan
    return np.concatenate([x, on_threshold, with_nan])


def test_gbdt_features_keeps_numeric_and_ordinal_in_spec_order():
    specs = [
        {"name": "item_id", "kind": "categorical", "vocab_size": 30},
        {"name": "ctr_7d", "kind": "numeric", "vocab_size": 0},
        {"name": "position", "kind": "categorical", "vocab_size": 10},
        {"name": "device", "kind": "categorical", "vocab_size": 4},
    ]
    assert "position" in ORDINAL_FEATURES
    assert gbdt_features(specs) == ["ctr_7d", "position"]
    with pytest.raises(ValueError, match="item_id"):
        gbdt_features(specs[:1])


def test_feature_matrix_stacks_in_order_and_names_missing():
    x = {"a": np.array([1, 2]), "b": np.array([[0.5], [1.5]])}
    m = feature_matrix(x, ["b", "a"])
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, [[0.5, 1.0], [1.5, 2.0]])
    with pytest.raises(KeyError, match="'c'"):
        feature_matrix(x, ["a", "c"])


def test_fit_gbdt_learns_planted_rule():
    x, y = _data(2000, seed=0)
    ex, ey = _data(500, seed=1)
    _, metrics = fit_gbdt(x, y, feature_names=NAMES, n_trees=8, max_depth=3, learning_rate=0.3, seed=0, eval_set=(ex, ey))
    assert metrics["gbdt_train_auc"] > 0.9
    assert metrics["gbdt_eval_auc"] > 0.9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_trees": 0}, "n_trees=0"),
        ({"max_depth": -1}, "max_depth=-1"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"feature_names": ["only_one"]}, r"\[N, 1\]"),
    ],
)
def test_fit_gbdt_rejects_bad_arguments(kwargs, match):
    x, y = _data(10, seed=0)
    args = {"feature_names": NAMES, "n_trees": 2, "max_depth": 2, "learning_rate": 0.1, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        fit_gbdt(x, y, **args)
    with pytest.raises(ValueError, match=r"\[10\]"):
        fit_gbdt(x, y[:5], feature_names=NAMES, n_trees=2, max_depth=2, learning_rate=0.1, seed=0)


def test_tree_arrays_on_a_single_split():
    # One stump on x0 >= 1: rows 0, 1 left, rows 2, 3 right.
    x = np.array([[0.0], [0.0], [2.0], [2.0]], np.float32)
    stump = xgboost.train({"max_depth": 1, "base_score": 0.5}, xgboost.DMatrix(x, label=[0, 0, 1, 1]), num_boost_round=1)
    a = tree_arrays(stump)
    np.testing.assert_array_equal(a["left"], [[1, -1, -1]])
    np.testing.assert_array_equal(a["right"], [[2, -1, -1]])
    np.testing.assert_array_equal(a["leaf_ordinal"], [[-1, 0, 1]])
    np.testing.assert_array_equal(a["n_leaves"], [2])
    assert int(a["depth"]) == 1
    assert 0.0 < a["threshold"][0, 0] <= 2.0
    np.testing.assert_array_equal(leaf_ordinals(stump, x), [[0], [0], [1], [1]])


def test_tree_arrays_refuse_multiclass():
    x, _ = _data(30, seed=0)
    multi = xgboost.train({"objective": "multi:softprob", "num_class": 3}, xgboost.DMatrix(x, label=np.arange(30) % 3), 1)
    with pytest.raises(ValueError, match="num_class=3"):
        tree_arrays(multi)


def test_tree_arrays_survive_json_file_round_trip(booster, arrays, tmp_path):
    booster.save_model(tmp_path / "gbdt.json")
    reloaded = tree_arrays(xgboost.Booster(model_file=str(tmp_path / "gbdt.json")))
    assert reloaded.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(reloaded[key], value, err_msg=key)


def test_layer_matches_xgboost_on_nan_and_threshold_rows(booster, arrays):
    x = _held_out(arrays)
    assert arrays["default_left"].any() and not arrays["default_left"].all()  # both directions are exercised
    expected = leaf_ordinals(booster, x)
    layer = _layer(arrays)
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.dtype == np.int32 and got.shape == (len(x), arrays["left"].shape[0])
    np.testing.assert_array_equal(got, expected)
    traced = tf.function(layer, input_signature=[tf.TensorSpec([None, len(NAMES)], tf.float32)])
    np.testing.assert_array_equal(traced(x).numpy(), expected)
    assert layer.max_leaves == arrays["n_leaves"].max() <= 2**3
    assert (expected < layer.max_leaves).all() and (expected >= 0).all()


def test_layer_round_trips_through_keras_file_and_saved_model(arrays, tmp_path):
    x = _held_out(arrays)
    inputs = keras.Input((len(NAMES),))
    model = keras.Model(inputs, _layer(arrays)(inputs))
    expected = keras.ops.convert_to_numpy(model(x))

    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), expected)
    assert loaded.layers[-1].max_leaves == arrays["n_leaves"].max()

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", model.call, input_signature=[tf.TensorSpec([None, len(NAMES)], tf.float32)])
    archive.write_out(str(tmp_path / "saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(served.serve(tf.constant(x)).numpy(), expected)


def test_set_trees_rejects_wrong_shapes(arrays):
    n_trees, max_nodes = arrays["left"].shape
    layer = GBDTLeaves(n_trees + 1, max_nodes, int(arrays["depth"]), len(NAMES))
    with pytest.raises(ValueError, match=rf"left: expected \({n_trees + 1}, {max_nodes}\), received \({n_trees}, {max_nodes}\)"):
        layer.set_trees(arrays)
    shallow = GBDTLeaves(n_trees, max_nodes, 1, len(NAMES))
    with pytest.raises(ValueError, match="depth <= 1"):
        shallow.set_trees(arrays)
    with pytest.raises(ValueError, match="n_trees=0"):
        GBDTLeaves(0, max_nodes, 1, len(NAMES))
