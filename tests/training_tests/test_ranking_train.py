"""The ranking training entry point on a hand-made lake: every recipe fits, is evaluated beside the LR baseline and
the oracle, is registered with its serving export and side models, and warm-starts from its champion."""

import dataclasses
import json

import mlflow
import numpy as np
import pytest
import xgboost

from recpipe import contracts, lake, synthetic, tracking
from tests.training_tests.test_item2vec import DS, _write
from training import ranking
from training.export import load_serving

N_USERS, N_ITEMS, ROWS = 40, 24, 1200
DAY_MS = 86_400_000


def _ranking_lake(cfg) -> None:
    """Clicks depend on the item's category (0-2 good, 3-5 bad) and on city match; 3 train days before DS, then DS."""
    rng = np.random.default_rng(5)
    category = np.arange(N_ITEMS) % 6
    items = {
        "item_id": list(range(N_ITEMS)),
        "city_id": [int(i % 4) for i in range(N_ITEMS)],
        "category_id": category.tolist(),
        "price": [100.0] * N_ITEMS,
        "created_ts": [0] * N_ITEMS,
        "image": [synthetic._image(rng, int(c)) for c in category],
    }
    _write(cfg, contracts.RAW_ITEMS, items)
    users = {"user_id": list(range(N_USERS)), "city_id": [u % 4 for u in range(N_USERS)], "user_type": ["C"] * N_USERS}
    _write(cfg, contracts.RAW_USERS, {**users, "device": ["pc"] * N_USERS, "registered_ts": [0] * N_USERS})
    user, item = rng.integers(0, N_USERS, ROWS), rng.integers(0, N_ITEMS, ROWS)
    match = (user % 4 == item % 4).astype(int)
    p = 1 / (1 + np.exp(-(-1.5 + 2.0 * (category[item] < 3) + 1.0 * match)))
    day0 = lake.day_bounds_ms(DS)[0]
    day = rng.integers(-3, 1, ROWS)  # -3..-1 train, 0 eval
    rows = {
        "split": np.where(day < 0, "train", "eval").tolist(),
        "event_id": [f"e{i}" for i in range(ROWS)],
        "ts": (day0 + day * DAY_MS + rng.integers(0, DAY_MS, ROWS)).tolist(),
        "user_id": user.tolist(),
        "item_id": item.tolist(),
        "label": (rng.random(ROWS) < p).astype(float).tolist(),
        "user_city": (user % 4).tolist(),
        "user_type": (user % 2).tolist(),
        "device": [2] * ROWS,
        "item_city": (item % 4).tolist(),
        "category_id": category[item].tolist(),
        "price_bucket": [3] * ROWS,
        "position": rng.integers(0, 10, ROWS).tolist(),
        "hour": rng.integers(0, 24, ROWS).tolist(),
        "city_match": match.tolist(),
        **{name: rng.integers(0, 5, ROWS).astype(float).tolist() for name in contracts.window_features()},
    }
    _write(cfg, contracts.RANKING_SAMPLES, rows)
    oracle = lake.partition_uri(cfg.lake_root, contracts.ORACLE_EXPOSURES, DS)  # JSON lines, as the generator writes
    lines = [json.dumps({"event_id": f"e{i}", "p_click": float(p[i])}) for i in range(ROWS) if day[i] == 0]
    lake.write_text(oracle, "part-0.json", "\n".join(lines) + "\n")
    lake.write_text(oracle, lake.SUCCESS, "")


@pytest.fixture
def run_cfg(cfg):
    _ranking_lake(cfg)
    ranking_cfg = dataclasses.replace(cfg.ranking, epochs=3, batch_size=64, learning_rate=0.01)
    return dataclasses.replace(cfg, ranking=ranking_cfg, cnn_dnn=dataclasses.replace(cfg.cnn_dnn, pretrain_epochs=3))


@pytest.mark.parametrize("key", ["fnn", "xgb_wide_deep", "cnn_dnn"])
def test_each_recipe_trains_evaluates_and_registers(run_cfg, tmp_path, key):
    from training import train

    result = train.train(key, run_cfg, DS)
    got = result["metrics"]
    # The planted rule is learnable: well above chance, and the oracle's AUC is reported beside it.
    assert got["auc"] > 0.7 and got["lr_auc"] > 0.7 and got["oracle_auc"] > 0.7, got
    assert 0.0 < got["gauc_coverage"] <= 1.0 and got["calibration"] > 0
    slices = {k for k in got if k.startswith("auc__")}
    assert {"auc__city_0", "auc__category_0", "auc__user_type_C"} <= slices, slices
    # The newest 5% of the train rows are held out to stop early (the embedded config's validation_fraction).
    assert got["eval_examples"] + got["train_examples"] + got["validation_examples"] == ROWS
    assert 1 <= got["best_epoch"] <= got["epochs_run"] <= run_cfg.ranking.epochs
    version = result["version"]
    assert version == 1
    run = mlflow.get_run(result["run_id"])
    assert run.data.metrics["gauc"] == got["gauc"]
    local = mlflow.artifacts.download_artifacts(run_id=result["run_id"], artifact_path="serving", dst_path=str(tmp_path))
    split = ranking.load_split(run_cfg, DS, "eval")
    names = [f["name"] for f in ranking.feature_specs(run_cfg, DS)]
    served = load_serving(local)["predict_ctr"]({n: split.features[n][:8] for n in names})["click_probability"]
    model = mlflow.keras.load_model(f"models:/{tracking.model_name(run_cfg, key)}/{version}")
    np.testing.assert_allclose(served, model.predict({n: split.features[n][:8] for n in names}, verbose=0), rtol=1e-5)
    if key == "fnn":
        assert got["fm_auc"] > 0.7
    if key == "xgb_wide_deep":  # the booster, in XGBoost's own JSON, gives the leaves the model walks itself
        path = mlflow.artifacts.download_artifacts(
            run_id=result["run_id"], artifact_path="gbdt/model.json", dst_path=str(tmp_path)
        )
        booster = xgboost.Booster(model_file=path)
        assert (
            booster.num_boosted_rounds() == run_cfg.xgb_wide_deep.n_trees and got["gbdt_eval_auc"] > 0.55
        )  # it sees city_match, not the category
    if key == "cnn_dnn":
        assert 0.0 <= got["image_pretrain_accuracy"] <= 1.0 and got["image_items_with_image"] == N_ITEMS


def test_incremental_run_warm_starts_from_the_champion_on_the_newest_day(run_cfg):
    from indexing.promote import decide, promote
    from training import evaluate, train

    first = train.train("deepfm", run_cfg, DS)
    evaluate.evaluate("deepfm", run_cfg, DS, first["run_id"])
    promote("deepfm", run_cfg, decide("deepfm", run_cfg, first["run_id"]))
    warm_cfg = dataclasses.replace(run_cfg, ranking=dataclasses.replace(run_cfg.ranking, incremental=True, seed=99))
    second = train.train("deepfm", warm_cfg, DS)
    tags = mlflow.get_run(second["run_id"]).data.tags
    assert tags["warm_start"] == "champion v1"
    newest = ranking.load_split(run_cfg, DS, "train").since(ranking.incremental_start_ms(warm_cfg, DS))
    fitted = second["metrics"]["train_examples"] + second["metrics"]["validation_examples"]
    assert fitted == len(newest.labels) and second["metrics"]["train_examples"] < first["metrics"]["train_examples"]
    champion = mlflow.keras.load_model(f"models:/{tracking.model_name(run_cfg, 'deepfm')}/1")
    warm = mlflow.keras.load_model(f"models:/{tracking.model_name(run_cfg, 'deepfm')}/2")
    assert warm.get_config() == champion.get_config()  # same architecture and vocabularies, new weights
    moved = [
        not np.allclose(a.numpy(), b.numpy()) for a, b in zip(warm.trainable_weights, champion.trainable_weights, strict=True)
    ]
    assert all(moved[-2:])  # the output layer trained on
    kept = [
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(warm.non_trainable_weights, champion.non_trainable_weights, strict=True)
    ]
    assert all(kept)  # the champion's standardisation statistics, not the new day's
    # A model whose features differ is not warm-started: the run says why and trains from scratch.
    assert "features differ" in ranking.compatible(champion, ranking.feature_specs(run_cfg, DS)[1:])
