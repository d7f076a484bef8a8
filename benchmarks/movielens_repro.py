"""The MovieLens-1M recall reproduction: YouTube DNN and DSSM (two-tower, in-batch softmax), HR@50 against published figures.

    .venv/bin/python benchmarks/movielens_repro.py --src ml-1m/ --out var/bench/movielens-repro.md
    .venv/bin/python benchmarks/movielens_repro.py --lake var/lake      # a lake already imported from ml-1m

The protocol of the DeepMatch / DeepCTR ml-1m examples that the published figures come from:

- every rated movie is an interaction (the adapter writes each rating as an ``expose``; the ``click`` of
  ratings >= 4 is not used), ordered by time per user (ties in the same second in file order, which
  the adapter keeps as the request ``position``);
- each user's last interaction is the test target; every earlier one but the first is a training
  target; a row's history is the up-to-50 interactions before its target, most recent last;
- 32-dim user and item vectors; exact inner-product top-50 over every movie rated at least once
  (seen movies are not filtered out); HR@50 = share of test users whose target is in their top 50
  (with one target per user, recall@50 is the same number).

The models are the pipeline's own ``YouTubeDNN`` and ``TwoTower`` (tower ``mlp``, in-batch softmax: DSSM),
with the user fields the pipeline feeds them: the profile's city (first zip digit), user type and device
(constants ``C`` and ``pc`` in ML-1M), the request city (the user's), and the hour and weekday (UTC) of
the target rating. ML-1M's gender, age, occupation and user id, which the published models also embed,
have no field in these models. The YouTube DNN takes the nightly form (``YouTubeDNNConfig``: cosine /
temperature, mixed in-batch and sampled negatives, item category in the item vectors).

Two references score the same test users: popularity (the 50 movies with the most interactions outside
the test targets) and item-kNN as the nightly evaluation computes it (cosine over co-occurrences, each
training target with every item of its history; a user scored from the last 50 items); the table gives
every HR@50 as a multiple of item-kNN's.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
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
from recpipe.adapters.common import ds_of_ms
from recpipe.adapters.movielens import import_movielens
from recpipe.config import YouTubeDNNConfig
from training import metrics, recall
from training.models.two_tower import TwoTower
from training.models.youtube_dnn import USER_FIELDS, YouTubeDNN
from training.towers import MIN_PROB

MODELS = ("youtube_dnn", "two_tower")
LABELS = {
    "youtube_dnn": "YouTube DNN",
    "two_tower": "DSSM (two_tower mlp, in-batch softmax)",
    "popularity": "popularity",
    "itemknn": "item-kNN (cosine over co-occurrences)",
}
# HR@50 of the DeepMatch/DeepCTR-style ml-1m examples, the figures this protocol reproduces.
PUBLISHED = {"youtube_dnn": 0.337, "two_tower": 0.355}
K = 50
MAX_HISTORY = 50
EMBEDDING_DIM = 32
HIDDEN_UNITS = (128, 64)
NUM_NEGATIVES = 100  # YouTube DNN: sampled negatives per batch, by training popularity^0.75, logQ-corrected
TEMPERATURE = 0.05  # DSSM: cosine / temperature
INTERACTION = "expose"  # the adapter's event for every rating; "click" is only ratings >= 4
DAY_MS = 86_400_000
_CHUNK = 100_000


@dataclasses.dataclass(frozen=True)
class Prepared:
    """Model inputs of the training rows and the test users, with the item tables and the popularity ranking."""

    train: dict[str, np.ndarray]  # history [N, 50], USER_FIELDS, item_id, item_city, category_id
    test: dict[str, np.ndarray]  # history [U, 50], USER_FIELDS
    targets: np.ndarray  # [U] each test user's last item
    candidates: np.ndarray  # ids of every item rated at least once: the search space
    popular: np.ndarray  # candidates by interactions outside the test targets, most first (ties by id)
    item_city: np.ndarray  # [n_items] per item id, -1 unknown
    item_category: np.ndarray
    sizes: dict[str, int]  # n_items, n_cities, n_categories
    summary: dict[str, int]


def read_ratings(root: str) -> dict[str, np.ndarray]:
    """Every rating of a lake imported by ``recpipe import movielens``: its ``expose`` events, all days.

    Returns ``user_id``, ``item_id``, ``ts`` (ms), ``position`` (order within the same second) and
    ``city_id`` (the request city) as NumPy arrays, in no particular order.
    """
    from pyarrow import fs

    filesys, path = lake.filesystem(lake.dataset_uri(root, contracts.RAW_EVENTS))
    infos = filesys.get_file_info(fs.FileSelector(path, allow_not_found=True))
    days = sorted(i.base_name[3:] for i in infos if i.type == fs.FileType.Directory and i.base_name.startswith("ds="))
    days = [d for d in days if lake.partition_ready(root, contracts.RAW_EVENTS, d)]
    where = lake.dataset_uri(root, contracts.RAW_EVENTS)
    if not days:
        raise lake.LakeError(f"{where}: no complete partition; expected a lake written by `recpipe import movielens`")
    columns = ["user_id", "item_id", "ts", "position", "city_id", "rating"]
    parts = []
    for ds in days:
        try:
            table = tables.read_table(
                root, contracts.RAW_EVENTS, ds, columns=columns, filter_expr=pc.field("event") == INTERACTION
            )
        except pa.ArrowInvalid:
            raise ValueError(
                f"{where}/ds={ds}: the events lack one of the fields {columns} (the adapter keeps each rating's stars "
                "as `rating`); expected a lake written by `recpipe import movielens`"
            ) from None
        parts.append(table.cast(pa.schema([(c, pa.int64()) for c in columns])))
    out = tables.to_numpy(pa.concat_tables(parts))
    if len(out["user_id"]) == 0:
        raise ValueError(f"{where}: {len(days)} days hold no {INTERACTION!r} events; expected one per rating")
    return out


def leave_last_out(
    user_id: np.ndarray, item_id: np.ndarray, ts: np.ndarray, position: np.ndarray, max_history: int = MAX_HISTORY
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split interactions into training rows and one test row per user.

    Each user's interactions are ordered by ``(ts, position)``. The last is the user's test target; every
    earlier one except the first is a training target. A row's ``history`` [.., max_history] holds the
    up-to-``max_history`` items before its target, most recent last, left-aligned and padded with -1.
    Users with a single interaction give no row. Both dicts hold ``row`` (the index of the target in the
    input arrays), ``user_id``, ``item_id`` and ``history``.
    """
    order = np.lexsort((position, ts, user_id))
    users, items = np.asarray(user_id)[order], np.asarray(item_id)[order]
    n = len(users)
    new_user = np.r_[True, users[1:] != users[:-1]] if n else np.zeros(0, bool)
    starts = np.flatnonzero(new_user)
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    is_last = np.r_[new_user[1:], True] if n else np.zeros(0, bool)
    slots = np.arange(max_history)

    def rows(mask: np.ndarray) -> dict[str, np.ndarray]:
        idx = np.flatnonzero(mask)
        history = np.empty((len(idx), max_history), np.int32)
        for lo in range(0, len(idx), _CHUNK):
            part = idx[lo : lo + _CHUNK]
            length = np.minimum(rank[part], max_history)[:, None]
            source = part[:, None] - length + slots[None, :]
            valid = slots[None, :] < length
            history[lo : lo + _CHUNK] = np.where(valid, items[np.where(valid, source, 0)], -1)
        return {"row": order[idx], "user_id": users[idx], "item_id": items[idx], "history": history}

    return rows((rank >= 1) & ~is_last), rows((rank >= 1) & is_last)


def _index_of(values: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Each string's index in ``vocabulary``, -1 (the embeddings' unknown row) when absent."""
    lookup = {v: i for i, v in enumerate(vocabulary)}
    return np.array([lookup.get(v, -1) for v in values], np.int32)


def _user_fields(
    rows: dict[str, np.ndarray], ratings: dict[str, np.ndarray], users: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """USER_FIELDS of each row: the user's profile and the context (city, hour, weekday) of its target rating."""
    ids = users["user_id"]  # never empty: ``prepare`` checks
    sort = np.argsort(ids)
    found = sort[np.minimum(np.searchsorted(ids, rows["user_id"], sorter=sort), len(ids) - 1)]
    known = ids[found] == rows["user_id"]
    profile = {
        "user_city": users["city_id"].astype(np.int32),
        "user_type": _index_of(users["user_type"], contracts.USER_TYPES),
        "device": _index_of(users["device"], contracts.DEVICES),
    }
    out = {name: np.where(known, values[found], -1).astype(np.int32) for name, values in profile.items()}
    ts = ratings["ts"][rows["row"]]
    out["hour"] = ((ts // 1000) % 86_400 // 3600).astype(np.int32)
    out["weekday"] = ((ts // DAY_MS + 3) % 7).astype(np.int32)  # Monday = 0, as the ETL (1970-01-01 was a Thursday)
    out["city_id"] = ratings["city_id"][rows["row"]].astype(np.int32)
    return {name: out[name] for name in USER_FIELDS}


def prepare(root: str) -> Prepared:
    """Read the imported ratings and snapshots and build the leave-last-out training rows and test users."""
    ratings = read_ratings(root)
    last_day = ds_of_ms(int(ratings["ts"].max()))
    users = tables.to_numpy(
        tables.read_snapshot(root, contracts.RAW_USERS, last_day, columns=["user_id", "city_id", "user_type", "device"])
    )
    items = tables.to_numpy(
        tables.read_snapshot(root, contracts.RAW_ITEMS, last_day, columns=["item_id", "city_id", "category_id"])
    )
    if len(users["user_id"]) == 0:
        raise ValueError(
            f"{contracts.RAW_USERS.name}: the snapshot at or before ds={last_day} holds no users; expected users.dat's"
        )
    sizes = tables.vocab_sizes(root, last_day)
    n_items = sizes["n_items"]
    if ratings["item_id"].min() < 0 or ratings["item_id"].max() >= n_items:
        raise ValueError(f"rated item ids span {ratings['item_id'].min()}..{ratings['item_id'].max()}; expected 0..{n_items - 1}")
    item_city, item_category = np.full(n_items, -1, np.int32), np.full(n_items, -1, np.int32)
    item_city[items["item_id"]], item_category[items["item_id"]] = items["city_id"], items["category_id"]

    train_rows, test_rows = leave_last_out(ratings["user_id"], ratings["item_id"], ratings["ts"], ratings["position"])
    if len(train_rows["row"]) == 0 or len(test_rows["row"]) == 0:
        raise ValueError(
            f"{len(ratings['user_id'])} ratings give {len(train_rows['row'])} training rows and {len(test_rows['row'])} "
            "test users; expected users with at least 3 ratings"
        )
    train = {"history": train_rows["history"], **_user_fields(train_rows, ratings, users)}
    train["item_id"] = train_rows["item_id"].astype(np.int32)
    train["item_city"], train["category_id"] = item_city[train["item_id"]], item_category[train["item_id"]]
    test = {"history": test_rows["history"], **_user_fields(test_rows, ratings, users)}

    outside_test = np.ones(len(ratings["item_id"]), bool)
    outside_test[test_rows["row"]] = False
    counts = np.bincount(ratings["item_id"][outside_test], minlength=n_items)
    candidates = np.unique(ratings["item_id"])
    popular = candidates[np.lexsort((candidates, -counts[candidates]))]
    summary = {
        "ratings": len(ratings["user_id"]),
        "users": len(np.unique(ratings["user_id"])),
        "items_rated": len(candidates),
        "n_items": n_items,
        "train_rows": len(train_rows["row"]),
        "test_users": len(test_rows["row"]),
    }
    return Prepared(train, test, test_rows["item_id"], candidates, popular, item_city, item_category, sizes, summary)


def _fit(model: keras.Model, x: dict[str, np.ndarray], args: argparse.Namespace) -> float:
    """Adam on shuffled batches, as the nightly recall models train; returns the seconds it took."""
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    t0 = time.perf_counter()
    model.fit(x, batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=2)
    return time.perf_counter() - t0


def train_youtube_dnn(prep: Prepared, args: argparse.Namespace) -> tuple[YouTubeDNN, float]:
    """YouTube DNN as the nightly model trains it (``YouTubeDNNConfig``'s temperature, mixed negatives and item
    features), with negatives drawn by training popularity^0.75, logQ-corrected."""
    keras.utils.set_random_seed(args.seed)
    n_items = prep.sizes["n_items"]
    counts = np.bincount(prep.train["item_id"], minlength=n_items)
    weight = counts**0.75
    prob = np.maximum(weight / weight.sum(), MIN_PROB)
    prob = prob / prob.sum()
    nightly = YouTubeDNNConfig()
    model = YouTubeDNN(
        n_items,
        prep.sizes["n_cities"],
        prep.sizes["n_categories"],
        EMBEDDING_DIM,
        HIDDEN_UNITS,
        num_negatives=NUM_NEGATIVES,
        neg_prob=prob,
        seed=args.seed,
        temperature=nightly.temperature,
        in_batch_negatives=nightly.in_batch_negatives,
        item_features=nightly.item_features,
    )
    if nightly.item_features:
        model.set_item_tables(prep.item_city, prep.item_category)
    model.set_batch_prob(counts + MIN_PROB)
    x = {name: prep.train[name] for name in ("history", *USER_FIELDS, "item_id")}
    x["item_prob"] = prob[x["item_id"]].astype(np.float32)
    return model, _fit(model, x, args)


def itemknn(prep: Prepared) -> dict[str, float]:
    """The item-kNN reference, as the nightly evaluation computes it: cosine over co-occurrences (each training
    target with every item of its history), each test user scored from the last ``MAX_HISTORY`` items."""
    history = prep.train["history"]
    targets = np.repeat(prep.train["item_id"], history.shape[1])
    contexts = history.reshape(-1)
    similarity = recall.itemknn_similarity(targets, contexts, prep.sizes["n_items"])
    histories = [row[row >= 0] for row in prep.test["history"]]
    lists = recall.itemknn_lists(similarity, histories, K, prep.popular, last=MAX_HISTORY)
    return score(np.asarray(lists), prep)


def train_two_tower(prep: Prepared, args: argparse.Namespace) -> tuple[TwoTower, float]:
    """DSSM: the two-tower model with "mlp" towers and an in-batch softmax, logQ from in-batch frequencies."""
    keras.utils.set_random_seed(args.seed)
    n_items = prep.sizes["n_items"]
    model = TwoTower(
        n_items,
        prep.sizes["n_cities"],
        prep.sizes["n_categories"],
        EMBEDDING_DIM,
        HIDDEN_UNITS,
        tower="mlp",
        temperature=TEMPERATURE,
    )
    model.set_item_tables(prep.item_city, prep.item_category)
    x = {name: prep.train[name] for name in ("history", *USER_FIELDS, "item_id", "item_city", "category_id")}
    # In-batch negatives are the batch's positives: each item's sampling probability is its share of the rows.
    counts = np.bincount(x["item_id"], minlength=n_items)
    x["item_prob"] = (counts[x["item_id"]] / len(x["item_id"])).astype(np.float32)
    return model, _fit(model, x, args)


def score(recommended: np.ndarray, prep: Prepared) -> dict[str, float]:
    """recall, HR, NDCG and coverage at 50 of ranked item ids [U, >=50] against each test user's target."""
    return metrics.retrieval_metrics(list(recommended), [[int(t)] for t in prep.targets], [K], len(prep.candidates))


def evaluate(model: YouTubeDNN | TwoTower, prep: Prepared) -> dict[str, float]:
    """Exact inner-product top-50 over every rated item for each test user's vector, scored."""
    queries = model.user_vectors({name: prep.test[name] for name in ("history", *USER_FIELDS)})
    item_vectors = model.item_vectors()[prep.candidates]
    return score(prep.candidates[metrics.top_k(queries, item_vectors, K)], prep)


def report(results: dict[str, dict[str, float]], header: str) -> str:
    """Markdown table: measured HR@50 beside the published figure, then recall, NDCG, coverage and time."""
    lines = [
        header,
        "",
        f"| model | HR@{K} | x item-kNN | published HR@{K} | recall@{K} | NDCG@{K} | coverage@{K} | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    knn = results.get("itemknn", {}).get(f"hr_at_{K}")
    for name, m in results.items():
        published = f"{PUBLISHED[name]:.3f}" if name in PUBLISHED else "-"
        train_s = f"{m['train_s']:.0f}" if "train_s" in m else "-"
        ratio = f"{m[f'hr_at_{K}'] / knn:.2f}" if knn else "-"
        lines.append(
            f"| {LABELS[name]} | {m[f'hr_at_{K}']:.3f} | {ratio} | {published} | {m[f'recall_at_{K}']:.3f} | "
            f"{m[f'ndcg_at_{K}']:.3f} | {m[f'coverage_at_{K}']:.3f} | {train_s} |"
        )
    return "\n".join(lines) + "\n"


def run(root: str, args: argparse.Namespace, source: str) -> tuple[dict[str, dict[str, float]], dict[str, int], str]:
    """Prepare the samples of the lake at ``root``, train and evaluate each model; (results, data summary, table)."""
    t0 = time.perf_counter()
    prep = prepare(root)
    s = prep.summary
    print(
        f"{s['ratings']:,} ratings of {s['users']:,} users on {s['items_rated']:,} items: "
        f"{s['train_rows']:,} training rows, {s['test_users']:,} test users ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    results = {"popularity": score(np.tile(prep.popular[:K], (len(prep.targets), 1)), prep), "itemknn": itemknn(prep)}
    print(f"item-kNN: HR@{K} {results['itemknn'][f'hr_at_{K}']:.4f}", flush=True)
    trainers = {"youtube_dnn": train_youtube_dnn, "two_tower": train_two_tower}
    for name in args.models:
        model, train_s = trainers[name](prep, args)
        results[name] = {**evaluate(model, prep), "train_s": train_s}
        print(
            f"{name}: HR@{K} {results[name][f'hr_at_{K}']:.4f} (published {PUBLISHED[name]}), trained in {train_s:.0f} s",
            flush=True,
        )
    header = (
        f"MovieLens-1M recall reproduction, {source} ({dt.datetime.now().astimezone():%Y-%m-%d %H:%M}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}): "
        f"{s['ratings']:,} ratings, {s['test_users']:,} test users (each one's last rating), {s['train_rows']:,} training rows, "
        f"exact top-{K} over {s['items_rated']:,} rated items; {EMBEDDING_DIM}-dim vectors, {args.epochs} epochs, "
        f"batch {args.batch_size}, Adam {args.learning_rate}, seed {args.seed}."
    )
    return results, s, report(results, header)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="movielens_repro.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--lake", help="a lake already written by `recpipe import movielens`")
    where.add_argument(
        "--src", type=Path, help="the ml-1m directory (ratings.dat, users.dat, movies.dat), imported into a temporary lake first"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512, help="also the number of in-batch negatives of DSSM, plus one")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument(
        "--models", type=model_list(MODELS), default=list(MODELS), help=f"comma-separated, default {','.join(MODELS)}"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="write the results here: the table (Markdown), or results and table (.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 2 or not args.learning_rate > 0:
        parser.error(
            "expected --epochs >= 1, --batch-size >= 2 and --learning-rate > 0; "
            f"received --epochs {args.epochs} --batch-size {args.batch_size} --learning-rate {args.learning_rate}"
        )
    protocol = {"k": K, "max_history": MAX_HISTORY, "embedding_dim": EMBEDDING_DIM, "interaction": INTERACTION}
    return run_and_report("movielens_repro", args, import_movielens, run, {"protocol": protocol, "published_hr_at_50": PUBLISHED})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
