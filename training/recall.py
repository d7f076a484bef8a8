"""Recall models: fitting Item2Vec and evaluating any item-vector table on the day's recall eval set."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from recpipe import contracts, lake
from recpipe.config import Config
from training import data, metrics
from training.models.item2vec import Item2Vec


@dataclasses.dataclass(frozen=True)
class RecallEvalSet:
    """The users of the eval day with train history, their history and their eval-day clicks."""

    user_ids: np.ndarray
    histories: list[list[int]]
    targets: list[list[int]]
    popular: np.ndarray  # item ids by train-window clicks, most clicked first
    oracle: dict[int, list[int]]  # user -> the generator's top items (empty when no oracle exists)


def load_eval_set(cfg: Config, ds: str) -> RecallEvalSet:
    """Read the recall eval set, the popularity ranking and (if present) the oracle top lists of ``ds``."""
    ev = data.to_numpy(data.read_table(cfg.lake_root, contracts.RECALL_EVAL, ds))
    pop = data.to_numpy(data.read_table(cfg.lake_root, contracts.ITEM_POPULARITY, ds))
    order = np.lexsort((pop["item_id"], -pop["clicks"]))
    oracle: dict[int, list[int]] = {}
    if lake.partition_ready(cfg.lake_root, contracts.ORACLE_TOPK, ds):
        top = data.read_table(cfg.lake_root, contracts.ORACLE_TOPK, ds)
        oracle = dict(zip(top.column("user_id").to_pylist(), top.column("items").to_pylist(), strict=True))
    return RecallEvalSet(ev["user_id"], list(ev["history"]), list(ev["targets"]), pop["item_id"][order], oracle)


def user_vectors(item_vectors: np.ndarray, histories: list[list[int]]) -> np.ndarray:
    """Each user's vector: the mean of the vectors of the items in their history (unknown ids skipped)."""
    out = np.zeros((len(histories), item_vectors.shape[1]), dtype=np.float32)
    for row, hist in enumerate(histories):
        known = [i for i in hist if 0 <= i < item_vectors.shape[0]]
        if known:
            out[row] = item_vectors[known].mean(axis=0)
    return out


def evaluate_vectors(item_vectors: np.ndarray, eval_set: RecallEvalSet, k: int) -> dict[str, float]:
    """recall@k and HR@k of exact inner-product search over all items."""
    recs = metrics.top_k(user_vectors(item_vectors, eval_set.histories), item_vectors, k)
    return metrics.recall_metrics(list(recs), eval_set.targets, k)


def reference_metrics(eval_set: RecallEvalSet, k: int) -> dict[str, float]:
    """The popularity baseline and the oracle, on the same users, prefixed ``popularity_`` and ``oracle_``."""
    out = {
        f"popularity_{n}": v
        for n, v in metrics.recall_metrics([eval_set.popular[:k]] * len(eval_set.targets), eval_set.targets, k).items()
    }
    if eval_set.oracle:
        lists = [eval_set.oracle.get(int(u), []) for u in eval_set.user_ids]
        out.update({f"oracle_{n}": v for n, v in metrics.recall_metrics(lists, eval_set.targets, k).items()})
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
