"""Training throughput of every model on this machine, against a plain MLP measured in the same run.

    .venv/bin/python benchmarks/train.py --repeats 3 --out var/bench/train-results.md

Each model is built from the embedded config's hyperparameters (``--config`` for another) and fitted on
generated inputs of the shapes its training set has (``--n-items`` items, histories of ``history_max_len``,
every ranking feature), with one fixed ``--batch-size`` for all. A fit runs two epochs of ``--steps``
batches with the training tasks' own ``EpochTimer``; the first epoch (graph tracing) is discarded and the
second gives examples/s. Repeats run round-robin over the models, so a burst of load on a shared machine
hits every model alike; the table gives medians, each model's speed as a ratio to the MLP reference, and
the time an epoch of ``--epoch-examples`` examples takes at that speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

from recpipe import contracts
from recpipe.config import Config, load_config
from training import ranking
from training.compute import EpochTimer
from training.models.cnn_dnn import CNNDNN
from training.models.fnn import FNN
from training.models.item2vec import Item2Vec, Item2VecCBOW
from training.models.two_tower import TwoTower
from training.models.youtube_dnn import USER_FIELDS, YouTubeDNN, user_vocab

N_CITIES, N_CATEGORIES = contracts.N_CITIES_MAX, len(contracts.CATEGORIES)
REFERENCE = "mlp"


def _ids(rng: np.random.Generator, n: int, size, zipf: bool = True) -> np.ndarray:
    """Item-like ids in [0, n): Zipf-distributed (popular items first) or uniform."""
    if not zipf:
        return rng.integers(0, n, size).astype(np.int32)
    return ((rng.zipf(1.2, size) - 1) % n).astype(np.int32)


def _user_inputs(rng: np.random.Generator, rows: int, n_items: int, history_len: int) -> dict[str, np.ndarray]:
    history = _ids(rng, n_items, (rows, history_len))
    lengths = rng.integers(1, history_len + 1, rows)
    history[np.arange(history_len)[None, :] >= lengths[:, None]] = -1
    x = {"history": history}
    for field, vocab in zip(USER_FIELDS, user_vocab(N_CITIES), strict=True):
        x[field] = rng.integers(0, vocab, rows).astype(np.int32)
    return x


def _retrieval(cfg: Config, rows: int, n_items: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Retrieval samples as ``training.towers.load_samples`` returns them."""
    x = _user_inputs(rng, rows, n_items, cfg.etl.history_max_len)
    x["item_id"] = _ids(rng, n_items, rows)
    x["item_city"] = rng.integers(0, N_CITIES, rows).astype(np.int32)
    x["category_id"] = rng.integers(0, N_CATEGORIES, rows).astype(np.int32)
    x["item_prob"] = np.full(rows, 1.0 / n_items, np.float32)
    x["hard_negatives"] = _ids(rng, n_items, (rows, cfg.etl.retrieval_hard_negatives), zipf=False)
    x["hard_negative_prob"] = np.full(rows, 0.01, np.float32)
    x["weight"] = np.ones(rows, np.float32)
    return x


def _youtube_dnn(cfg: Config, rows: int, n_items: int, rng: np.random.Generator):
    c = cfg.youtube_dnn
    model = YouTubeDNN(n_items, N_CITIES, N_CATEGORIES, c.embedding_dim, c.hidden_units, num_negatives=c.num_negatives)
    model.compile(optimizer=keras.optimizers.Adam(c.learning_rate))
    return model, _retrieval(cfg, rows, n_items, rng), None


def _two_tower(tower: str) -> Callable:
    def build(cfg: Config, rows: int, n_items: int, rng: np.random.Generator):
        c = cfg.two_tower
        model = TwoTower(n_items, N_CITIES, N_CATEGORIES, c.embedding_dim, c.hidden_units, tower=tower, temperature=c.temperature)
        model.set_item_tables(rng.integers(0, N_CITIES, n_items), rng.integers(0, N_CATEGORIES, n_items))
        model.compile(optimizer=keras.optimizers.Adam(c.learning_rate))
        return model, _retrieval(cfg, rows, n_items, rng), None

    return build


def _item2vec(cfg: Config, rows: int, n_items: int, rng: np.random.Generator):
    model = Item2Vec(n_items, cfg.item2vec.embedding_dim)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(cfg.item2vec.learning_rate), loss=loss)
    x = {"target": _ids(rng, n_items, rows), "context": _ids(rng, n_items, rows)}
    return model, x, (rng.random(rows) < 0.2).astype(np.float32)


def _item2vec_cbow(cfg: Config, rows: int, n_items: int, rng: np.random.Generator):
    c = cfg.item2vec
    model = Item2VecCBOW(n_items, c.embedding_dim, c.cbow_negatives, np.ones(n_items), seed=c.seed)
    model.compile(optimizer=keras.optimizers.Adam(c.learning_rate))
    context = _ids(rng, n_items, (rows, 2 * cfg.etl.cbow_window))
    context[rng.random(context.shape) < 0.3] = -1  # sessions shorter than the window
    return model, {"target": _ids(rng, n_items, rows), "context": context}, None


def _ranking_inputs(specs: list[dict], rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    def column(f: dict) -> np.ndarray:
        if f["kind"] == "categorical":
            return rng.integers(0, f["vocab_size"], rows).astype(np.int32)
        return rng.integers(0, 30, rows).astype(np.float32)  # counts

    return {f["name"]: column(f) for f in specs}


def _ranking(key: str, **overrides) -> Callable:
    """A ranking model of the embedded config (``overrides`` replace fields of its section) on generated inputs.

    Pre-trained parts are made, not trained: FNN starts from random field vectors (its FM is a separate
    fit), XGBoost+Wide&Deep gets a GBDT fitted on the generated rows, CNN+DNN a random image table.
    """

    def build(cfg: Config, rows: int, n_items: int, rng: np.random.Generator):
        if overrides:
            section = key.split(":")[0]
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **overrides)})
        specs = [
            {"name": f.name, "kind": f.kind, "vocab_size": f.vocab_size}
            for f in contracts.ranking_features(n_items, N_CITIES, N_CATEGORIES)
        ]
        x, y = _ranking_inputs(specs, rows, rng), (rng.random(rows) < 0.1).astype(np.float32)
        c = cfg.ranking
        name = key.split(":")[0]
        if name == "fnn":
            model = FNN(specs, c.embedding_dim, c.hidden_units, c.dropout, c.oov_buckets)
        elif name == "xgb_wide_deep":
            model = ranking.fit(name, cfg, "2026-01-02", _split(x, y), _split(x, y), specs=specs).model
        elif name == "cnn_dnn":
            model = CNNDNN(
                specs, c.embedding_dim, c.hidden_units, n_items, cfg.cnn_dnn.image_embedding_dim, c.dropout, c.oov_buckets
            )
            model(model.example_inputs())
            model.set_image_embeddings(rng.random((n_items, cfg.cnn_dnn.image_embedding_dim)).astype(np.float32))
        else:
            model = ranking.build_model(name, cfg, specs)
        model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss=keras.losses.BinaryCrossentropy())
        return model, x, y

    return build


def _split(x: dict[str, np.ndarray], y: np.ndarray) -> ranking.RankingSplit:
    n = len(y)
    return ranking.RankingSplit(x, y, np.arange(n).astype(str), np.arange(n) % 97, np.zeros(n, np.int64))


def _mlp(cfg: Config, rows: int, n_items: int, rng: np.random.Generator):
    """The reference: an MLP with the ranking models' layer sizes over as many dense inputs as they have features."""
    width = len(contracts.ranking_features(n_items))
    hidden = [keras.layers.Dense(u, activation="relu") for u in cfg.ranking.hidden_units]
    model = keras.Sequential([keras.Input((width,)), *hidden, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model, rng.random((rows, width)).astype(np.float32), (rng.random(rows) < 0.1).astype(np.float32)


MODELS: dict[str, Callable] = {
    REFERENCE: _mlp,
    "item2vec": _item2vec,
    "item2vec_cbow": _item2vec_cbow,
    "youtube_dnn": _youtube_dnn,
    "two_tower_mlp": _two_tower("mlp"),
    "two_tower_dcn": _two_tower("dcn"),
    "two_tower_pnn": _two_tower("pnn"),
    "fnn": _ranking("fnn"),
    "wide_deep": _ranking("wide_deep"),
    "xgb_wide_deep": _ranking("xgb_wide_deep"),
    "cnn_dnn": _ranking("cnn_dnn"),
    "pnn_inner": _ranking("pnn", product="inner"),
    "pnn_outer": _ranking("pnn", product="outer"),
    "deepfm": _ranking("deepfm"),
    "wide_resnet": _ranking("wide_resnet"),
    "wide_resnet_no_bn": _ranking("wide_resnet", batch_norm=False),
}


def measure(name: str, cfg: Config, batch_size: int, steps: int, n_items: int, seed: int) -> float:
    """Examples per second of the second of two epochs of ``steps`` batches."""
    keras.utils.set_random_seed(seed)
    rows = batch_size * steps
    model, x, y = MODELS[name](cfg, rows, n_items, np.random.default_rng(seed))
    timer = EpochTimer(rows)
    history = model.fit(x, y, batch_size=batch_size, epochs=2, shuffle=False, verbose=0, callbacks=[timer]).history
    return float(history["examples_per_second"][-1])


def table(rates: dict[str, list[float]], epoch_examples: int) -> str:
    ref = statistics.median(rates[REFERENCE])
    lines = [
        f"| model | examples/s (median) | runs | vs {REFERENCE} | s per epoch of {epoch_examples:,} |",
        "|---|---:|---|---:|---:|",
    ]
    for name, values in rates.items():
        med = statistics.median(values)
        runs = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(f"| {name} | {med:,.0f} | {runs} | {med / ref:.2f} | {epoch_examples / med:,.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--config", default=None, help="config whose hyperparameters to use (default: the embedded one)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40, help="batches per timed epoch")
    parser.add_argument("--n-items", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epoch-examples", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown table and raw JSON here")
    args = parser.parse_args(argv)
    for flag in ("batch_size", "steps", "n_items", "repeats", "epoch_examples"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, received {getattr(args, flag)}")
    cfg = load_config(args.config)
    names = [REFERENCE, *[m for m in args.models if m != REFERENCE]]
    rates: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for repeat in range(args.repeats):
        for name in names:
            rates[name].append(measure(name, cfg, args.batch_size, args.steps, args.n_items, args.seed + repeat))
            print(f"repeat {repeat + 1}/{args.repeats} {name}: {rates[name][-1]:,.0f} examples/s", flush=True)
    header = (
        f"batch {args.batch_size}, {args.steps} timed steps, {args.n_items:,} items, {args.repeats} repeats; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"{len(tf.config.list_physical_devices('GPU'))} GPUs; {time.perf_counter() - start:.0f} s"
    )
    report = f"{header}\n\n{table(rates, args.epoch_examples)}\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        raw = {"args": vars(args) | {"out": str(args.out)}, "rates": rates}
        args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
