"""The ranking models' regularisation: embedding L2 over whole tables or looked-up rows, the tables' initialisation,
batch normalisation in the MLP, and early stopping on the newest train rows with the best weights kept."""

import dataclasses

import keras
import mlflow
import numpy as np
import pytest

from recpipe.config import RankingConfig
from tests.training_tests import ranking_models
from tests.training_tests.test_item2vec import DS
from tests.training_tests.test_ranking_train import ROWS, run_cfg  # noqa: F401 (a fixture)
from training import metrics, ranking
from training.layers.blocks import MLP, CategoricalEmbedding


def _table(layer: CategoricalEmbedding) -> np.ndarray:
    return np.asarray(layer.embedding.embeddings)


def test_table_l2_penalises_the_whole_table_as_fuxictr_does():
    layer = CategoricalEmbedding(50, 4, oov_buckets=2, l2=0.3)
    layer(np.array([0, 1]))
    # lambda / 2 * ||W||^2 over all 52 rows, not only the two looked up.
    np.testing.assert_allclose(float(sum(layer.losses)), 0.15 * (_table(layer) ** 2).sum(), rtol=1e-5)


def test_batch_l2_penalises_the_looked_up_rows_only():
    layer = CategoricalEmbedding(50, 4, l2=0.3, l2_scope="batch")
    ids = np.array([3, 3, 7])
    layer(ids)
    rows = _table(layer)[ids]
    np.testing.assert_allclose(float(sum(layer.losses)), 0.3 * (rows**2).sum(axis=1).mean(), rtol=1e-5)


def test_no_l2_adds_no_loss_and_init_stddev_sets_the_tables_spread():
    layer = CategoricalEmbedding(2000, 8, init_stddev=1e-4)
    layer(np.array([0]))
    assert not layer.losses
    assert 0.8e-4 < _table(layer).std() < 1.2e-4
    default = CategoricalEmbedding(2000, 8)
    default(np.array([0]))
    assert 0.02 < default.embedding.embeddings.numpy().std() < 0.04  # Keras's uniform +-0.05


def test_bad_embedding_settings_say_what_was_received():
    with pytest.raises(ValueError, match=r"Received: l2=0.1, l2_scope='rows', init_stddev=None"):
        CategoricalEmbedding(5, 2, l2=0.1, l2_scope="rows")
    with pytest.raises(ValueError, match=r"init_stddev=0"):
        CategoricalEmbedding(5, 2, init_stddev=0)
    with pytest.raises(ValueError, match=r"received 0.1, 0.0001, 'rows'"):
        RankingConfig(embedding_l2=0.1, embedding_l2_scope="rows")
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 0.5\), received 0.5"):
        RankingConfig(validation_fraction=0.5)


def test_mlp_batch_norm_normalises_each_layer_over_the_batch():
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(256, 6)).astype("float32")
    mlp = MLP([16, 8], batch_norm=True)
    out = mlp(x, training=True)
    # Each layer's pre-activation is normalised over the batch (gamma 1, beta 0 at the start): a ReLU of a
    # standardised value is zero for about half the rows of every unit.
    zeros = (np.asarray(out) == 0).mean(axis=0)
    assert np.all((zeros > 0.3) & (zeros < 0.7)), zeros
    assert [w.path.split("/")[-1] for w in mlp.weights if "batch_norm" in w.path][:4] == [
        "gamma",
        "beta",
        "moving_mean",
        "moving_variance",
    ]
    plain = MLP([16, 8])
    plain(x)
    assert not any("batch_norm" in w.path for w in plain.weights)
    assert MLP.from_config(mlp.get_config()).batch_norm


def test_ranking_settings_reach_every_table_and_the_mlp():
    model = ranking_models.make("deepfm_batch_norm")
    tables = [layer for layer in model._flatten_layers() if isinstance(layer, CategoricalEmbedding)]
    assert tables and all(t.l2_scope == "batch" and t.l2 == 1e-4 and t.init_stddev is None for t in tables)
    assert model.mlp.batch_norm and any("batch_norm" in w.path for w in model.weights)


def _split(n: int, seed: int) -> ranking.RankingSplit:
    x, y = ranking_models.batch(n, seed)
    return ranking.RankingSplit(x, y, np.arange(n).astype(str), np.arange(n) % 7, np.arange(n) * 1000)


def test_holdout_keeps_the_newest_rows_for_validation():
    split = _split(100, 1)
    split = dataclasses.replace(split, ts=np.random.default_rng(3).permutation(100) * 1000)
    rows, valid = ranking.holdout(split, 0.1)
    assert len(valid.labels) == 10 and len(rows.labels) == 90
    assert valid.ts.min() > rows.ts.max()
    assert sorted(np.r_[rows.event_ids, valid.event_ids]) == sorted(split.event_ids)
    assert ranking.holdout(split, 0.0) == (split, None)
    one_label = dataclasses.replace(split, labels=np.ones(100, np.float32))
    assert ranking.holdout(one_label, 0.1) == (one_label, None)


def test_early_stopping_keeps_the_best_epochs_weights():
    cfg = dataclasses.replace(
        ranking_models.CONFIG,
        ranking=dataclasses.replace(ranking_models.CONFIG.ranking, batch_size=32, learning_rate=0.05, patience=2),
    )
    train, valid = _split(400, 1), _split(200, 2)
    model = ranking.build_model("deepfm", cfg, ranking_models.SPECS)
    model.set_numeric_stats(train.features)
    history = ranking._compile_fit(model, cfg, train, 8, valid)
    val_auc = history["val_auc"]
    assert 2 <= len(val_auc) <= 8 and "learning_rate" in history
    # The weights kept are the best epoch's: their validation AUC is the best one logged.
    got = metrics.ranking_metrics(valid.labels, ranking.predict(model, valid))["auc"]
    assert got == pytest.approx(max(val_auc), abs=1e-9)
    stopped = ranking.stopping_metrics(history, valid)
    assert stopped["best_epoch"] == np.argmax(val_auc) + 1 and stopped["epochs_run"] == len(val_auc)
    # Each epoch without a better AUC divides the next one's learning rate (logged per epoch) by 10.
    lrs = history["learning_rate"]
    for epoch in range(len(val_auc) - 1):
        improved = epoch == 0 or val_auc[epoch] > max(val_auc[:epoch]) + 1e-6
        assert lrs[epoch + 1] == pytest.approx(lrs[epoch] * (1 if improved else 0.1), rel=1e-5), (epoch, val_auc, lrs)


def test_nightly_training_stops_early_on_the_newest_train_rows(run_cfg):  # noqa: F811
    from training import train

    keras.backend.clear_session()
    cfg = dataclasses.replace(
        run_cfg, ranking=dataclasses.replace(run_cfg.ranking, validation_fraction=0.2, epochs=6, batch_norm=True)
    )
    result = train.train("deepfm", cfg, DS)
    got = result["metrics"]
    assert got["train_examples"] + got["validation_examples"] + got["eval_examples"] == ROWS
    assert 1 <= got["best_epoch"] <= got["epochs_run"] <= 6 and got["validation_auc"] > 0.6
    assert got["auc"] > 0.7
    logged = mlflow.tracking.MlflowClient().get_metric_history(result["run_id"], "train_val_auc")
    assert len(logged) == got["epochs_run"]
    assert got["bayes_gap_closed"] == pytest.approx((got["auc"] - got["lr_auc"]) / (got["oracle_auc"] - got["lr_auc"]), rel=1e-9)


def test_bayes_gap_closed_by_hand():
    assert ranking.bayes_gap_closed({"auc": 0.8, "lr_auc": 0.7, "oracle_auc": 0.9}) == pytest.approx({"bayes_gap_closed": 0.5})
    assert ranking.bayes_gap_closed({"auc": 0.65, "lr_auc": 0.7, "oracle_auc": 0.9})["bayes_gap_closed"] < 0
    assert ranking.bayes_gap_closed({"auc": 0.8, "lr_auc": 0.7}) == {}  # no oracle (real data)
    assert ranking.bayes_gap_closed({"auc": 0.8, "lr_auc": 0.7, "oracle_auc": 0.7}) == {}
