"""Small built instances of every ranking model, on the contract's features, for the model and export tests."""

from __future__ import annotations

import keras
import numpy as np

from recpipe import contracts
from training import xgb
from training.models.cnn_dnn import CNNDNN
from training.models.deepfm import DeepFM
from training.models.fm import FactorizationMachine
from training.models.fnn import FNN
from training.models.pnn import PNN
from training.models.wide_deep import WideDeep
from training.models.wide_resnet import WideResNet
from training.models.xgb_wide_deep import XGBWideDeep

N_ITEMS = 30
SPECS = [{"name": f.name, "kind": f.kind, "vocab_size": f.vocab_size} for f in contracts.ranking_features(n_items=N_ITEMS)]
CROSSES = [list(c) for c in contracts.WIDE_CROSSES]
# Dropout 0.5 everywhere: a serving signature that ran in training mode would not match the model.
COMMON = {"features": SPECS, "embedding_dim": 4, "oov_buckets": 3, "dropout": 0.5}
VARIANTS = (
    "fm",
    "fnn",
    "wide_deep",
    "xgb_wide_deep",
    "cnn_dnn",
    "pnn",
    "pnn_outer",
    "deepfm",
    "wide_resnet",
    "wide_resnet_no_bn",
)


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
    """A built model of ``variant`` (one of ``VARIANTS``), with its pre-trained parts set."""
    keras.utils.set_random_seed(0)
    common = COMMON | {"embedding_l2": 1e-4}
    if variant == "fm":
        model = FactorizationMachine(SPECS, 4, oov_buckets=3)
    elif variant == "fnn":
        model = FNN(**common, hidden_units=[8])
    elif variant == "wide_deep":
        model = WideDeep(**common, crosses=CROSSES, cross_bins=64, hidden_units=[8])
    elif variant == "xgb_wide_deep":
        x, y = batch(200, seed=1)
        names = xgb.gbdt_features(SPECS)
        booster, _ = xgb.fit_gbdt(
            xgb.feature_matrix(x, names), y, feature_names=names, n_trees=4, max_depth=3, learning_rate=0.5, seed=0
        )
        trees = xgb.tree_arrays(booster)
        model = XGBWideDeep(
            **common,
            crosses=CROSSES,
            cross_bins=64,
            hidden_units=[8],
            gbdt_features=names,
            n_trees=trees["left"].shape[0],
            max_nodes=trees["left"].shape[1],
            depth=int(trees["depth"]),
            max_leaves=int(trees["n_leaves"].max()),
            leaves_to_deep=True,
        )
        model(model.example_inputs())
        model.set_trees(trees)
    elif variant == "cnn_dnn":
        model = CNNDNN(**common, hidden_units=[8], n_items=N_ITEMS, image_dim=5)
        model(model.example_inputs())
        model.set_image_embeddings(np.random.default_rng(2).normal(size=(N_ITEMS, 5)))
    elif variant in ("pnn", "pnn_outer"):
        model = PNN(**common, hidden_units=[8], product="outer" if variant == "pnn_outer" else "inner")
    elif variant == "deepfm":
        model = DeepFM(**common, hidden_units=[8])
    elif variant in ("wide_resnet", "wide_resnet_no_bn"):
        model = WideResNet(**common, crosses=CROSSES, cross_bins=64, width=8, blocks=2, batch_norm=variant == "wide_resnet")
    else:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    model(model.example_inputs())
    model.set_numeric_stats(batch(64, seed=3)[0])
    return model
