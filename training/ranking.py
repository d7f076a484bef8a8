"""Ranking models: fitting Wide&Deep on the ranking samples and evaluating any click model on the eval split."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pyarrow.compute as pc

from recpipe import contracts, lake
from recpipe.config import Config
from training import data, metrics
from training.compute import EpochTimer
from training.models.wide_deep import WideDeep


@dataclasses.dataclass(frozen=True)
class RankingSplit:
    """Feature arrays and labels of one split, with event ids to join the oracle."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    event_ids: np.ndarray


def feature_specs(cfg: Config, ds: str) -> tuple[contracts.FeatureSpec, ...]:
    """The ranking feature contract, with the vocabularies of the day's snapshots."""
    return contracts.ranking_features(**data.vocab_sizes(cfg.lake_root, ds))


def load_split(cfg: Config, ds: str, split: str) -> RankingSplit:
    """One split of ``training/ranking_samples/ds`` as model inputs."""
    if split not in contracts.SPLITS:
        raise ValueError(f"split must be one of {contracts.SPLITS}, received {split!r}")
    table = data.read_table(cfg.lake_root, contracts.RANKING_SAMPLES, ds, filter_expr=pc.field("split") == split)
    if table.num_rows == 0:
        raise ValueError(f"{contracts.RANKING_SAMPLES.name}/ds={ds} has no {split!r} rows")
    cols = data.to_numpy(table)
    dtypes = {f.name: (np.int32 if f.kind == "categorical" else np.float32) for f in contracts.ranking_features(1)}
    features = {name: cols[name].astype(dtype) for name, dtype in dtypes.items()}
    return RankingSplit(features, cols["label"].astype(np.float32), cols["event_id"])


def oracle_auc(cfg: Config, ds: str, split: RankingSplit) -> dict[str, float]:
    """AUC of the generator's true click probabilities on the same examples (empty when there is no oracle)."""
    if not lake.partition_ready(cfg.lake_root, contracts.ORACLE_EXPOSURES, ds):
        return {}
    table = data.read_table(cfg.lake_root, contracts.ORACLE_EXPOSURES, ds)
    truth = dict(zip(table.column("event_id").to_pylist(), table.column("p_click").to_pylist(), strict=True))
    probs = np.array([truth.get(e, np.nan) for e in split.event_ids])
    known = ~np.isnan(probs)
    if known.sum() < len(probs):
        raise ValueError(f"oracle/exposures/ds={ds} lacks {int((~known).sum())} of the eval exposures")
    m = metrics.ranking_metrics(split.labels, probs)
    return {"oracle_auc": m["auc"], "oracle_logloss": m["logloss"]}


def evaluate_model(model: keras.Model, split: RankingSplit, batch_size: int = 4096) -> dict[str, float]:
    """AUC, logloss and calibration of a click model on a split."""
    probs = np.asarray(model.predict(split.features, batch_size=batch_size, verbose=0)).reshape(-1)
    return metrics.ranking_metrics(split.labels, probs)


def build_wide_deep(cfg: Config, specs: tuple[contracts.FeatureSpec, ...]) -> WideDeep:
    """A Wide&Deep model for the feature contract and the configured hyperparameters."""
    c = cfg.wide_deep
    return WideDeep(
        features=[{"name": f.name, "kind": f.kind, "vocab_size": f.vocab_size} for f in specs],
        crosses=[list(pair) for pair in contracts.WIDE_CROSSES],
        cross_bins=c.cross_bins,
        embedding_dim=c.embedding_dim,
        hidden_units=c.hidden_units,
        dropout=c.dropout,
    )


def fit_wide_deep(cfg: Config, ds: str) -> tuple[WideDeep, dict[str, list[float]]]:
    """Train Wide&Deep on the train split of the day's ranking samples."""
    c = cfg.wide_deep
    keras.utils.set_random_seed(c.seed)
    train = load_split(cfg, ds, "train")
    model = build_wide_deep(cfg, feature_specs(cfg, ds))
    model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss=keras.losses.BinaryCrossentropy())
    timer = EpochTimer(len(train.labels))
    history = model.fit(
        train.features, train.labels, batch_size=c.batch_size, epochs=c.epochs, shuffle=True, verbose=2, callbacks=[timer]
    )
    return model, history.history
