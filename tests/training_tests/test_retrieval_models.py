"""YouTube DNN and two-tower recall models: pooling, losses (logQ, accidental hits, hard negatives), fit, save/load."""

import keras
import numpy as np
import pytest

from training.layers.blocks import AttentionPooling, MaskedMeanPooling
from training.models.two_tower import TwoTower
from training.models.youtube_dnn import YouTubeDNN

N_ITEMS, N_CITIES, N_CATEGORIES, DIM = 30, 10, 6, 8
ITEM_CITY = (np.arange(N_ITEMS) % N_CITIES).astype(np.int32)
ITEM_CATEGORY = (np.arange(N_ITEMS) % N_CATEGORIES).astype(np.int32)
TOWERS = ["mlp", "dcn", "pnn"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)  # weights and sampled negatives are the same on every run


def _batch(n=16, seed=0, history_len=5, hard=3):
    """Random users whose positive item is 3 * their city: learnable from ``user_city`` alone."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, N_CITIES, n).astype(np.int32)
    item = 3 * city
    history = rng.integers(0, N_ITEMS, (n, history_len))
    history[rng.random((n, history_len)) < 0.4] = -1
    history = np.sort(history, axis=1)[:, ::-1]  # right-padded with -1, as the samples are
    x = {
        "history": np.ascontiguousarray(history, dtype=np.int32),
        "user_city": city,
        "user_type": rng.integers(0, 2, n).astype(np.int32),
        "device": rng.integers(0, 4, n).astype(np.int32),
        "hour": rng.integers(0, 24, n).astype(np.int32),
        "weekday": rng.integers(0, 7, n).astype(np.int32),
        "city_id": city,
        "item_id": item,
        "item_city": ITEM_CITY[item],
        "category_id": ITEM_CATEGORY[item],
        "item_prob": np.full(n, 1 / N_ITEMS, np.float32),
        "weight": rng.choice([1.0, 3.0], n).astype(np.float32),
    }
    if hard:
        negatives = rng.integers(0, N_ITEMS, (n, hard))
        negatives[:, -1] = -1
        x["hard_negatives"] = negatives.astype(np.int32)
        x["hard_negative_prob"] = np.full(n, 0.1, np.float32)
    return x


def _user_inputs(x):
    return {k: x[k] for k in ("history", "user_city", "user_type", "device", "hour", "weekday", "city_id")}


def _youtube(**kwargs):
    return YouTubeDNN(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], num_negatives=8, seed=1, **kwargs)


def _youtube_cosine(**kwargs):
    """The nightly form: cosine / temperature, mixed negatives, item city and category in the item vectors."""
    model = _youtube(temperature=0.1, in_batch_negatives=True, item_features=True, **kwargs)
    model.set_item_tables(ITEM_CITY, ITEM_CATEGORY)
    return model


def _two_tower(tower="mlp", **kwargs):
    model = TwoTower(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], tower=tower, temperature=0.1, **kwargs)
    model.set_item_tables(ITEM_CITY, ITEM_CATEGORY)
    return model


def _loss(model, x, **kwargs):
    return float(keras.ops.convert_to_numpy(model.compute_loss(x=x, y_pred=model(x), training=False, **kwargs)))


def _fit(model, x, **kwargs):
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    return model.fit(x, batch_size=16, epochs=10, shuffle=False, verbose=0, **kwargs).history["loss"]  # 3 steps an epoch


def _round_trip(model, x, tmp_path):
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.user_vectors(_user_inputs(x)), model.user_vectors(_user_inputs(x)))
    np.testing.assert_array_equal(loaded.item_vectors(), model.item_vectors())
    return loaded


def test_pooling_ignores_padding_and_gives_zeros_for_an_empty_history():
    values = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 9.0]]], np.float32)
    mask = np.array([[True, True, False], [False, False, False]])
    mean = keras.ops.convert_to_numpy(MaskedMeanPooling()(values, mask))
    np.testing.assert_allclose(mean, [[2.0, 3.0], [0.0, 0.0]])
    attention = AttentionPooling()
    out = keras.ops.convert_to_numpy(attention(np.zeros((2, 4), np.float32), values, mask))
    np.testing.assert_allclose(out, [[2.0, 3.0], [0.0, 0.0]], atol=1e-6)  # zero query: equal weights on valid rows
    query = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    one = keras.ops.convert_to_numpy(attention(query, values[:, :1], np.array([[True], [True]])))
    padded = keras.ops.convert_to_numpy(attention(query, values, np.array([[True, False, False]] * 2)))
    np.testing.assert_allclose(padded, one)  # padding changes nothing
    np.testing.assert_allclose(one, values[:, 0], rtol=1e-6)  # a single valid position takes all the weight


def test_youtube_dnn_fits_a_toy_task_and_round_trips(tmp_path):
    x = _batch(n=48)
    prob = np.linspace(1.0, 3.0, N_ITEMS) ** 0.75
    model = _youtube(neg_prob=prob)
    losses = _fit(model, x, sample_weight=x["weight"])
    assert np.isfinite(losses).all()
    assert np.mean(losses[-2:]) < 0.5 * np.mean(losses[:2]), losses
    users, items = model.user_vectors(_user_inputs(x)), model.item_vectors()
    assert users.shape == (48, DIM + 1) and items.shape == (N_ITEMS, DIM + 1)
    np.testing.assert_array_equal(users[:, -1], 1.0)  # the bias slot: user . item = the trained logit
    np.testing.assert_allclose(items[:, -1], keras.ops.convert_to_numpy(model.item_bias))
    loaded = _round_trip(model, x, tmp_path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.neg_prob), prob / prob.sum(), rtol=1e-6)


def test_youtube_dnn_logq_correction_and_accidental_hits():
    model = _youtube()
    x = _batch(n=4)
    users = model(x)
    pos, negatives = x["item_id"], np.array([1, 2, 4], np.int32)  # no positive (3 * city) among them

    def loss(q, negs=negatives):
        return keras.ops.convert_to_numpy(model.sampled_softmax_loss(users, pos, np.asarray(q, np.float32), negs))

    uniform = loss(np.full(4, 1 / N_ITEMS))
    u, items = keras.ops.convert_to_numpy(users), model.item_vectors()
    logits = np.concatenate([(u * items[pos]).sum(1, keepdims=True), u @ items[negatives].T], axis=1)
    expected = np.log(np.exp(logits).sum(1)) - logits[:, 0]
    np.testing.assert_allclose(uniform, expected, rtol=1e-5)  # equal q: the correction cancels out
    popular = loss(np.full(4, 0.5))  # a popular positive is pushed down by log(q)
    assert (popular > uniform + 1.0).all()
    with_hits = loss(np.full(4, 1 / N_ITEMS), np.append(negatives, pos[0]))
    np.testing.assert_allclose(with_hits[0], uniform[0], rtol=1e-5)  # a negative equal to the positive is ignored


def test_youtube_dnn_cosine_with_item_features_fits_a_toy_task_and_round_trips(tmp_path):
    x = _batch(n=48)
    model = _youtube_cosine(neg_prob=np.linspace(1.0, 3.0, N_ITEMS))
    model.set_batch_prob(np.bincount(x["item_id"], minlength=N_ITEMS) + 1e-6)
    losses = _fit(model, x)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-2:]) < 0.5 * np.mean(losses[:2]), losses
    users, items = model.user_vectors(_user_inputs(x)), model.item_vectors()
    assert users.shape == (48, DIM) and items.shape == (N_ITEMS, DIM)  # no bias slot
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)
    hits = (np.argsort(-users @ items.T, axis=1)[:, :3] == x["item_id"][:, None]).any(axis=1)
    assert hits.mean() > 0.8  # the positive is in the top 3 of 30
    loaded = _round_trip(model, x, tmp_path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.item_category), ITEM_CATEGORY)


def test_youtube_dnn_item_vectors_add_city_and_category():
    model = _youtube(item_features=True)
    model.set_item_tables(ITEM_CITY, ITEM_CATEGORY)
    model(_user_inputs(_batch(n=2)))  # build
    table, bias = (keras.ops.convert_to_numpy(w) for w in (model.item_table, model.item_bias))
    city = keras.ops.convert_to_numpy(model.city_embedding.embedding.embeddings)
    category = keras.ops.convert_to_numpy(model.category_embedding.embedding.embeddings)
    expected = table + city[ITEM_CITY] + category[ITEM_CATEGORY]
    np.testing.assert_allclose(model.item_vectors(), np.concatenate([expected, bias[:, None]], axis=1), rtol=1e-6)
    # The user tower pools the history's categories: two histories of different items of the same categories
    # differ only through the item ids, so changing one category changes the vector.
    x = _user_inputs(_batch(n=1))
    a = model.user_vectors({**x, "history": np.array([[1, 2]], np.int32)})
    other = ITEM_CATEGORY.copy()
    other[2] = (other[2] + 1) % N_CATEGORIES
    model.set_item_tables(ITEM_CITY, other)
    assert not np.allclose(model.user_vectors({**x, "history": np.array([[1, 2]], np.int32)}), a)


def test_youtube_dnn_mixed_negatives_are_corrected_by_the_mixture():
    model = _youtube_cosine(neg_prob=np.linspace(1.0, 3.0, N_ITEMS))
    counts = np.linspace(4.0, 1.0, N_ITEMS)
    model.set_batch_prob(counts)
    x = _batch(n=4)
    x["item_id"] = np.array([3, 3, 6, 9], np.int32)  # rows 0 and 1 share their positive
    users = model(x)
    negatives = np.array([1, 2, 3, 4], np.int32)  # 3 is rows 0 and 1's positive: an accidental hit there
    loss = keras.ops.convert_to_numpy(model.sampled_softmax_loss(users, x["item_id"], x["item_prob"], negatives))
    u, items = keras.ops.convert_to_numpy(users), model.item_vectors()
    neg_q, batch_q = (np.linspace(1.0, 3.0, N_ITEMS), counts)
    neg_q, batch_q = neg_q / neg_q.sum(), batch_q / batch_q.sum()
    columns = np.concatenate([x["item_id"], negatives])
    q = (4 * batch_q + 8 * neg_q) / (4 + 8)  # B = 4 in-batch, N = num_negatives = 8 sampled proposals
    logits = np.concatenate([(u * items[x["item_id"]]).sum(1, keepdims=True), u @ items[columns].T], axis=1) / 0.1
    logits -= np.log(np.concatenate([q[x["item_id"]][:, None], np.tile(q[columns], (4, 1))], axis=1))
    logits[:, 1:][columns[None, :] == x["item_id"][:, None]] = -np.inf  # itself, the shared positive, the hit
    np.testing.assert_allclose(loss, np.log(np.exp(logits).sum(1)) - logits[:, 0], rtol=1e-4)


def test_youtube_dnn_settings_and_tables_are_checked():
    with pytest.raises(ValueError, match=r"Received: temperature=0"):
        _youtube(temperature=0.0)
    with pytest.raises(ValueError, match="construct it with item_features=True"):
        _youtube().set_item_tables(ITEM_CITY, ITEM_CATEGORY)
    model = _youtube(item_features=True)
    with pytest.raises(ValueError, match="call `set_item_tables` first"):
        model.item_vectors()
    with pytest.raises(ValueError, match=r"`item_city` should have shape \(30,\). Received: shape=\(3,\)"):
        model.set_item_tables(np.zeros(3), ITEM_CATEGORY)
    with pytest.raises(ValueError, match=r"`batch_prob` should be 30 finite"):
        model.set_batch_prob(np.zeros(N_ITEMS))


def test_youtube_dnn_padding_and_empty_history():
    model = _youtube()
    x = _user_inputs(_batch(n=2))
    padded = model.user_vectors({**x, "history": np.array([[3, -1, -1], [-1, -1, -1]], np.int32)})
    short = model.user_vectors({**x, "history": np.array([[3], [-1]], np.int32)})
    np.testing.assert_allclose(padded, short, rtol=1e-6)
    empty = model.user_vectors({**x, "history": np.zeros((2, 0), np.int32)})
    np.testing.assert_allclose(empty[1], padded[1], rtol=1e-6)


@pytest.mark.parametrize("tower", TOWERS)
def test_two_tower_fits_a_toy_task_and_round_trips(tower, tmp_path):
    x = _batch(n=48)
    model = _two_tower(tower, pretrained_dim=4)
    model.set_pretrained(np.random.default_rng(1).normal(size=(N_ITEMS, 4)))
    losses = _fit(model, x)
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
    users, items = model.user_vectors(_user_inputs(x)), model.item_vectors()
    assert users.shape == (48, DIM) and items.shape == (N_ITEMS, DIM)
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)
    hits = (np.argsort(-users @ items.T, axis=1)[:, :3] == x["item_id"][:, None]).any(axis=1)
    assert hits.mean() > 0.8  # the toy task was learnt: the positive is in the top 3 of 30
    _round_trip(model, x, tmp_path)


def test_two_tower_padding_and_empty_history():
    model = _two_tower("pnn")
    x = _user_inputs(_batch(n=2))
    padded = model.user_vectors({**x, "history": np.array([[3, -1, -1], [-1, -1, -1]], np.int32)})
    short = model.user_vectors({**x, "history": np.array([[3], [-1]], np.int32)})
    np.testing.assert_allclose(padded, short, rtol=1e-5, atol=1e-6)
    empty = model.user_vectors({**x, "history": np.zeros((2, 0), np.int32)})
    np.testing.assert_allclose(empty[1], padded[1], rtol=1e-5, atol=1e-6)
    assert np.isfinite(empty).all()


def test_two_tower_in_batch_loss_logq_and_accidental_hits():
    model = _two_tower()
    x = _batch(n=4, hard=0)
    x["item_id"] = np.array([3, 3, 6, 9], np.int32)  # rows 0 and 1 share their positive
    x["item_city"], x["category_id"] = ITEM_CITY[x["item_id"]], ITEM_CATEGORY[x["item_id"]]
    x["weight"] = np.ones(4, np.float32)
    u = model.user_vectors(_user_inputs(x))
    logits = u @ model.item_vectors()[x["item_id"]].T / 0.1
    logits[0, 1] = logits[1, 0] = -np.inf  # the accidental hits
    expected = np.mean(np.log(np.exp(logits).sum(1)) - np.diag(logits))
    np.testing.assert_allclose(_loss(model, x), expected, rtol=1e-5)  # uniform q: the correction cancels out
    skewed = _loss(model, {**x, "item_prob": np.array([0.5, 0.5, 0.01, 0.01], np.float32)})
    assert abs(skewed - expected) > 0.1
    np.testing.assert_allclose(_loss(model, {**x, "weight": np.full(4, 2.0, np.float32)}), 2 * expected, rtol=1e-5)
    np.testing.assert_allclose(_loss(model, x, sample_weight=np.full(4, 3.0, np.float32)), 3 * expected, rtol=1e-5)


def test_two_tower_hard_negatives_add_logits_and_padding_is_masked():
    model = _two_tower("dcn")
    x = _batch(n=4, hard=0)
    base = _loss(model, x)
    padding = {"hard_negatives": np.full((4, 2), -1, np.int32), "hard_negative_prob": np.full(4, 0.1, np.float32)}
    np.testing.assert_allclose(_loss(model, {**x, **padding}), base, rtol=1e-6)
    same_as_positive = {**padding, "hard_negatives": np.stack([x["item_id"], np.full(4, -1)], axis=1).astype(np.int32)}
    np.testing.assert_allclose(_loss(model, {**x, **same_as_positive}), base, rtol=1e-6)
    real = {**padding, "hard_negatives": np.array([[1, -1], [2, 4], [5, -1], [7, 8]], np.int32)}
    assert _loss(model, {**x, **real}) > base  # more negatives in every row's softmax


def test_bad_arguments_say_what_was_received():
    with pytest.raises(ValueError, match=r"Received: tower='gru'"):
        TwoTower(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], tower="gru")
    with pytest.raises(ValueError, match=r"Received: n_items=0, embedding_dim=-2"):
        TwoTower(0, N_CITIES, N_CATEGORIES, -2, [16])
    with pytest.raises(ValueError, match=r"Received: hidden_units=\[16, 0\]"):
        YouTubeDNN(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16, 0])
    with pytest.raises(ValueError, match=r"Received: num_negatives=0"):
        YouTubeDNN(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], num_negatives=0)
    with pytest.raises(ValueError, match=r"Received: temperature=0"):
        TwoTower(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], temperature=0)
    with pytest.raises(ValueError, match=r"Received: shape=\(29,\)"):
        YouTubeDNN(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], neg_prob=np.ones(29))
    model = TwoTower(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16])
    with pytest.raises(ValueError, match="call `set_item_tables` first"):
        model.item_vectors()
    with pytest.raises(ValueError, match=r"`item_category` should have shape \(30,\). Received: shape=\(3,\)"):
        model.set_item_tables(ITEM_CITY, np.zeros(3))
    with pytest.raises(ValueError, match=r"pretrained_dim > 0. Received: shape=\(30, 4\)"):
        model.set_pretrained(np.zeros((N_ITEMS, 4)))


def test_pad_lists_left_aligned_keeps_the_newest():
    from training.recall import pad_lists

    out = pad_lists([[1, 2, 3, 4], [], [7]], width=3)
    assert out.tolist() == [[2, 3, 4], [-1, -1, -1], [7, -1, -1]]
    assert pad_lists([[1]], width=0).shape == (1, 0)


def test_itemknn_cosine_over_cooccurrence_by_hand():
    from training.recall import itemknn_lists, itemknn_similarity

    # Co-occurrences 0-1 (twice), 1-2, 3-4; a self pair and an id outside the catalogue are dropped.
    sim = itemknn_similarity(np.array([0, 1, 1, 3, 2, 9]), np.array([1, 0, 2, 4, 2, 0]), n_items=5)
    dense = sim.toarray()
    # c(0,1) = 2, c(0) = 2, c(1) = 3: 2 / sqrt(6); c(1,2) = 1, c(2) = 1: 1 / sqrt(3); c(3,4) = 1: 1.
    np.testing.assert_allclose(dense[0, 1], 2 / np.sqrt(6), rtol=1e-6)
    np.testing.assert_allclose(dense[1, 2], 1 / np.sqrt(3), rtol=1e-6)
    np.testing.assert_allclose(dense, dense.T)
    assert dense[3, 4] == 1.0 and dense[0, 2] == 0.0 and np.all(np.diag(dense) == 0)
    popular = np.array([4, 3, 2, 1, 0])  # ties (no co-occurrence) go by popularity
    lists = itemknn_lists(sim, [[0], [0, 2], [], [3, 0]], k=3, popular=popular, last=1)
    assert [list(r) for r in lists] == [[1, 4, 3], [1, 4, 3], [4, 3, 2], [1, 4, 3]]  # last=1: only item 0 of [3, 0]
    seen = itemknn_lists(sim, [[3]], k=3, popular=popular, exclude_seen=True)
    assert list(seen[0]) == [4, 2, 1]
