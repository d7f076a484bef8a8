"""Ranking models: building and fitting every click model on the ranking samples, and evaluating any of them.

One feature contract (``recpipe.contracts.ranking_features``) drives the inputs of all seven models;
``fit`` runs each model's own recipe (an FM first for FNN, a GBDT first for XGBoost+Wide&Deep, an image
encoder first for CNN+DNN) or warm-starts from the champion; ``evaluate_model`` gives every model the same
report: AUC, logloss, GAUC, calibration, and slices by city, category and user type.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

import keras
import numpy as np
import pyarrow.compute as pc

from recpipe import contracts, lake, tables
from recpipe.config import Config
from training import catalogue, metrics
from training.compute import EpochTimer
from training.models.ctr import ClickModel
from training.models.fm import FactorizationMachine

log = logging.getLogger(__name__)
# Slice name -> the feature it groups by; user types are reported by name (B, C).
SLICES = {"city": "user_city", "category": "category_id", "user_type": "user_type"}
VALUE_NAMES = {"user_type": contracts.USER_TYPES}


@dataclasses.dataclass(frozen=True)
class RankingSplit:
    """Feature arrays and labels of one split, with the event ids (to join the oracle), users and times."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    event_ids: np.ndarray
    user_ids: np.ndarray
    ts: np.ndarray

    def take(self, keep: np.ndarray) -> RankingSplit:
        """The rows ``keep`` selects (a boolean mask or row indices)."""
        return RankingSplit(
            {k: v[keep] for k, v in self.features.items()},
            self.labels[keep],
            self.event_ids[keep],
            self.user_ids[keep],
            self.ts[keep],
        )

    def since(self, ts_ms: int) -> RankingSplit:
        """The rows at or after ``ts_ms`` (epoch milliseconds)."""
        return self.take(self.ts >= ts_ms)


def holdout(split: RankingSplit, fraction: float) -> tuple[RankingSplit, RankingSplit | None]:
    """(rows to fit, validation rows): the newest ``fraction`` of ``split``'s rows by time are held out.

    The validation rows are the ``ceil(fraction * n)`` latest (ties by row order), so they follow the rows a
    model fits as the eval day follows the train window. None when ``fraction`` is 0, or when the held-out
    rows would hold a single label or leave no row to fit (too few rows to stop early on).
    """
    n = len(split.labels)
    size = int(np.ceil(fraction * n))
    if size == 0 or size >= n:
        return split, None
    order = np.argsort(split.ts, kind="stable")
    valid = split.take(order[n - size :])
    if len(np.unique(valid.labels)) < 2:
        return split, None
    return split.take(np.sort(order[: n - size])), valid


class ValidationAUC(keras.callbacks.Callback):
    """Adds ``val_auc``, the exact ROC AUC of the model on the validation rows, to each epoch's logs.

    Listed before the callbacks that monitor it (early stopping, learning rate on plateau): Keras hands every
    callback the same logs in list order.
    """

    def __init__(self, validation: RankingSplit, batch_size: int = 4096) -> None:
        super().__init__()
        self.validation = validation
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None) -> None:
        if logs is not None:
            probs = predict(self.model, self.validation, self.batch_size)
            logs["val_auc"] = metrics.ranking_metrics(self.validation.labels, probs)["auc"]


@dataclasses.dataclass
class Fitted:
    """A trained ranking model and what its recipe produced on the way."""

    model: ClickModel
    history: dict[str, list[float]]
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    # Side models logged beside the network in their own format, e.g. {"gbdt": the XGBoost booster}.
    side_models: dict[str, Any] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)


def feature_specs(cfg: Config, ds: str) -> list[dict]:
    """The ranking feature contract as model specs, with the vocabularies of the day's snapshots."""
    return [
        {"name": f.name, "kind": f.kind, "vocab_size": f.vocab_size}
        for f in contracts.ranking_features(**tables.vocab_sizes(cfg.lake_root, ds))
    ]


def load_split(cfg: Config, ds: str, split: str) -> RankingSplit:
    """One split of ``training/ranking_samples/ds`` as model inputs."""
    if split not in contracts.SPLITS:
        raise ValueError(f"split must be one of {contracts.SPLITS}, received {split!r}")
    table = tables.read_table(cfg.lake_root, contracts.RANKING_SAMPLES, ds, filter_expr=pc.field("split") == split)
    if table.num_rows == 0:
        raise ValueError(f"{contracts.RANKING_SAMPLES.name}/ds={ds} has no {split!r} rows")
    cols = tables.to_numpy(table)
    dtypes = {f.name: (np.int32 if f.kind == "categorical" else np.float32) for f in contracts.ranking_features(1)}
    features = {name: cols[name].astype(dtype) for name, dtype in dtypes.items()}
    return RankingSplit(features, cols["label"].astype(np.float32), cols["event_id"], cols["user_id"], cols["ts"])


def oracle_auc(cfg: Config, ds: str, split: RankingSplit) -> dict[str, float]:
    """AUC of the generator's true click probabilities on the same examples (empty when there is no oracle)."""
    if not lake.partition_ready(cfg.lake_root, contracts.ORACLE_EXPOSURES, ds):
        return {}
    table = tables.read_table(cfg.lake_root, contracts.ORACLE_EXPOSURES, ds)
    truth = dict(zip(table.column("event_id").to_pylist(), table.column("p_click").to_pylist(), strict=True))
    probs = np.array([truth.get(e, np.nan) for e in split.event_ids])
    known = ~np.isnan(probs)
    if known.sum() < len(probs):
        raise ValueError(f"oracle/exposures/ds={ds} lacks {int((~known).sum())} of the eval exposures")
    m = metrics.ranking_metrics(split.labels, probs)
    return {
        "oracle_auc": m["auc"],
        "oracle_logloss": m["logloss"],
        "oracle_gauc": metrics.gauc(split.labels, probs, split.user_ids)["gauc"],
    }


def bayes_gap_closed(m: dict[str, float]) -> dict[str, float]:
    """``{"bayes_gap_closed": (auc - lr_auc) / (oracle_auc - lr_auc)}``: the share of the gap between the LR
    baseline and the generator's true probabilities that a model closes (1: as good as the oracle, 0: no
    better than LR, below 0: worse). Empty without an oracle or a baseline, or when the oracle is no better."""
    if not {"auc", "lr_auc", "oracle_auc"} <= m.keys() or not m["oracle_auc"] > m["lr_auc"]:
        return {}
    return {"bayes_gap_closed": (m["auc"] - m["lr_auc"]) / (m["oracle_auc"] - m["lr_auc"])}


def predict(model: keras.Model, split: RankingSplit, batch_size: int = 4096) -> np.ndarray:
    """A click model's predicted probabilities on every row of a split, shape ``(n,)``."""
    features = {name: split.features[name] for name in (f["name"] for f in model.features)}
    return np.asarray(model.predict(features, batch_size=batch_size, verbose=0)).reshape(-1)


def evaluate_model(
    model: keras.Model, split: RankingSplit, batch_size: int = 4096, probs: np.ndarray | None = None
) -> dict[str, float]:
    """AUC, logloss, calibration, GAUC over users and the per-slice metrics of a click model on a split.

    ``probs``, when given, are the model's predictions on ``split`` from ``predict``, not made a second time.
    """
    if probs is None:
        probs = predict(model, split, batch_size)
    slices = {name: split.features[column] for name, column in SLICES.items()}
    return metrics.ranking_report(split.labels, probs, groups=split.user_ids, slices=slices, value_names=VALUE_NAMES)


MIN_LEARNING_RATE = 1e-6  # the floor of the division on a plateau (FuxiCTR's)


def _compile_fit(
    model: keras.Model, cfg: Config, split: RankingSplit, epochs: int, validation: RankingSplit | None = None
) -> dict[str, list[float]]:
    """Fit ``model`` on ``split`` for ``epochs`` epochs, or with early stopping on ``validation`` when given.

    With validation rows: the learning rate is divided by 10 after each epoch whose validation AUC is not a
    new best, training stops after ``ranking.patience`` such epochs in a row, and the best epoch's weights
    are restored. The history then has ``val_auc`` and ``learning_rate`` per epoch.
    """
    c = cfg.ranking
    model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss=keras.losses.BinaryCrossentropy())
    callbacks: list[keras.callbacks.Callback] = [EpochTimer(len(split.labels))]
    if validation is not None:
        callbacks += [
            ValidationAUC(validation),
            keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=c.patience, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_auc", mode="max", factor=0.1, patience=1, min_delta=1e-6, min_lr=MIN_LEARNING_RATE
            ),
        ]
    history = model.fit(
        split.features, split.labels, batch_size=c.batch_size, epochs=epochs, shuffle=True, verbose=2, callbacks=callbacks
    )
    return history.history


def stopping_metrics(history: dict[str, list[float]], validation: RankingSplit | None) -> dict[str, float]:
    """What early stopping did: epochs run, the best epoch (1-based) and its validation AUC; empty without it."""
    if validation is None or not history.get("val_auc"):
        return {}
    val_auc = history["val_auc"]
    best = int(np.argmax(val_auc))
    return {
        "epochs_run": float(len(val_auc)),
        "best_epoch": float(best + 1),
        "validation_auc": float(val_auc[best]),
        "validation_examples": float(len(validation.labels)),
    }


def fit_fnn(
    entry: catalogue.ModelEntry,
    cfg: Config,
    ds: str,
    specs: list[dict],
    train: RankingSplit,
    eval_split: RankingSplit,
    validation: RankingSplit | None,
) -> Fitted:
    """FNN's recipe: a factorization machine first, whose vectors initialise the network."""
    c = cfg.ranking
    common = shared_arguments(cfg, specs)
    fm = FactorizationMachine(**{k: v for k, v in common.items() if k != "dropout"})
    fm.set_numeric_stats(train.features)
    fm_history = _compile_fit(fm, cfg, train, cfg.fnn.fm_epochs)
    fm_metrics = {
        f"fm_{k}": v
        for k, v in metrics.ranking_metrics(
            eval_split.labels, fm.predict(eval_split.features, batch_size=4096, verbose=0)
        ).items()
    }
    model = entry.model_class()(**common, **entry.hyperparameters(cfg))
    model.init_from_fm(fm)
    history = _compile_fit(model, cfg, train, c.epochs, validation)
    history.update({f"fm_{k}": v for k, v in fm_history.items()})
    return Fitted(model, history, {k: v for k, v in fm_metrics.items() if k in ("fm_auc", "fm_logloss")})


def fit_xgb_wide_deep(
    entry: catalogue.ModelEntry,
    cfg: Config,
    ds: str,
    specs: list[dict],
    train: RankingSplit,
    eval_split: RankingSplit,
    validation: RankingSplit | None,
) -> Fitted:
    """XGBoost+Wide&Deep's recipe: a GBDT first, whose leaves feed the wide part."""
    from training import xgb

    c, x = cfg.ranking, cfg.xgb_wide_deep
    names = xgb.gbdt_features(specs)
    booster, gbdt_metrics = xgb.fit_gbdt(
        xgb.feature_matrix(train.features, names),
        train.labels,
        feature_names=names,
        n_trees=x.n_trees,
        max_depth=x.max_depth,
        learning_rate=x.learning_rate,
        seed=c.seed,
        eval_set=(xgb.feature_matrix(eval_split.features, names), eval_split.labels),
    )
    trees = xgb.tree_arrays(booster)
    model = entry.model_class()(
        **shared_arguments(cfg, specs),
        **entry.hyperparameters(cfg),
        gbdt_features=names,
        n_trees=trees["left"].shape[0],
        max_nodes=trees["left"].shape[1],
        depth=int(trees["depth"]),
        max_leaves=int(trees["n_leaves"].max()),
    )
    model(model.example_inputs())
    model.set_trees(trees)
    model.set_numeric_stats(train.features)
    return Fitted(model, _compile_fit(model, cfg, train, c.epochs, validation), gbdt_metrics, side_models={"gbdt": booster})


def fit_cnn_dnn(
    entry: catalogue.ModelEntry,
    cfg: Config,
    ds: str,
    specs: list[dict],
    train: RankingSplit,
    eval_split: RankingSplit,
    validation: RankingSplit | None,
) -> Fitted:
    """CNN+DNN's recipe: the item images' encoder first (pre-trained, then frozen)."""
    from training import images

    c, n = cfg.ranking, cfg.cnn_dnn
    table, image_metrics = images.item_image_embeddings(
        cfg.lake_root,
        ds,
        backbone=n.backbone,
        weights_path=n.backbone_weights,
        embedding_dim=n.image_embedding_dim,
        epochs=n.pretrain_epochs,
        seed=c.seed,
    )
    model = entry.model_class()(
        **shared_arguments(cfg, specs), **entry.hyperparameters(cfg), n_items=table.shape[0], image_dim=table.shape[1]
    )
    model(model.example_inputs())
    model.set_image_embeddings(table)
    model.set_numeric_stats(train.features)
    history = _compile_fit(model, cfg, train, c.epochs, validation)
    return Fitted(model, history, image_metrics, tags={"cnn_backbone": n.backbone})


def shared_arguments(cfg: Config, specs: list[dict]) -> dict:
    """The constructor arguments every ranking model takes from the ``ranking`` section."""
    c = cfg.ranking
    return {
        "features": specs,
        "embedding_dim": c.embedding_dim,
        "oov_buckets": c.oov_buckets,
        "embedding_l2": c.embedding_l2,
        "embedding_l2_scope": c.embedding_l2_scope,
        "embedding_init_stddev": c.embedding_init_stddev or None,
        "dropout": c.dropout,
    }


def build_model(key: str, cfg: Config, specs: list[dict], **overrides) -> ClickModel:
    """A fresh model of a plain recipe (no pre-trained part) for the feature specs and the config: the shared
    arguments and the catalogue entry's hyperparameters (``overrides`` replace any of them)."""
    entry = catalogue.entry(key, "ranking")
    if entry.recipe != PLAIN_RECIPE:
        raise ValueError(f"{key!r} has its own recipe ({entry.recipe}); build it through `fit`")
    return entry.model_class()(**{**shared_arguments(cfg, specs), **entry.hyperparameters(cfg), **overrides})


def fit_plain(
    entry: catalogue.ModelEntry,
    cfg: Config,
    ds: str,
    specs: list[dict],
    train: RankingSplit,
    eval_split: RankingSplit,
    validation: RankingSplit | None,
) -> Fitted:
    """The plain recipe: build the model, set its numeric feature statistics, fit it."""
    model = build_model(entry.name, cfg, specs)
    model.set_numeric_stats(train.features)
    return Fitted(model, _compile_fit(model, cfg, train, cfg.ranking.epochs, validation))


PLAIN_RECIPE = f"{__name__}:fit_plain"


def incremental_start_ms(cfg: Config, ds: str) -> int:
    """Start (epoch ms, UTC) of the newest ``ranking.incremental_days`` days before the eval day ``ds``."""
    day = lake.parse_ds(ds) - dt.timedelta(days=cfg.ranking.incremental_days)
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)


def compatible(champion: ClickModel, specs: list[dict]) -> str | None:
    """Why the champion cannot be warm-started on today's features, or None when it can (vocabularies may differ)."""
    theirs = [(f["name"], f["kind"]) for f in champion.features]
    ours = [(f["name"], f["kind"]) for f in specs]
    if theirs != ours:
        return f"its features differ from today's: {sorted(set(theirs) ^ set(ours))}"
    return None


def fit(
    key: str,
    cfg: Config,
    ds: str,
    train: RankingSplit,
    eval_split: RankingSplit,
    champion: ClickModel | None = None,
    specs: list[dict] | None = None,
) -> Fitted:
    """Train ranking model ``key`` on ``train``; warm-start from ``champion`` (a loaded model) when given.

    ``specs`` default to the day's feature contract (``feature_specs``).

    A warm start keeps the champion's architecture, vocabularies and pre-trained parts (FM start, trees,
    image table) and trains it on the newest ``ranking.incremental_days`` of ``train``; ids it never saw go
    to its hashed out-of-vocabulary rows.

    With ``ranking.validation_fraction`` the newest rows of what it would train on are held out to stop early
    (``holdout``); ``train_examples`` counts the rows fitted, and the metrics say what early stopping did.
    """
    entry = catalogue.entry(key, "ranking")
    keras.utils.set_random_seed(cfg.ranking.seed)
    if champion is not None:
        recent = train.since(incremental_start_ms(cfg, ds))
        if len(recent.labels) == 0:
            raise ValueError(
                f"{contracts.RANKING_SAMPLES.name}/ds={ds}: no train rows in the newest {cfg.ranking.incremental_days} day(s)"
            )
        rows, validation = holdout(recent, cfg.ranking.validation_fraction)
        history = _compile_fit(champion, cfg, rows, cfg.ranking.epochs, validation)
        stopped = stopping_metrics(history, validation)
        return Fitted(champion, history, {"train_examples": float(len(rows.labels)), **stopped})
    specs = specs or feature_specs(cfg, ds)
    rows, validation = holdout(train, cfg.ranking.validation_fraction)
    fitted = catalogue.load(entry.recipe)(entry, cfg, ds, specs, rows, eval_split, validation)
    fitted.metrics.update({"train_examples": float(len(rows.labels)), **stopping_metrics(fitted.history, validation)})
    return fitted
