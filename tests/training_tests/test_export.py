"""Serving export: each model's SavedModel signatures reproduce the in-memory model, loaded with TensorFlow alone."""

import json
import subprocess
import sys

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from recpipe import contracts, tracking
from tests.training_tests import ranking_models
from training import recall
from training.export import MANIFEST, export_serving, load_serving, log_serving, read_manifest
from training.models.item2vec import Item2Vec, Item2VecCBOW
from training.models.two_tower import TwoTower
from training.models.youtube_dnn import USER_FIELDS, YouTubeDNN

N_ITEMS, N_CITIES, N_CATEGORIES, DIM = 30, 10, 6, 8
RTOL, ATOL = 1e-6, 1e-6
# Right-padded with -1 as the samples are; 999 and -5 are outside the item table; the last row knows no item.
HISTORY = np.array([[3, 7, 7, -1, -1], [12, 999, 4, 29, 0], [-5, 8, -1, -1, -1], [999, -1, -1, -1, -1]], np.int32)
TOWER_INPUTS = {
    "user_city": np.array([0, 9, 3, 12], np.int32),  # 12: an unknown city
    "user_type": np.array([0, 1, 1, 0], np.int32),
    "device": np.array([0, 3, 2, 1], np.int32),
    "hour": np.array([0, 23, 7, 30], np.int32),
    "weekday": np.array([0, 6, 3, -1], np.int32),
    "city_id": np.array([0, 9, 4, 3], np.int32),
    "history": HISTORY,
}
ITEM_IDS = np.array([0, 5, 29, 30, -1, 1000], np.int32)  # the last three are outside the table: zero vectors


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _youtube_dnn():
    # Dropout 0.5 in every test model: a signature that ran in training mode would not match.
    model = YouTubeDNN(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], num_negatives=4, dropout=0.5, seed=1)
    model(TOWER_INPUTS)  # build
    return model


def _youtube_dnn_cosine():
    model = YouTubeDNN(
        N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], num_negatives=4, dropout=0.5, seed=1,
        temperature=0.1, in_batch_negatives=True, item_features=True,
    )  # fmt: skip
    model.set_item_tables((np.arange(N_ITEMS) % N_CITIES).astype(np.int32), (np.arange(N_ITEMS) % N_CATEGORIES).astype(np.int32))
    model(TOWER_INPUTS)  # build
    return model


def _two_tower(tower="mlp"):
    model = TwoTower(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], tower=tower, pretrained_dim=4, dropout=0.5)
    model.set_item_tables((np.arange(N_ITEMS) % N_CITIES).astype(np.int32), (np.arange(N_ITEMS) % N_CATEGORIES).astype(np.int32))
    model.set_pretrained(np.random.default_rng(1).normal(size=(N_ITEMS, 4)))
    model(TOWER_INPUTS)  # build
    return model


def _item2vec():
    model = Item2Vec(N_ITEMS, DIM)
    model({"target": np.array([1]), "context": np.array([2])})  # build
    # Spread the vectors so that mean and recency pooling differ visibly.
    model.target_embedding.embeddings.assign(np.random.default_rng(2).normal(size=(N_ITEMS, DIM)).astype(np.float32))
    return model


def _ranking(variant="wide_deep"):
    model = ranking_models.make(variant)
    x, _ = ranking_models.batch(5)
    x["item_id"] = np.array([5, 10_000, -3, 29, 0], np.int32)  # unseen ids go to the OOV buckets in both paths
    return model, x


def _signature_io(path, name):
    """(inputs, outputs) of one signature as read back from the SavedModel: name -> (dtype, shape)."""
    fn = tf.saved_model.load(str(path)).signatures[name]
    inputs = {k: (s.dtype.name, s.shape.as_list()) for k, s in fn.structured_input_signature[1].items()}
    outputs = {k: (s.dtype.name, s.shape.as_list()) for k, s in fn.structured_outputs.items()}
    return inputs, outputs


def _manifest_io(manifest, name):
    sig = manifest["signatures"][name]
    return tuple({k: (v["dtype"], v["shape"]) for k, v in sig[part].items()} for part in ("inputs", "outputs"))


def _check_manifest(manifest, path, key, names):
    assert read_manifest(path) == manifest
    assert (path / MANIFEST).is_file()
    assert manifest["model"] == key and manifest["format"] == "tf_saved_model"
    assert list(manifest["signatures"]) == names and manifest["default_signature"] == names[0]
    assert set(tf.saved_model.load(str(path)).signatures) == {*names, "serving_default"}
    for name in names:
        assert _manifest_io(manifest, name) == _signature_io(path, name)


@pytest.mark.parametrize(
    ("key", "build"), [("youtube_dnn", _youtube_dnn), ("youtube_dnn", _youtube_dnn_cosine), ("two_tower", _two_tower)]
)
def test_tower_signatures_match_the_in_memory_model(key, build, tmp_path):
    model = build()
    manifest = export_serving(key, model, tmp_path / "serving")
    dim = DIM + 1 if build is _youtube_dnn else DIM  # the biased YouTube DNN appends the bias slot
    _check_manifest(manifest, tmp_path / "serving", key, ["user_vectors", "item_vectors"])
    user_inputs, user_outputs = _manifest_io(manifest, "user_vectors")
    assert user_inputs == {**{f: ("int32", [None]) for f in USER_FIELDS}, "history": ("int32", [None, None])}
    assert user_outputs == {"user_vector": ("float32", [None, dim])}
    assert manifest["signatures"]["user_vectors"]["inputs"]["history"]["pad_value"] == -1
    assert _manifest_io(manifest, "item_vectors") == ({"item_id": ("int32", [None])}, {"item_vector": ("float32", [None, dim])})
    assert USER_FIELDS == recall.USER_FEATURES  # the eval set's tower inputs are the signature's inputs

    serving = load_serving(tmp_path / "serving")
    users = serving["user_vectors"](TOWER_INPUTS)["user_vector"]
    np.testing.assert_allclose(users, model.user_vectors(TOWER_INPUTS), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(serving["serving_default"](TOWER_INPUTS)["user_vector"], users)
    items = serving["item_vectors"]({"item_id": ITEM_IDS})["item_vector"]
    np.testing.assert_allclose(items[:3], model.item_vectors()[[0, 5, 29]], rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(items[3:], 0.0)
    all_items = serving["item_vectors"]({"item_id": np.arange(N_ITEMS, dtype=np.int64)})["item_vector"]  # int64 is cast
    np.testing.assert_allclose(all_items, model.item_vectors(), rtol=RTOL, atol=ATOL)


def test_two_tower_dcn_and_pnn_bodies_export(tmp_path):
    for tower in ("dcn", "pnn"):
        model = _two_tower(tower)
        export_serving("two_tower", model, tmp_path / tower)
        users = load_serving(tmp_path / tower)["user_vectors"](TOWER_INPUTS)["user_vector"]
        np.testing.assert_allclose(users, model.user_vectors(TOWER_INPUTS), rtol=RTOL, atol=ATOL)


def test_item2vec_mean_pooling_matches_recall_user_vectors(tmp_path):
    model = _item2vec()
    manifest = export_serving("item2vec", model, tmp_path / "serving")
    _check_manifest(manifest, tmp_path / "serving", "item2vec", ["user_vectors", "item_vectors"])
    assert _manifest_io(manifest, "user_vectors") == (
        {"history": ("int32", [None, None])},
        {"user_vector": ("float32", [None, DIM])},
    )
    assert manifest["options"] == {"user_vector": "mean", "recency_half_life": None}
    serving = load_serving(tmp_path / "serving")
    users = serving["user_vectors"]({"history": HISTORY})["user_vector"]
    clicks = [[i for i in h if i >= 0] for h in HISTORY]  # the eval set's histories: lists, no padding
    expected = recall.user_vectors(model.item_vectors(), clicks)  # 999 has no vector: skipped
    np.testing.assert_allclose(users, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(users[3], 0.0)  # no known item
    items = serving["item_vectors"]({"item_id": ITEM_IDS})["item_vector"]
    np.testing.assert_allclose(items[:3], model.item_vectors()[[0, 5, 29]], rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(items[3:], 0.0)


def _saved_shapes(path):
    return sorted(shape for _name, shape in tf.train.list_variables(str(path / "variables" / "variables")) if shape)


def test_the_export_saves_each_served_variable_once(tmp_path):
    export_serving("item2vec", _item2vec(), tmp_path / "item2vec")
    assert _saved_shapes(tmp_path / "item2vec") == [[N_ITEMS, DIM]]  # not the context table, not a tracked copy
    model = _youtube_dnn()
    export_serving("youtube_dnn", model, tmp_path / "youtube_dnn")
    # Every weight once, except what only training reads: the samplers' distributions and seed states.
    training_only = ("neg_prob", "batch_prob", "seed_generator_state")
    served = [list(v.shape) for v in model.variables if not v.path.endswith(training_only)]
    assert len(served) == len(model.variables) - 4
    assert _saved_shapes(tmp_path / "youtube_dnn") == sorted(served)


def test_item2vec_recency_pooling_matches_recall_user_vectors(tmp_path):
    model = _item2vec()
    manifest = export_serving("item2vec", model, tmp_path / "serving", user_vector="recency", recency_half_life=1.0)
    assert manifest["options"] == {"user_vector": "recency", "recency_half_life": 1.0}
    users = load_serving(tmp_path / "serving")["user_vectors"]({"history": HISTORY})["user_vector"]
    v = model.item_vectors()
    # Ages count every click after this one, 999 too (it has no vector, so it weighs nothing itself).
    # Row 1: 12, 999, 4, 29, 0 have ages 4, 3, 2, 1, 0 -> weights 1/16, -, 1/4, 1/2, 1.
    row1 = (v[12] / 16 + v[4] / 4 + v[29] / 2 + v[0]) / (1 / 16 + 1 / 4 + 1 / 2 + 1)
    expected = np.stack([(v[3] / 4 + v[7] / 2 + v[7]) / 1.75, row1, v[8], np.zeros(DIM)])
    np.testing.assert_allclose(users, expected, rtol=RTOL, atol=ATOL)
    clicks = [[i for i in h if i >= 0] for h in HISTORY]  # the eval set's histories: lists, no padding
    np.testing.assert_allclose(users, recall.user_vectors(v, clicks, "recency", 1.0), rtol=RTOL, atol=ATOL)
    export_serving("item2vec", model, tmp_path / "hl3", user_vector="recency", recency_half_life=3.0)
    users = load_serving(tmp_path / "hl3")["user_vectors"]({"history": HISTORY})["user_vector"]
    np.testing.assert_allclose(users, recall.user_vectors(v, clicks, "recency", 3.0), rtol=RTOL, atol=ATOL)


def test_item2vec_cbow_exports_its_input_table(tmp_path):
    model = Item2VecCBOW(N_ITEMS, DIM, num_negatives=4, seed=1)
    model({"context": HISTORY})  # build
    export_serving("item2vec", model, tmp_path / "serving")
    serving = load_serving(tmp_path / "serving")
    items = serving["item_vectors"]({"item_id": np.arange(N_ITEMS, dtype=np.int32)})["item_vector"]
    np.testing.assert_allclose(items, model.item_vectors(), rtol=RTOL, atol=ATOL)
    users = serving["user_vectors"]({"history": HISTORY})["user_vector"]
    clicks = [[i for i in h if i >= 0] for h in HISTORY]
    np.testing.assert_allclose(users, recall.user_vectors(model.item_vectors(), clicks), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("variant", [v for v in ranking_models.VARIANTS if v != "fm"])
def test_every_ranking_model_predict_ctr_matches_the_in_memory_probabilities(variant, tmp_path):
    model, x = _ranking(variant)
    key = ranking_models.EXTRA.get(variant, (variant,))[0]  # the catalogue model of an extra variant
    manifest = export_serving(key, model, tmp_path / "serving")
    _check_manifest(manifest, tmp_path / "serving", key, ["predict_ctr"])
    inputs, outputs = _manifest_io(manifest, "predict_ctr")
    specs = contracts.ranking_features(n_items=N_ITEMS)
    assert inputs == {f.name: ("int32" if f.kind == "categorical" else "float32", [None]) for f in specs}
    assert outputs == {"click_probability": ("float32", [None])}
    probs = load_serving(tmp_path / "serving")["predict_ctr"](x)["click_probability"]
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)
    assert ((probs > 0) & (probs < 1)).all()  # probabilities, not logits


def test_bad_arguments_say_what_was_received_and_expected(tmp_path):
    model = _item2vec()
    with pytest.raises(
        ValueError, match=r"expected one of \['cnn_dnn', 'deepfm', 'fnn', .*, 'youtube_dnn'\]. Received: model_key='fm'"
    ):
        export_serving("fm", model, tmp_path / "a")
    with pytest.raises(ValueError, match=r"should be an instance of YouTubeDNN for model_key='youtube_dnn'. Received: Item2Vec$"):
        export_serving("youtube_dnn", model, tmp_path / "b")
    with pytest.raises(
        ValueError, match=r"should be an instance of Item2Vec or Item2VecCBOW for model_key='item2vec'. Received: YouTubeDNN"
    ):
        export_serving("item2vec", _youtube_dnn(), tmp_path / "b")
    with pytest.raises(ValueError, match="Received: recency_half_life=None"):
        export_serving("item2vec", model, tmp_path / "c", user_vector="recency")
    with pytest.raises(ValueError, match=r"one of \('mean', 'recency'\). Received: user_vector='last'"):
        export_serving("item2vec", model, tmp_path / "d", user_vector="last")
    with pytest.raises(ValueError, match=r"item2vec only. Received: user_vector='recency' for 'two_tower'"):
        export_serving("two_tower", _two_tower(), tmp_path / "e", user_vector="recency", recency_half_life=2.0)
    with pytest.raises(ValueError, match="is not built"):
        export_serving("item2vec", Item2Vec(N_ITEMS, DIM), tmp_path / "f")
    no_tables = TwoTower(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16])
    no_tables(TOWER_INPUTS)
    with pytest.raises(ValueError, match="call `set_item_tables` first"):
        export_serving("two_tower", no_tables, tmp_path / "g")
    export_serving("item2vec", model, tmp_path / "ok")
    with pytest.raises(ValueError, match=r"takes inputs \['history'\]. Received: \['hist'\]"):
        load_serving(tmp_path / "ok")["user_vectors"]({"hist": HISTORY})


def test_log_serving_logs_the_export_into_the_active_run(cfg, tmp_path):
    model = _youtube_dnn()
    with pytest.raises(RuntimeError, match="needs an active MLflow run"):
        log_serving("youtube_dnn", model)
    tracking.setup(cfg)
    with mlflow.start_run() as run:
        manifest = log_serving("youtube_dnn", model)
    names = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "serving")}
    assert {"serving/saved_model.pb", f"serving/{MANIFEST}", "serving/variables"} <= names
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="serving", dst_path=str(tmp_path))
    assert read_manifest(local) == manifest
    users = load_serving(local)["user_vectors"](TOWER_INPUTS)["user_vector"]
    np.testing.assert_allclose(users, model.user_vectors(TOWER_INPUTS), rtol=RTOL, atol=ATOL)


def test_mixed_precision_models_export_float32_signatures(tmp_path):
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_float16")  # as training.compute sets it on a GPU
    try:
        model, x = _ranking("xgb_wide_deep")
        tower = _youtube_dnn()
    finally:
        keras.config.set_dtype_policy(previous)
    manifest = export_serving("wide_deep", model, tmp_path / "wide_deep")
    assert manifest["signatures"]["predict_ctr"]["outputs"]["click_probability"]["dtype"] == "float32"
    probs = load_serving(tmp_path / "wide_deep")["predict_ctr"](x)["click_probability"]
    assert probs.dtype == np.float32
    # float16 inside: the SavedModel's graph may round an intermediate differently from Keras's predict.
    np.testing.assert_allclose(probs, model.predict(x, verbose=0).astype(np.float32), rtol=1e-3, atol=1e-4)
    export_serving("youtube_dnn", tower, tmp_path / "youtube_dnn")
    users = load_serving(tmp_path / "youtube_dnn")["user_vectors"](TOWER_INPUTS)["user_vector"]
    np.testing.assert_allclose(users, tower.user_vectors(TOWER_INPUTS), rtol=RTOL, atol=ATOL)


def test_the_export_serves_without_keras_or_the_model_code(tmp_path):
    model = _two_tower("dcn")  # keras_rs layers inside
    export_serving("two_tower", model, tmp_path / "serving")
    script = (
        "import sys\n"
        "sys.modules.update(dict.fromkeys(['keras', 'keras_rs', 'training', 'tf_keras'], None))\n"
        "import numpy as np, tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "import json\n"
        "feed = {k: tf.constant(np.array(v, np.int32)) for k, v in json.loads(sys.argv[2]).items()}\n"
        "print(loaded.signatures['user_vectors'](**feed)['user_vector'].numpy().tolist())\n"
    )
    inputs = json.dumps({k: v.tolist() for k, v in TOWER_INPUTS.items()})
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "serving"), inputs], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    users = np.array(json.loads(done.stdout.strip().splitlines()[-1]), np.float32)
    np.testing.assert_allclose(users, model.user_vectors(TOWER_INPUTS), rtol=RTOL, atol=ATOL)
