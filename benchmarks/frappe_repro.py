"""The Frappe CTR reproduction (BARS ``frappe_x1``): DeepFM, Wide&Deep, IPNN, DNN and LR, test AUC against published figures.

    .venv/bin/python benchmarks/frappe_repro.py --src frappe/ --out var/bench/frappe-repro.md
    .venv/bin/python benchmarks/frappe_repro.py --lake var/lake --models deepfm,lr   # a lake imported from frappe

The source folder holds Frappe's ``frappe.csv`` and ``meta.csv``; it is imported with the project's Frappe
adapter into a temporary lake, and the usages are read back from the lake's raw ``click`` events.

What was confirmed, and where (all in public repositories):

- reczoo/BARS ``datasets/Frappe/README.md`` (section Frappe_x1): 96,203 usage logs of 957 users on 4,082 apps;
  10 fields (user, item, daytime, weekday, isweekend, homework, cost, weather, country, city); the target
  says whether the user used the app in that context; 288,609 rows split at random 7:2:1 into 202,027
  train, 57,722 validation and 28,860 test rows (the data AFN released); embedding size 10, batch size
  4096 and MLP hidden units [400, 400, 400] fixed for every model. ``docs/CTR/leaderboard/frappe_x1.md``
  adds ``min_categr_count=1`` (every value keeps its own id).
- hexiangnan/neural_factorization_machine ``data/frappe/README.txt`` (NFM, where those rows come from):
  "sample 2 negative samples for 1 positive => # of total instances: 288609". That file does not say how a
  negative is drawn, and the NFM paper's text was not at hand to check; here a negative keeps the
  positive's user and context (the 8 other fields) and takes a uniformly random app of frappe.csv, the
  pairing the NFM paper is cited for. Apps the user used in that same context are excluded (so no negative
  copies a positive row); the same app may be drawn for both negatives of a row.
- reczoo/BARS ``docs/CTR/leaderboard/frappe_x1.csv``: test AUC (logloss) DeepFM 0.9842 (0.1482),
  Wide&Deep 0.9841 (0.1490), IPNN 0.9841 (0.1540), DNN 0.9833 (0.1622), LR 0.9356 (0.3076).
- reczoo/BARS ``ranking/ctr/<model>/<model>_frappe_x1/README.md`` (FuxiCTR 1.1 runs): Adam, learning rate
  1e-3, up to 100 epochs, validation AUC monitored (max) after every epoch, the best weights kept and used
  for the test; each epoch without improvement divides the learning rate by 10 (logs: "Reduce learning
  rate on plateau"), and training stops after 2 such epochs in a row (3 for IPNN). Per model, the published
  runs' MLP dropout (DeepFM 0.2, Wide&Deep 0.6, IPNN 0.3, DNN 0.2), embedding regulariser (0.05; 0.1 for
  Wide&Deep) and batch normalisation in the MLP (all but IPNN) are the defaults here; seed 2021.
- reczoo/FuxiCTR ``fuxictr/pytorch/models/rank_model.py`` (``regularization_loss``, ``train_step``): the
  embedding regulariser adds ``lambda / 2 * ||W||^2`` of every whole embedding table (the linear part's
  weights too) to each batch's loss, and gradients are clipped to a global norm of 10; embedding tables
  start normal with deviation 1e-4. The same here (``embedding_l2_scope="table"``, ``global_clipnorm``).

Differences, known and kept:

- The split is drawn here from this script's own negatives (seeded), not AFN's released files, so the rows
  differ from the published ones; 202,027 / 57,722 / 28,860 are reproduced (ceil of 70% and 20%).
- LR is scikit-learn's L2 logistic regression on the one-hot fields (C=1, lbfgs to convergence, train split
  only), where BARS trains the same linear model by Adam with early stopping.
- Wide&Deep's wide part is the linear model on the 10 raw fields (no crossed features), as in FuxiCTR.
  DNN is the project's FNN without ``init_from_fm``: random field vectors, which is the plain DNN.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from benchmarks.repro import model_list, run_and_report
from recpipe import contracts, lake, tables
from recpipe.adapters.frappe import import_frappe
from training import baseline, metrics
from training.layers.blocks import L2_SCOPES
from training.models.deepfm import DeepFM
from training.models.fnn import FNN
from training.models.pnn import PNN
from training.models.wide_deep import WideDeep

FIELDS = ("user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")
# The lake column of each field: ids as imported, the context as Frappe's labels, the city as its source label.
COLUMNS = {"user": "user_id", "item": "item_id", "city": "source_city"} | {f: f for f in FIELDS[2:9]}
MODELS = ("deepfm", "wide_deep", "ipnn", "dnn", "lr")
LABELS = {"deepfm": "DeepFM", "wide_deep": "Wide&Deep", "ipnn": "IPNN", "dnn": "DNN", "lr": "LR"}
# Test (AUC, logloss) of the BARS frappe_x1 leaderboard, the figures this protocol reproduces.
PUBLISHED = {
    "deepfm": (0.9842, 0.1482),
    "wide_deep": (0.9841, 0.1490),
    "ipnn": (0.9841, 0.1540),
    "dnn": (0.9833, 0.1622),
    "lr": (0.9356, 0.3076),
}
# The published runs' settings per deep model: MLP dropout, embedding regulariser, batch norm, patience.
DROPOUT = {"deepfm": 0.2, "wide_deep": 0.6, "ipnn": 0.3, "dnn": 0.2}
EMBEDDING_L2 = {"deepfm": 0.05, "wide_deep": 0.1, "ipnn": 0.05, "dnn": 0.05}
BATCH_NORM = {"deepfm": True, "wide_deep": True, "ipnn": False, "dnn": True}
PATIENCE = {"deepfm": 2, "wide_deep": 2, "ipnn": 3, "dnn": 2}
CLIPNORM = 10.0  # FuxiCTR's max_gradient_norm (global)
NEGATIVES = 2  # sampled per positive
SPLIT = (0.7, 0.2)  # train, validation; the test set is the rest
EMBEDDING_DIM = 10
HIDDEN_UNITS = (400, 400, 400)
MIN_LR = 1e-6  # FuxiCTR's floor when it divides the learning rate on a plateau
START = "2026-11-02"  # the Monday the import's 7 days begin (Frappe has weekdays, no dates)
_MAX_DRAWS = 1000


@dataclasses.dataclass(frozen=True)
class Samples:
    """Field ids (``FIELDS`` -> int32 [N]) and 0/1 labels (float32 [N]) of one split."""

    x: dict[str, np.ndarray]
    y: np.ndarray


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The three splits, each field's vocabulary size, and counts for the report."""

    train: Samples
    valid: Samples
    test: Samples
    vocab_sizes: dict[str, int]
    summary: dict[str, int]


def read_positives(root: str) -> dict[str, np.ndarray]:
    """Every usage of a lake imported by ``recpipe import frappe``: its ``click`` events, all days, in file order.

    Returns each of ``FIELDS`` as a NumPy array (user and item ids as int64, the context and the city as
    Frappe's labels) and ``line``, the usage's line in ``frappe.csv``.
    """
    from pyarrow import fs

    where = lake.dataset_uri(root, contracts.RAW_EVENTS)
    filesys, path = lake.filesystem(where)
    infos = filesys.get_file_info(fs.FileSelector(path, allow_not_found=True))
    days = sorted(i.base_name[3:] for i in infos if i.type == fs.FileType.Directory and i.base_name.startswith("ds="))
    days = [d for d in days if lake.partition_ready(root, contracts.RAW_EVENTS, d)]
    if not days:
        raise lake.LakeError(f"{where}: no complete partition; expected a lake written by `recpipe import frappe`")
    columns = ["request_id", *COLUMNS.values()]
    parts = []
    for ds in days:
        try:
            table = tables.read_table(root, contracts.RAW_EVENTS, ds, columns=columns, filter_expr=pc.field("event") == "click")
            line = pc.cast(pc.utf8_slice_codeunits(table.column("request_id"), len("frappe-")), pa.int64())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise ValueError(
                f"{where}/ds={ds}: the click events lack one of the fields {columns} (the adapter keeps Frappe's context "
                "and `source_city`, on requests `frappe-<line>`); expected a lake written by `recpipe import frappe`"
            ) from None
        cast = {c: table.column(c).cast(pa.int64() if c in ("user_id", "item_id") else pa.string()) for c in COLUMNS.values()}
        parts.append(pa.table({"line": line, **cast}))
    out = tables.to_numpy(pa.concat_tables(parts))
    if len(out["line"]) == 0:
        raise ValueError(f"{where}: {len(days)} days hold no click events; expected one per usage of frappe.csv")
    order = np.argsort(out["line"], kind="stable")
    return {"line": out["line"][order]} | {f: out[COLUMNS[f]][order] for f in FIELDS}


def encode(raw: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each field's values as ids 0..n-1 in the order of its sorted distinct values; (ids int32, vocabularies)."""
    ids, vocabularies = {}, {}
    for f in FIELDS:
        values = raw[f] if raw[f].dtype.kind in "iu" else raw[f].astype(str)
        vocabularies[f], inverse = np.unique(values, return_inverse=True)
        ids[f] = inverse.reshape(-1).astype(np.int32)
    return ids, vocabularies


def with_negatives(
    positives: dict[str, np.ndarray], n_items: int, rng: np.random.Generator, per_positive: int = NEGATIVES
) -> Samples:
    """The positives (label 1) followed by ``per_positive`` sampled negatives (label 0) of each, in order.

    Positive ``i``'s negatives are rows ``N + per_positive * i`` onwards: its user and context (every field
    but ``item``) with an item drawn uniformly from ``0..n_items-1`` among those the user did not use in
    that same context (so never the positive's own item). Draws are redrawn until they qualify.

    Raises:
        ValueError: when a user used every item in one context, so no negative can be drawn for it.
    """
    n = len(positives["item"])
    others = [f for f in FIELDS if f != "item"]
    _, context = np.unique(np.stack([positives[f] for f in others], axis=1), axis=0, return_inverse=True)
    context = context.reshape(-1).astype(np.int64)
    used = np.unique(context * n_items + positives["item"])
    full = np.flatnonzero(np.bincount(used // n_items) >= n_items)
    if len(full):
        row = int(np.flatnonzero(context == full[0])[0])
        raise ValueError(
            f"positive row {row} (user id {positives['user'][row]}): the user used all {n_items} items in this context, "
            "so no negative can be sampled for it; expected fewer items per user and context than items"
        )
    context = np.repeat(context, per_positive)
    items = rng.integers(0, n_items, size=n * per_positive)
    redo = np.flatnonzero(np.isin(context * n_items + items, used))
    for _ in range(_MAX_DRAWS):
        if not len(redo):
            break
        items[redo] = rng.integers(0, n_items, size=len(redo))
        redo = redo[np.isin(context[redo] * n_items + items[redo], used)]
    if len(redo):  # unreachable in practice: each draw qualifies with probability >= 1 / n_items
        raise ValueError(f"{len(redo)} negatives still copy a positive after {_MAX_DRAWS} draws; expected none")
    x = {f: np.concatenate([positives[f], np.repeat(positives[f], per_positive)]).astype(np.int32) for f in others}
    x["item"] = np.concatenate([positives["item"], items]).astype(np.int32)
    y = np.r_[np.ones(n, np.float32), np.zeros(n * per_positive, np.float32)]
    return Samples({f: x[f] for f in FIELDS}, y)


def split_indices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random 7:2:1 split of ``n`` rows: ceil(70%) train, ceil(20%) validation, the rest test (row indices)."""
    n_train, n_valid = math.ceil(SPLIT[0] * n), math.ceil(SPLIT[1] * n)
    if n - n_train - n_valid < 1:
        raise ValueError(f"{n} rows leave no test row after ceil(70%) train and ceil(20%) validation; expected at least 10")
    order = rng.permutation(n)
    return order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]


def prepare(root: str, seed: int) -> Prepared:
    """Read the imported usages, encode the fields, sample the negatives, then split (one generator, ``seed``)."""
    raw = read_positives(root)
    ids, vocabularies = encode(raw)
    rng = np.random.default_rng(seed)
    rows = with_negatives(ids, len(vocabularies["item"]), rng)
    parts = [Samples({f: v[idx] for f, v in rows.x.items()}, rows.y[idx]) for idx in split_indices(len(rows.y), rng)]
    summary = {"positives": len(raw["line"]), "rows": len(rows.y)} | {
        name: len(s.y) for name, s in zip(("train", "valid", "test"), parts, strict=True)
    }
    return Prepared(*parts, {f: len(v) for f, v in vocabularies.items()}, summary)


def settings(name: str, args: argparse.Namespace) -> dict:
    """The model settings of a deep model's run: the published ones unless the command line overrides them."""
    pick = lambda given, published: published[name] if given is None else given  # noqa: E731
    return {
        "dropout": pick(args.dropout, DROPOUT),
        "embedding_l2": pick(args.embedding_l2, EMBEDDING_L2),
        "batch_norm": pick(args.batch_norm, BATCH_NORM),
        "patience": pick(args.patience, PATIENCE),
    }


def build_model(name: str, features: list[dict], setting: dict, args: argparse.Namespace) -> keras.Model:
    """The project's model for ``name``: 10-dim field vectors and a 400-400-400 MLP where it has one."""
    common = {
        "embedding_dim": EMBEDDING_DIM,
        "hidden_units": HIDDEN_UNITS,
        "dropout": setting["dropout"],
        "batch_norm": setting["batch_norm"],
        "embedding_l2": setting["embedding_l2"],
        "embedding_l2_scope": args.embedding_l2_scope,
        "embedding_init_stddev": args.embedding_init_stddev,
    }
    if name == "deepfm":
        return DeepFM(features, **common)
    if name == "wide_deep":
        return WideDeep(features, crosses=[], cross_bins=1, **common)
    if name == "ipnn":
        return PNN(features, product="inner", **common)
    return FNN(features, **common)  # dnn: no init_from_fm


def train_deep(name: str, prep: Prepared, args: argparse.Namespace) -> dict[str, float]:
    """Fit with early stopping on validation AUC (best weights restored); test AUC and logloss, epochs, seconds."""
    keras.utils.set_random_seed(args.seed)
    features = [{"name": f, "kind": "categorical", "vocab_size": prep.vocab_sizes[f]} for f in FIELDS]
    setting = settings(name, args)
    model = build_model(name, features, setting, args)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate, global_clipnorm=CLIPNORM),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=setting["patience"], restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.1, patience=1, min_lr=MIN_LR, min_delta=1e-6),
    ]
    t0 = time.perf_counter()
    history = model.fit(
        prep.train.x,
        prep.train.y,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(prep.valid.x, prep.valid.y),
        callbacks=callbacks,
        shuffle=True,
        verbose=2,
    )
    fit_seconds = time.perf_counter() - t0
    probs = model.predict(prep.test.x, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - t0
    m = metrics.ranking_metrics(prep.test.y, probs)
    val_auc = history.history["val_auc"]
    best = int(np.argmax(val_auc))
    return {
        "auc": m["auc"],
        "logloss": m["logloss"],
        "valid_auc": float(val_auc[best]),
        "epochs": len(val_auc),
        "best_epoch": best + 1,
        **setting,
        "seconds": seconds,
        "fit_seconds": fit_seconds,
        "examples_per_s": len(prep.train.y) * len(val_auc) / fit_seconds,
    }


def train_lr(prep: Prepared, args: argparse.Namespace) -> dict[str, float]:
    """scikit-learn's logistic regression on the one-hot fields of the train split; test AUC, logloss, seconds."""
    features = [{"name": f, "kind": "categorical", "vocab_size": prep.vocab_sizes[f]} for f in FIELDS]
    t0 = time.perf_counter()
    probs = baseline.logistic_regression(features, prep.train.x, prep.train.y, prep.test.x, max_iter=1000, seed=args.seed)
    m = metrics.ranking_metrics(prep.test.y, probs)
    return {"auc": m["auc"], "logloss": m["logloss"], "seconds": time.perf_counter() - t0}


def report(results: dict[str, dict[str, float]], header: str) -> str:
    """Markdown table: measured test AUC and logloss beside the published ones, epochs run (best) and seconds."""
    lines = [
        header,
        "",
        "| model | test AUC | published AUC | test logloss | published logloss | epochs (best) | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in results.items():
        auc, logloss = PUBLISHED[name]
        epochs = f"{m['epochs']} ({m['best_epoch']})" if "epochs" in m else "-"
        measured = f"{m['auc']:.4f} | {auc:.4f} | {m['logloss']:.4f} | {logloss:.4f}"
        lines.append(f"| {LABELS[name]} | {measured} | {epochs} | {m['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def run(root: str, args: argparse.Namespace, source: str) -> tuple[dict[str, dict[str, float]], dict[str, int], str]:
    """Prepare the samples of the lake at ``root``, train and test each model; (results, data summary, table)."""
    t0 = time.perf_counter()
    prep = prepare(root, args.seed)
    s, v = prep.summary, prep.vocab_sizes
    vocab = ", ".join(f"{f} {v[f]:,}" for f in FIELDS)
    print(
        f"{s['positives']:,} usages + {s['rows'] - s['positives']:,} sampled negatives = {s['rows']:,} rows: "
        f"{s['train']:,} train, {s['valid']:,} validation, {s['test']:,} test; vocabularies {vocab} "
        f"({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    results = {}
    for name in args.models:
        results[name] = train_lr(prep, args) if name == "lr" else train_deep(name, prep, args)
        m = results[name]
        print(f"{name}: test AUC {m['auc']:.4f} (published {PUBLISHED[name][0]}), {m['seconds']:.0f} s", flush=True)
    deep = [n for n in args.models if n in DROPOUT]
    per_model = "; ".join(
        f"{LABELS[n]}: dropout {s['dropout']}, embedding L2 {s['embedding_l2']}, batch norm {s['batch_norm']}, "
        f"patience {s['patience']}"
        for n, s in ((n, settings(n, args)) for n in deep)
    )
    header = (
        f"Frappe CTR reproduction (BARS frappe_x1 protocol), {source} ({dt.datetime.now().astimezone():%Y-%m-%d %H:%M}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}): "
        f"{s['positives']:,} usages (label 1) + {NEGATIVES} sampled negatives each = {s['rows']:,} rows, split at random "
        f"7:2:1 into {s['train']:,} train, {s['valid']:,} validation and {s['test']:,} test rows. Vocabularies: {vocab}. "
        f"{EMBEDDING_DIM}-dim field vectors, MLP {'-'.join(map(str, HIDDEN_UNITS))}, batch {args.batch_size}, "
        f"Adam {args.learning_rate} (global clip norm {CLIPNORM}), up to {args.epochs} epochs, early stopping on "
        "validation AUC (learning rate / 10 on each epoch without improvement, best weights kept), embedding L2 over "
        f"{'whole tables' if args.embedding_l2_scope == 'table' else 'the rows each batch looks up'}, tables initialised "
        f"{'uniform +-0.05' if args.embedding_init_stddev is None else f'normal (sd {args.embedding_init_stddev})'}, "
        f"seed {args.seed}. {per_model or ''}. "
        "LR: scikit-learn, one-hot fields, C=1. Published: BARS frappe_x1 leaderboard (FuxiCTR)."
    )
    return results, s | {f"vocab_{f}": v[f] for f in FIELDS}, report(results, header)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frappe_repro.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--lake", help="a lake already written by `recpipe import frappe`")
    where.add_argument(
        "--src", type=Path, help="the Frappe directory (frappe.csv, meta.csv), imported into a temporary lake first"
    )
    parser.add_argument("--epochs", type=int, default=100, help="the most epochs; early stopping usually ends sooner")
    parser.add_argument(
        "--patience", type=int, help="epochs without a better validation AUC before stopping (default: each published run's)"
    )
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's initial learning rate")
    parser.add_argument("--dropout", type=float, help="MLP dropout of every deep model (default: each published run's)")
    parser.add_argument("--embedding-l2", type=float, help="embedding L2 of every deep model (default: each published run's)")
    parser.add_argument(
        "--embedding-l2-scope",
        choices=L2_SCOPES,
        default="table",
        help="table: the whole tables at every step (FuxiCTR's); batch: the rows each batch looks up",
    )
    parser.add_argument(
        "--embedding-init-stddev", type=float, default=1e-4, help="normal initialisation of the tables (FuxiCTR's 1e-4)"
    )
    parser.add_argument(
        "--batch-norm",
        action=argparse.BooleanOptionalAction,
        help="batch normalisation in every deep model's MLP (default: each published run's)",
    )
    parser.add_argument(
        "--models", type=model_list(MODELS), default=list(MODELS), help=f"comma-separated, default {','.join(MODELS)}"
    )
    parser.add_argument("--seed", type=int, default=2021, help="negatives, split, initialisation and shuffling")
    parser.add_argument("--out", type=Path, help="write the results here: the table (Markdown), or results and table (.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    dropout_ok = args.dropout is None or 0.0 <= args.dropout < 1.0
    if (
        args.epochs < 1
        or (args.patience is not None and args.patience < 1)
        or args.batch_size < 1
        or not args.learning_rate > 0
        or not dropout_ok
    ):
        parser.error(
            "expected --epochs >= 1, --patience >= 1, --batch-size >= 1, --learning-rate > 0 and --dropout in [0, 1); "
            f"received --epochs {args.epochs} --patience {args.patience} --batch-size {args.batch_size} "
            f"--learning-rate {args.learning_rate} --dropout {args.dropout}"
        )
    if (args.embedding_l2 is not None and args.embedding_l2 < 0) or not args.embedding_init_stddev > 0:
        parser.error(
            f"expected --embedding-l2 >= 0 and --embedding-init-stddev > 0, received {args.embedding_l2} "
            f"and {args.embedding_init_stddev}"
        )
    protocol = {
        "fields": FIELDS,
        "negatives_per_positive": NEGATIVES,
        "split": "7:2:1",
        "embedding_dim": EMBEDDING_DIM,
        "hidden_units": HIDDEN_UNITS,
    }
    published = {k: {"auc": a, "logloss": ll} for k, (a, ll) in PUBLISHED.items()}
    importer = lambda src, root: import_frappe(src, root, start=START)  # noqa: E731
    return run_and_report("frappe_repro", args, importer, run, {"protocol": protocol, "published": published})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
