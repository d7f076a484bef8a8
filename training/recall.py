"""Recall models: fitting Item2Vec and evaluating any item-vector table on the day's recall eval set."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from recpipe import contracts, lake
from recpipe.config import Config
from training import data, metrics
from training.models.item2vec import Item2Vec

USER_FEATURES = ("user_city", "user_type", "device", "hour", "weekday", "city_id")


@dataclasses.dataclass(frozen=True)
class RecallEvalSet:
    """The users of the eval day with history: their history, eval-day clicks, profile and request context."""

    user_ids: np.ndarray
    histories: list[list[int]]
    targets: list[list[int]]
    features: dict[str, np.ndarray]  # USER_FEATURES [U] and ``history`` [U, L] padded with -1: tower inputs
    item_category: np.ndarray  # category of each item id (-1 unknown), for the category slices
    n_items: int
    popular: np.ndarray  # item ids by train-window clicks, most clicked first
    oracle: dict[int, list[int]]  # user -> the generator's top items (empty when no oracle exists)


def pad_lists(values: list, width: int) -> np.ndarray:
    """Lists of ids -> int32 [N, width], left-aligned, padded with -1 (longer lists keep their last ``width``)."""
    out = np.full((len(values), width), -1, dtype=np.int32)
    for row, ids in enumerate(values):
        tail = list(ids)[-width:] if width else []
        out[row, : len(tail)] = tail
    return out


def load_eval_set(cfg: Config, ds: str) -> RecallEvalSet:
    """Read the recall eval set, the popularity ranking, item categories and (if present) the oracle top lists."""
    ev = data.to_numpy(data.read_table(cfg.lake_root, contracts.RECALL_EVAL, ds))
    pop = data.to_numpy(data.read_table(cfg.lake_root, contracts.ITEM_POPULARITY, ds, columns=["item_id", "clicks"]))
    order = np.lexsort((pop["item_id"], -pop["clicks"]))
    items = data.to_numpy(data.read_snapshot(cfg.lake_root, contracts.RAW_ITEMS, ds, columns=["item_id", "category_id"]))
    n_items = data.n_items(cfg.lake_root, ds)
    item_category = np.full(n_items, -1, dtype=np.int32)
    item_category[items["item_id"]] = items["category_id"]
    oracle: dict[int, list[int]] = {}
    if lake.partition_ready(cfg.lake_root, contracts.ORACLE_TOPK, ds):
        top = data.read_table(cfg.lake_root, contracts.ORACLE_TOPK, ds)
        oracle = dict(zip(top.column("user_id").to_pylist(), top.column("items").to_pylist(), strict=True))
    histories = [list(h) for h in ev["history"]]
    features = {name: ev[name].astype(np.int32) for name in USER_FEATURES}
    features["history"] = pad_lists(histories, cfg.etl.history_max_len)
    targets = [list(t) for t in ev["targets"]]
    return RecallEvalSet(ev["user_id"], histories, targets, features, item_category, n_items, pop["item_id"][order], oracle)


def user_vectors(item_vectors: np.ndarray, histories: list[list[int]]) -> np.ndarray:
    """Each user's vector: the mean of the vectors of the items in their history (unknown ids skipped)."""
    out = np.zeros((len(histories), item_vectors.shape[1]), dtype=np.float32)
    for row, hist in enumerate(histories):
        known = [i for i in hist if 0 <= i < item_vectors.shape[0]]
        if known:
            out[row] = item_vectors[known].mean(axis=0)
    return out


def _ks(cfg: Config) -> list[int]:
    return sorted({*cfg.recall_eval.ks, cfg.item2vec.top_k, cfg.recall_eval.slice_k})


def evaluate_queries(cfg: Config, queries: np.ndarray, item_vectors: np.ndarray, eval_set: RecallEvalSet) -> dict[str, float]:
    """Every recall metric of exact inner-product search over all items, for one query vector per eval user."""
    if len(queries) != len(eval_set.targets):
        raise ValueError(f"need one query vector per eval user, received {len(queries)} for {len(eval_set.targets)} users")
    ks = _ks(cfg)
    exclude = eval_set.histories if cfg.recall_eval.exclude_seen else None
    recs = metrics.top_k(queries, item_vectors, max(ks), exclude=exclude)
    # Denominators from the eval day's catalogue, so a champion with an older, shorter table compares fairly.
    out = metrics.retrieval_metrics(list(recs), eval_set.targets, ks, eval_set.n_items)
    out["mean_target_rank"] = metrics.mean_target_rank(queries, item_vectors, eval_set.targets, eval_set.n_items)
    k = cfg.recall_eval.slice_k
    out.update(metrics.sliced_recall(list(recs), eval_set.targets, k, eval_set.features["user_city"], eval_set.item_category))
    return out


def evaluate_vectors(cfg: Config, item_vectors: np.ndarray, eval_set: RecallEvalSet) -> dict[str, float]:
    """Item2Vec-style evaluation: each user's query is the mean of their history's item vectors."""
    return evaluate_queries(cfg, user_vectors(item_vectors, eval_set.histories), item_vectors, eval_set)


def reference_metrics(cfg: Config, eval_set: RecallEvalSet) -> dict[str, float]:
    """The popularity baseline and the oracle, on the same users, prefixed ``popularity_`` and ``oracle_``."""
    ks = _ks(cfg)

    def score(prefix: str, lists: list) -> dict[str, float]:
        found = metrics.retrieval_metrics(lists, eval_set.targets, ks, eval_set.n_items)
        return {f"{prefix}_{name}": value for name, value in found.items()}

    out = score("popularity", [list(eval_set.popular[: max(ks)])] * len(eval_set.targets))
    if eval_set.oracle:
        out.update(score("oracle", [eval_set.oracle.get(int(u), []) for u in eval_set.user_ids]))
    return out


def fit_item2vec(cfg: Config, ds: str) -> tuple[Item2Vec, dict[str, list[float]]]:
    """Train Item2Vec on the day's skip-gram pairs; returns the model and its loss history."""
    c = cfg.item2vec
    keras.utils.set_random_seed(c.seed)
    pairs = data.to_numpy(data.read_table(cfg.lake_root, contracts.ITEM2VEC_PAIRS, ds, columns=["target", "context", "label"]))
    if len(pairs["label"]) == 0:
        raise ValueError(f"{contracts.ITEM2VEC_PAIRS.name}/ds={ds} holds no pairs: nothing to train on")
    order = np.random.default_rng(c.seed).permutation(len(pairs["label"]))
    model = Item2Vec(data.n_items(cfg.lake_root, ds), c.embedding_dim)
    model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(
        {"target": pairs["target"][order], "context": pairs["context"][order]},
        pairs["label"][order].astype(np.float32),
        batch_size=c.batch_size,
        epochs=c.epochs,
        verbose=2,
    )
    return model, history.history
