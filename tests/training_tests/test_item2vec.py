"""Item2Vec: the CBOW model, recency-weighted user vectors, business-line (multi-line) recall, config, one real run."""

import dataclasses
import json
from pathlib import Path

import keras
import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recpipe import contracts, lake, tracking
from recpipe.config import PACKAGE_DIR, ConfigError, Item2VecConfig, load_config
from recpipe.tables import load_item_vectors, load_query_table, load_query_vectors
from training import recall
from training.models.item2vec import Item2VecCBOW


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_cbow_fits_one_step_and_round_trips(tmp_path):
    model = Item2VecCBOW(20, 4, num_negatives=3, neg_prob=np.arange(20) + 1.0, seed=1)
    x = {"context": np.array([[1, 2, -1], [3, -1, -1], [5, 6, 7]]), "target": np.array([4, 5, 8])}
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model(x)  # build
    before = model.item_vectors().copy()
    loss = model.fit(x, batch_size=3, epochs=1, verbose=0).history["loss"]
    after = model.item_vectors()
    assert np.isfinite(loss).all() and after.shape == (20, 4)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(before[[1, 2, 3, 5, 6, 7]], after[[1, 2, 3, 5, 6, 7]])  # the context rows moved
    np.testing.assert_array_equal(before[15], after[15])  # an item in no context did not

    model.save(tmp_path / "cbow.keras")
    loaded = keras.saving.load_model(tmp_path / "cbow.keras")
    assert type(loaded) is Item2VecCBOW and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.item_vectors(), model.item_vectors())
    np.testing.assert_array_equal(_np(loaded.output_embedding.embeddings), _np(model.output_embedding.embeddings))
    np.testing.assert_allclose(_np(loaded.neg_prob), (np.arange(20) + 1.0) / 210, rtol=1e-6)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_cbow_context_mean_and_loss_by_hand():
    model = Item2VecCBOW(6, 3, num_negatives=2)
    h = _np(model({"context": np.array([[1, 2, -1], [4, 99, -1], [-1, -1, -1]])}))
    table = _np(model.input_embedding.embeddings)
    np.testing.assert_allclose(h, [(table[1] + table[2]) / 2, table[4], np.zeros(3)], rtol=1e-6)  # pads and 99 ignored

    out = _np(model.output_embedding.embeddings)
    target, negatives = np.array([3, 5, 0]), np.array([0, 2])
    loss = _np(model.negative_sampling_loss(h, target, negatives))

    def log_sigmoid(z):
        return -np.log1p(np.exp(-z))

    expected = -log_sigmoid((h * out[target]).sum(1)) - log_sigmoid(-(h @ out[negatives].T)).sum(1)
    expected[2] = -log_sigmoid(0.0) - log_sigmoid(0.0)  # row 2: target 0 is also drawn, that negative is left out
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_cbow_learns_which_items_occur_together():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 2, 400)
    rows = np.stack([5 * g + rng.permutation(5)[:3] for g in groups])  # 3 items of one group: target, 2 context
    model = Item2VecCBOW(10, 4, num_negatives=4, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    model.fit({"target": rows[:, 0], "context": rows[:, 1:]}, batch_size=32, epochs=10, verbose=0)
    v = model.item_vectors()
    sim = v @ v.T
    same = np.equal.outer(np.arange(10) // 5, np.arange(10) // 5)
    assert sim[same & ~np.eye(10, dtype=bool)].min() > sim[~same].max(), sim.round(2)


def test_cbow_under_mixed_precision_gives_float32_vectors():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = Item2VecCBOW(8, 4, num_negatives=2, seed=1)
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        x = {"context": np.array([[1, 2], [3, -1]]), "target": np.array([4, 5])}
        assert np.isfinite(model.fit(x, epochs=1, verbose=0).history["loss"]).all()
        assert model(x).dtype == "float32" and model.item_vectors().dtype == np.float32
    finally:
        keras.config.set_dtype_policy(previous)


def test_bad_cbow_arguments_say_what_was_received():
    with pytest.raises(ValueError, match=r"Received: n_items=0, num_negatives=-1"):
        Item2VecCBOW(0, 4, num_negatives=-1)
    with pytest.raises(ValueError, match=r"`neg_prob` should be 5 .* Received: shape=\(4,\)"):
        Item2VecCBOW(5, 4, neg_prob=np.ones(4))


def test_recency_weights_and_user_vectors_by_hand():
    np.testing.assert_allclose(recall.history_weights(3, "recency", 1.0), [0.25, 0.5, 1.0])  # newest last, age 0
    np.testing.assert_allclose(recall.history_weights(3, "recency", 2.0), [0.5, 0.5**0.5, 1.0])
    np.testing.assert_array_equal(recall.history_weights(3, "mean"), [1.0, 1.0, 1.0])
    items = np.eye(3, dtype=np.float32)
    histories = [[0, 1, 2], [0, 99, 2], [99]]
    np.testing.assert_allclose(recall.user_vectors(items, histories[:1]), [[1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    recency = recall.user_vectors(items, histories, "recency", 1.0)
    # Weights 1/4, 1/2, 1 over 7/4; an unknown id (99) is skipped but keeps its place: 1/4 and 1 over 5/4.
    np.testing.assert_allclose(recency, [[1 / 7, 2 / 7, 4 / 7], [0.2, 0.0, 0.8], [0.0, 0.0, 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="received 'latest'"):
        recall.history_weights(3, "latest")
    with pytest.raises(ValueError, match="received 0"):
        recall.history_weights(3, "recency", 0)


def test_line_quotas_by_hand():
    assert recall.line_quotas({1: 6, 2: 3, 3: 1}, 10) == {1: 6, 2: 3, 3: 1}
    # Shares 3, 1.5, 0.5 of 5: line 3 gets its one slot, lines 1 and 2 share 4 as 6:3 -> 2.67, 1.33 -> 3, 1.
    assert recall.line_quotas({1: 6, 2: 3, 3: 1}, 5) == {1: 3, 2: 1, 3: 1}
    assert recall.line_quotas({1: 19, 2: 1}, 10) == {1: 9, 2: 1}
    assert recall.line_quotas({1: 1, 2: 1}, 3) == {1: 2, 2: 1}  # equal remainders: the smaller line id
    assert recall.line_quotas({4: 1, 1: 5, 3: 3, 2: 3}, 2) == {1: 1, 2: 1}  # more lines than slots: the busiest
    assert recall.line_quotas({}, 5) == {}


def test_merge_lines_orders_by_score_drops_duplicates_and_fills_up():
    ranked = {1: [(10, 0.9), (11, 0.5), (12, 0.4)], 2: [(21, 0.5), (10, 0.7), (22, 0.6)], 3: [(30, 0.95)]}
    # Line 1 gives 10, 11; line 2 gives 21, 10 (a duplicate: 0.9 kept); line 3 has one of its 2 slots filled.
    merged = recall.merge_lines(ranked, {1: 2, 2: 2, 3: 2}, fallback=[11, 40, 30, 41, 42], k=6)
    assert merged == [30, 10, 11, 21, 40, 41]  # 11 and 21 tie at 0.5: the smaller id first
    assert recall.merge_lines(ranked, {1: 3}, fallback=[1, 2], k=2) == [10, 11]


# Items 0-3 are line 0, 4-7 line 1, 8 line 2, 9 has no line (category -1).
VECTORS = np.array(
    [[1, 0], [0.9, 0.1], [0.5, 0.5], [0, 1], [0, 1], [0.2, 0.8], [0.6, 0.1], [0.3, 0.3], [-1, 0], [0, 0.5]], np.float32
)
CATEGORY = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, -1])


def test_multi_line_recommendations_by_hand():
    histories = [[0, 0, 0, 4], [8, 9]]
    lists = recall.multi_line_recommendations(VECTORS, histories, CATEGORY, 4)
    # User 0: 3 clicks in line 0 (vector (1, 0)) and 1 in line 1 (vector (0, 1)), so quotas 3 and 1.
    # Line 0 scores items 0-3 at 1, .9, .5, 0; line 1 scores items 4-7 at 1, .8, .1, .3. Items 0 and 4 tie at 1.
    assert lists[0] == [0, 4, 1, 2]
    # User 1: item 9 has no line, so line 2 alone (item 8) gets all 4 slots but has one item; the single
    # vector (mean of (-1, 0) and (0, .5)) fills up: it scores 8 at .5, 9 at .125, 3 and 4 at .25.
    assert lists[1] == [8, 3, 4, 9]
    seen = recall.multi_line_recommendations(VECTORS, histories, CATEGORY, 4, exclude=histories)
    assert seen[0] == [1, 5, 2, 3]  # 0 and 4 were seen: next best of each line, still 3 + 1
    # Recency with a half-life of 1 click: line 0's vector is (.5 * (1, 0) + 1 * (0, 1)) / 1.5 = (1/3, 2/3), which
    # scores items 0-3 at .33, .37, .5, .67.
    assert recall.multi_line_recommendations(VECTORS, [[0, 3]], CATEGORY, 2, scheme="recency", half_life=1.0) == [[3, 2]]


def _eval_set(histories, targets, item_category, user_city):
    n = len(item_category)
    features = {"user_city": np.asarray(user_city, np.int32)}
    return recall.RecallEvalSet(np.arange(len(targets)), histories, targets, {}, features, item_category, n, np.arange(n), {})


def test_evaluate_lists_scores_each_k_from_its_own_list(cfg):
    small = dataclasses.replace(
        cfg,
        recall_eval=dataclasses.replace(cfg.recall_eval, ks=(1, 2), slice_k=2),
        item2vec=dataclasses.replace(cfg.item2vec, top_k=2),
    )
    ev = _eval_set([[0], [1]], [[5], [6, 7]], np.array([0, 0, 0, 0, 0, 1, 1, 2]), [3, 4])
    with pytest.raises(ValueError, match=r"for every k in \[1, 2\], received k=\[2\]"):
        recall.evaluate_lists(small, {2: [[5, 6], [6, 0]]}, ev)
    out = recall.evaluate_lists(small, {1: [[4], [7]], 2: [[5, 6], [6, 0]]}, ev)
    assert out["recall_at_1"] == 0.25 and out["hr_at_1"] == 0.5  # user 1 found 7 of 6, 7 in its top-1 list
    assert out["recall_at_2"] == 0.75 and out["hr_at_2"] == 1.0
    assert out["coverage_at_1"] == 2 / 8 and out["coverage_at_2"] == 3 / 8
    assert out["recall_at_2__city_3"] == 1.0 and out["recall_at_2__city_4"] == 0.5
    assert out["recall_at_2__category_1"] == 1.0 and out["recall_at_2__category_2"] == 0.0
    assert "mean_target_rank" not in out


def _config(tmp_path, item2vec: str):
    path = tmp_path / "c.yaml"
    path.write_text(f"lake_root: /x\nmlflow_tracking_uri: sqlite:///x\nmlflow_artifact_root: /x\nitem2vec:\n{item2vec}")
    return path


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("  mode: sg\n", r"item2vec: mode must be one of skipgram, cbow; received 'sg'"),
        ("  user_vector: last\n", r"item2vec: user_vector must be one of mean, recency; received 'last'"),
        ("  recency_half_life: 0\n", r"item2vec: recency_half_life must be positive \(in clicks\), received 0.0"),
        ("  cbow_negatives: 0\n", r"item2vec: cbow_negatives must be positive, received 0"),
        ("  multi_line: yes please\n", r"item2vec.multi_line: expected bool, received 'yes please'"),
    ],
)
def test_item2vec_config_errors_say_what_was_received(tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, setting))


def test_item2vec_config_defaults_and_environments(tmp_path, monkeypatch):
    default = Item2VecConfig()
    assert (default.mode, default.user_vector, default.multi_line) == ("skipgram", "mean", False)
    loaded = load_config(_config(tmp_path, "  mode: cbow\n  user_vector: recency\n  recency_half_life: 5\n  multi_line: true\n"))
    assert (loaded.item2vec.mode, loaded.item2vec.recency_half_life, loaded.item2vec.multi_line) == ("cbow", 5.0, True)
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", "/x")  # production.yaml reads both; their values do not matter here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x")
    production = load_config(PACKAGE_DIR / "conf" / "production.yaml")
    assert (production.item2vec.mode, production.item2vec.multi_line) == ("skipgram", True)
    local = load_config(PACKAGE_DIR / "conf" / "local.yaml").item2vec
    assert (local.mode, local.user_vector, local.multi_line) == ("skipgram", "mean", True)


# An end-to-end run on a hand-made lake: items 0-9 are line 0, 10-19 line 1; clicks co-occur in the groups
# 0-4, 5-9, 10-14 and 15-19.
DS = "2026-11-04"


def _write(cfg, contract, rows: dict):
    """One complete partition of day DS: JSON lines for raw datasets, else Parquet with the contract's types."""
    uri = lake.partition_uri(cfg.lake_root, contract, DS)
    if contract.name.startswith("raw/"):
        lines = [json.dumps(dict(zip(rows, values, strict=True))) for values in zip(*rows.values(), strict=True)]
        lake.write_text(uri, "part-0.json", "\n".join(lines) + "\n")
    else:
        Path(lake.local_path(uri)).mkdir(parents=True)
        kinds = {c.name: pa.type_for_alias(c.type.removeprefix("array<").removesuffix(">")) for c in contract.schema}
        kinds |= {c.name: pa.list_(kinds[c.name]) for c in contract.schema if c.type.startswith("array<")}
        pq.write_table(pa.table({k: pa.array(v, kinds[k]) for k, v in rows.items()}), f"{lake.local_path(uri)}/part-0.parquet")
    lake.write_text(uri, lake.SUCCESS, "")


def _small_lake(cfg):
    rng = np.random.default_rng(3)
    rows = [5 * g + rng.permutation(5)[:3] for g in rng.integers(0, 4, 800)]  # target and 2 context items
    cbow = {"session_id": [f"s{i}" for i in range(800)], "target": [int(r[0]) for r in rows]}
    cbow["context"] = [[int(i) for i in r[1:]] for r in rows]
    _write(cfg, contracts.ITEM2VEC_CBOW, cbow)
    _write(cfg, contracts.RAW_ITEMS, {"item_id": list(range(20)), "category_id": [0] * 10 + [1] * 10})
    clicks = np.bincount(cbow["target"], minlength=20)
    prob = (clicks + 1) ** 0.75
    popularity = {"item_id": list(range(20)), "clicks": clicks.tolist(), "neg_prob": (prob / prob.sum()).tolist()}
    _write(cfg, contracts.ITEM_POPULARITY, popularity)
    # The targets are the unseen items of the groups each user clicked in.
    users = {
        "user_id": [1, 2, 3, 4],
        "history": [[0, 1, 2], [5, 6, 7, 15, 16, 17], [10, 11, 12], [0, 1, 2, 15, 16, 17]],
        "targets": [[3, 4], [8, 9, 18, 19], [13, 14], [3, 18]],
        "action_items": [[3], [], [13, 14], []],  # users 1 and 3 applied for some of the items they clicked
        "action_events": [["apply"], [], ["apply", "call"], []],
    }
    users.update({name: [0, 0, 1, 1] for name in recall.USER_FEATURES})
    _write(cfg, contracts.RECALL_EVAL, users)


def test_train_runs_cbow_with_multi_line_recall_and_logs_both_metrics(cfg):
    from training import train

    _small_lake(cfg)
    run_cfg = dataclasses.replace(
        cfg,
        item2vec=dataclasses.replace(
            cfg.item2vec,
            mode="cbow",
            multi_line=True,
            user_vector="recency",
            recency_half_life=2.0,
            embedding_dim=8,
            cbow_negatives=4,
            epochs=10,
            batch_size=32,
            learning_rate=0.02,
            top_k=4,
        ),
        recall_eval=dataclasses.replace(cfg.recall_eval, ks=(2, 4), slice_k=4, exclude_seen=True),
    )
    result = train.train("item2vec", run_cfg, DS)
    got = result["metrics"]
    items, queries = load_item_vectors(result["run_id"]), load_query_vectors(result["run_id"])
    eval_set = recall.load_eval_set(run_cfg, DS)
    np.testing.assert_allclose(queries, recall.item2vec_queries(run_cfg, items, eval_set.histories), rtol=1e-6)
    # The query table also carries each eval user's city: what the index build measures city filtering with.
    logged_queries = load_query_table(result["run_id"])
    np.testing.assert_array_equal(logged_queries["user_id"], eval_set.user_ids)
    np.testing.assert_array_equal(logged_queries["user_city"], eval_set.features["user_city"])
    single = recall.evaluate_queries(run_cfg, queries, items, eval_set)
    positions = recall.position_metrics(queries, items, eval_set)  # from the single vector: a list has no full ranking
    assert {f"single_{k}": v for k, v in single.items() if k not in positions} == {
        k: v for k, v in got.items() if k.startswith("single_")
    }
    assert {k: got[k] for k in positions} == positions
    # Per behaviour: 2 + 4 + 2 + 2 clicked items, 2 applied for (users 1 and 3), 1 called about.
    assert (got["rows__event_click"], got["rows__event_apply"], got["rows__event_call"]) == (10.0, 2.0, 1.0)
    assert "rows__event_im" not in got  # nobody sent an IM that day
    assert 0.0 <= got["recall_auc__event_apply"] <= 1.0 and got["recall_auc"] == got["recall_auc__event_click"]
    # The champion path (training.evaluate) scores the same lists under the same names.
    assert recall.evaluate_vectors(run_cfg, items, eval_set) == {k: got[k] for k in single}
    # The item-kNN reference is measured on the same users, beside popularity.
    assert 0.0 <= got["itemknn_recall_at_4"] <= 1.0 and "popularity_recall_at_4" in got
    # Each line's vector finds its group's unseen items: 4 slots for one line, 2 + 2 for two lines.
    assert got["recall_at_4"] == 1.0, got
    registered = mlflow.keras.load_model(f"models:/{tracking.model_name(run_cfg, 'item2vec')}/{result['version']}")
    assert type(registered) is Item2VecCBOW
    np.testing.assert_array_equal(registered.item_vectors(), items)
    logged = mlflow.get_run(result["run_id"]).data
    assert logged.params["item2vec.mode"] == "cbow" and logged.metrics["single_recall_at_4"] == got["single_recall_at_4"]
