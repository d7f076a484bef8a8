"""Tower recall models: fitting the YouTube DNN and the two-tower model on the day's retrieval samples."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pyarrow.compute as pc

from recpipe import contracts, tables
from recpipe.config import Config
from training.compute import EpochTimer
from training.models.two_tower import TwoTower
from training.models.youtube_dnn import YouTubeDNN
from training.recall import USER_FEATURES, pad_lists

log = logging.getLogger(__name__)
# Sampling probability given to an item the popularity table does not know (never 0: logQ would explode).
MIN_PROB = 1e-6


def item_tables(cfg: Config, ds: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item id: city, category (-1 unknown) and the negative sampler's probability (popularity^0.75)."""
    n = tables.n_items(cfg.lake_root, ds)
    columns = ["item_id", "city_id", "category_id"]
    items = tables.to_numpy(tables.read_snapshot(cfg.lake_root, contracts.RAW_ITEMS, ds, columns=columns))
    city, category = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    city[items["item_id"]], category[items["item_id"]] = items["city_id"], items["category_id"]
    pop = tables.to_numpy(tables.read_table(cfg.lake_root, contracts.ITEM_POPULARITY, ds, columns=["item_id", "neg_prob"]))
    prob = np.full(n, MIN_PROB, np.float64)
    known = pop["item_id"] < n
    prob[pop["item_id"][known]] = np.maximum(pop["neg_prob"][known], MIN_PROB)
    return city, category, (prob / prob.sum()).astype(np.float32)


def load_samples(cfg: Config, ds: str, split: str, item_prob: np.ndarray) -> dict[str, np.ndarray]:
    """One split of ``training/retrieval_samples/ds`` as model inputs (lists padded with -1)."""
    table = tables.read_table(cfg.lake_root, contracts.RETRIEVAL_SAMPLES, ds, filter_expr=pc.field("split") == split)
    if table.num_rows == 0:
        raise ValueError(f"{contracts.RETRIEVAL_SAMPLES.name}/ds={ds} has no {split!r} rows")
    cols = tables.to_numpy(table)
    x = {name: cols[name].astype(np.int32) for name in (*USER_FEATURES, "item_id", "item_city", "category_id")}
    x["history"] = pad_lists(cols["history"], cfg.etl.history_max_len)
    x["hard_negatives"] = pad_lists(cols["hard_negatives"], max(cfg.etl.retrieval_hard_negatives, 1))
    x["hard_negative_prob"] = cols["hard_negative_prob"].astype(np.float32)
    ids = cols["item_id"]
    x["item_prob"] = np.where((ids >= 0) & (ids < len(item_prob)), item_prob[np.clip(ids, 0, len(item_prob) - 1)], MIN_PROB)
    x["item_prob"] = x["item_prob"].astype(np.float32)
    x["weight"] = cols["weight"].astype(np.float32)
    return x


def positive_counts(item_ids: np.ndarray, n_items: int) -> np.ndarray:
    """How many train rows have each item id [n_items] as their positive (ids outside the table are dropped)."""
    ids = np.asarray(item_ids)
    return np.bincount(ids[(ids >= 0) & (ids < n_items)], minlength=n_items)[:n_items]


def _fit(model: keras.Model, x: dict[str, np.ndarray], epochs: int, batch_size: int, lr: float, seed: int) -> dict:
    order = np.random.default_rng(seed).permutation(len(x["item_id"]))
    shuffled = {k: v[order] for k, v in x.items()}
    model.compile(optimizer=keras.optimizers.Adam(lr))
    timer = EpochTimer(len(order))
    return model.fit(shuffled, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=2, callbacks=[timer]).history


def fit_youtube_dnn(cfg: Config, ds: str) -> tuple[YouTubeDNN, dict[str, list[float]]]:
    """Train the YouTube DNN on the train split: negatives drawn by popularity^0.75 (and, as configured, the batch's
    other positives), corrected by logQ; item tables from the day's snapshot when ``item_features``."""
    c = cfg.youtube_dnn
    keras.utils.set_random_seed(c.seed)
    sizes = tables.vocab_sizes(cfg.lake_root, ds)
    city, category, prob = item_tables(cfg, ds)
    x = load_samples(cfg, ds, "train", prob)
    model = YouTubeDNN(
        sizes["n_items"],
        sizes["n_cities"],
        sizes["n_categories"],
        c.embedding_dim,
        c.hidden_units,
        num_negatives=c.num_negatives,
        neg_prob=prob,
        dropout=c.dropout,
        seed=c.seed,
        temperature=c.temperature,
        in_batch_negatives=c.in_batch_negatives,
        item_features=c.item_features,
    )
    if c.item_features:
        model.set_item_tables(city, category)
    model.set_batch_prob(positive_counts(x["item_id"], sizes["n_items"]) + MIN_PROB)
    return model, _fit(model, x, c.epochs, c.batch_size, c.learning_rate, c.seed)


def fit_two_tower(cfg: Config, ds: str, pretrained: np.ndarray | None = None) -> tuple[TwoTower, dict[str, list[float]]]:
    """Train the two-tower model on the train split; ``pretrained`` item vectors (Item2Vec) feed the item tower."""
    c = cfg.two_tower
    keras.utils.set_random_seed(c.seed)
    sizes = tables.vocab_sizes(cfg.lake_root, ds)
    city, category, prob = item_tables(cfg, ds)
    x = load_samples(cfg, ds, "train", prob)
    # In-batch negatives are the batch's positives: their sampling probability is each item's share of
    # the train positives, not the popularity^0.75 table the YouTube DNN draws from.
    counts = positive_counts(x["item_id"], sizes["n_items"])
    x["item_prob"] = (counts[np.clip(x["item_id"], 0, None)] / len(x["item_id"])).astype(np.float32)
    n_items = sizes["n_items"]
    model = TwoTower(
        n_items,
        sizes["n_cities"],
        sizes["n_categories"],
        c.embedding_dim,
        c.hidden_units,
        tower=c.tower,
        temperature=c.temperature,
        pretrained_dim=0 if pretrained is None else pretrained.shape[1],
        dropout=c.dropout,
    )
    model.set_item_tables(city, category)
    if pretrained is not None:
        table = np.zeros((n_items, pretrained.shape[1]), np.float32)  # items newer than the vectors get zeros
        rows = min(n_items, len(pretrained))
        table[:rows] = pretrained[:rows]
        model.set_pretrained(table)
    return model, _fit(model, x, c.epochs, c.batch_size, c.learning_rate, c.seed)
