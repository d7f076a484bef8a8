"""Small built instances of every ranking model, on the contract's features, for the model and export tests."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from recpipe import contracts
from recpipe.config import Config, PNNConfig, RankingConfig, WideDeepConfig, WideResNetConfig, XGBWideDeepConfig
from training import catalogue, ranking, xgb
from training.models.fm import FactorizationMachine

N_ITEMS = 30
SPECS = [{"name": f.name, "kind": f.kind, "vocab_size": f.vocab_size} for f in contracts.ranking_features(n_items=N_ITEMS)]
# Small settings; dropout 0.5 everywhere: a serving signature that ran in training mode would not match the model.
CONFIG = Config(
    lake_root="/unused",
    mlflow_tracking_uri="sqlite:///unused.db",
    mlflow_artifact_root="/unused",
    ranking=RankingConfig(embedding_dim=4, hidden_units=(8,), dropout=0.5, oov_buckets=3, embedding_l2=1e-4),
    wide_deep=WideDeepConfig(cross_bins=64),
    wide_resnet=WideResNetConfig(width=8, blocks=2),
    xgb_wide_deep=XGBWideDeepConfig(leaves_to_deep=True),
)
COMMON = {"features": SPECS, "embedding_dim": 4, "oov_buckets": 3, "dropout": 0.5}
# Variants beyond the catalogue's defaults: config overrides of a catalogue model.
EXTRA = {
    "pnn_outer": ("pnn", {"pnn": PNNConfig(product="outer")}),
    "wide_resnet_no_bn": ("wide_resnet", {"wide_resnet": WideResNetConfig(width=8, blocks=2, batch_norm=False)}),
    # Batch-normalised MLP, L2 on the looked-up rows only, Keras's uniform initialisation.
    "deepfm_batch_norm": (
        "deepfm",
        {"ranking": dataclasses.replace(CONFIG.ranking, batch_norm=True, embedding_l2_scope="batch", embedding_init_stddev=0.0)},
    ),
}
# Every ranking model of the catalogue, the FM (FNN's pre-trained part) and the extra variants.
VARIANTS = ("fm", *catalogue.RANKING_MODELS, *EXTRA)


def batch(n: int = 16, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Random in-vocabulary features (counts up to 50) and labels that depend on the category and a count."""
    rng = np.random.default_rng(seed)
    x = {
        f["name"]: rng.integers(0, f["vocab_size"], n).astype(np.int32)
        if f["kind"] == "categorical"
        else rng.integers(0, 50, n).astype(np.float32)
        for f in SPECS
    }
    y = ((x["category_id"] < 3) ^ (x["user_click_7d"] > 25)).astype(np.float32)
    return x, y


def make(variant: str) -> keras.Model:
    """A built model of ``variant`` (one of ``VARIANTS``), with its pre-trained parts set.

    Built as the training recipes build it: the shared arguments and the catalogue entry's hyperparameters from
    ``CONFIG``; the parts a recipe pre-trains (the GBDT's trees, the image table) are set from small stand-ins.
    """
    keras.utils.set_random_seed(0)
    if variant == "fm":
        model = FactorizationMachine(SPECS, 4, oov_buckets=3)
        model(model.example_inputs())
        model.set_numeric_stats(batch(64, seed=3)[0])
        return model
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    name, overrides = EXTRA.get(variant, (variant, {}))
    cfg = dataclasses.replace(CONFIG, **overrides)
    entry = catalogue.entry(name, "ranking")
    arguments = {**ranking.shared_arguments(cfg, SPECS), **entry.hyperparameters(cfg)}
    if name == "xgb_wide_deep":
        x, y = batch(200, seed=1)
        names = xgb.gbdt_features(SPECS)
        booster, _ = xgb.fit_gbdt(
            xgb.feature_matrix(x, names), y, feature_names=names, n_trees=4, max_depth=3, learning_rate=0.5, seed=0
        )
        trees = xgb.tree_arrays(booster)
        model = entry.model_class()(
            **arguments,
            gbdt_features=names,
            n_trees=trees["left"].shape[0],
            max_nodes=trees["left"].shape[1],
            depth=int(trees["depth"]),
            max_leaves=int(trees["n_leaves"].max()),
        )
        model(model.example_inputs())
        model.set_trees(trees)
    elif name == "cnn_dnn":
        model = entry.model_class()(**arguments, n_items=N_ITEMS, image_dim=5)
        model(model.example_inputs())
        model.set_image_embeddings(np.random.default_rng(2).normal(size=(N_ITEMS, 5)))
    else:
        model = entry.model_class()(**arguments)
    model(model.example_inputs())
    model.set_numeric_stats(batch(64, seed=3)[0])
    return model
