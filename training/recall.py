"""Recall models: fitting Item2Vec, its user vectors and business-line lists; evaluating any item-vector table."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recpipe import contracts, lake, tables
from recpipe.config import USER_VECTORS, Config
from recpipe.tracking import SLICE_SEPARATOR
from training import metrics
from training.compute import EpochTimer
from training.models.item2vec import Item2Vec, Item2VecCBOW

USER_FEATURES = ("user_city", "user_type", "device", "hour", "weekday", "city_id")


@dataclasses.dataclass(frozen=True)
class RecallEvalSet:
    """The users of the eval day with history: their history, eval-day clicks, profile and request context."""

    user_ids: np.ndarray
    histories: list[list[int]]
    targets: list[list[int]]  # the items each user clicked on the eval day
    actions: dict[str, list[list[int]]]  # deeper action (collect, apply, call, im) -> each user's items of it that day
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
    ev = tables.to_numpy(tables.read_table(cfg.lake_root, contracts.RECALL_EVAL, ds))
    pop = tables.to_numpy(tables.read_table(cfg.lake_root, contracts.ITEM_POPULARITY, ds, columns=["item_id", "clicks"]))
    order = np.lexsort((pop["item_id"], -pop["clicks"]))
    items = tables.to_numpy(tables.read_snapshot(cfg.lake_root, contracts.RAW_ITEMS, ds, columns=["item_id", "category_id"]))
    n_items = tables.n_items(cfg.lake_root, ds)
    item_category = np.full(n_items, -1, dtype=np.int32)
    item_category[items["item_id"]] = items["category_id"]
    oracle: dict[int, list[int]] = {}
    if lake.partition_ready(cfg.lake_root, contracts.ORACLE_TOPK, ds):
        top = tables.read_table(cfg.lake_root, contracts.ORACLE_TOPK, ds)
        oracle = dict(zip(top.column("user_id").to_pylist(), top.column("items").to_pylist(), strict=True))
    histories = [list(h) for h in ev["history"]]
    features = {name: ev[name].astype(np.int32) for name in USER_FEATURES}
    features["history"] = pad_lists(histories, cfg.etl.history_max_len)
    targets = [list(t) for t in ev["targets"]]
    actions = {e: [[] for _ in targets] for e in contracts.POSITIVE_ACTIONS if e != "click"}
    for row, (items, events) in enumerate(zip(ev["action_items"], ev["action_events"], strict=True)):
        for item, event in zip(items, events, strict=True):
            actions[event][row].append(int(item))
    popular = pop["item_id"][order]
    return RecallEvalSet(ev["user_id"], histories, targets, actions, features, item_category, n_items, popular, oracle)


def history_weights(n: int, scheme: str = "mean", half_life: float = 1.0) -> np.ndarray:
    """Weights of ``n`` history clicks, oldest first: 1 each for "mean"; for "recency", 0.5 ** (age / half_life)
    where the newest click has age 0 and the one before it age 1."""
    if scheme == "mean":
        return np.ones(n)
    if scheme == "recency":
        if not half_life > 0:
            raise ValueError(f"half_life must be positive (in clicks), received {half_life}")
        return 0.5 ** (np.arange(n - 1, -1, -1) / half_life)
    raise ValueError(f"scheme must be one of {', '.join(USER_VECTORS)}; received {scheme!r}")


def _weighted_mean(item_vectors: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (weights[:, None] * item_vectors[ids]).sum(axis=0) / weights.sum()


def user_vectors(
    item_vectors: np.ndarray, histories: list[list[int]], scheme: str = "mean", half_life: float = 1.0
) -> np.ndarray:
    """Each user's vector: the (``history_weights``-weighted) mean of the vectors of their history's items.

    Ids without a vector (newer than the table) are skipped; the others keep their age in the history.
    A user with no known item gets zeros.
    """
    out = np.zeros((len(histories), item_vectors.shape[1]), dtype=np.float32)
    for row, hist in enumerate(histories):
        ids = np.asarray(hist, dtype=np.int64)
        known = (ids >= 0) & (ids < item_vectors.shape[0])
        if known.any():
            out[row] = _weighted_mean(item_vectors, ids[known], history_weights(len(ids), scheme, half_life)[known])
    return out


def item2vec_queries(cfg: Config, item_vectors: np.ndarray, histories: list[list[int]]) -> np.ndarray:
    """The single user vectors of Item2Vec as configured (``item2vec.user_vector``, ``recency_half_life``)."""
    return user_vectors(item_vectors, histories, cfg.item2vec.user_vector, cfg.item2vec.recency_half_life)


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
    out.update(position_metrics(queries, item_vectors, eval_set))
    k = cfg.recall_eval.slice_k
    out.update(metrics.sliced_recall(list(recs), eval_set.targets, k, eval_set.features["user_city"], eval_set.item_category))
    return out


def position_metrics(queries: np.ndarray, item_vectors: np.ndarray, eval_set: RecallEvalSet) -> dict[str, float]:
    """Where the targets fall in each user's full ranking, per behaviour (``metrics.target_positions``).

    ``mean_target_rank`` and ``recall_auc`` are the clicks' (mean position; mean per-user AUC of the clicked
    items against the rest). The slices ``mean_target_rank__event_<e>`` and ``recall_auc__event_<e>``, with
    ``rows__event_<e>`` targets behind each, give the same for each behaviour of the day: click, and every deeper
    action (collect, apply, call, im) that some eval user took; an item a user acted on ranking higher than
    the ones only clicked is what a model trained with the cost weights should show.
    """
    kinds = {"click": eval_set.targets, **{e: lists for e, lists in eval_set.actions.items() if any(lists)}}
    found = metrics.target_positions(queries, item_vectors, kinds, eval_set.n_items)

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else float("nan")

    out = {"mean_target_rank": mean(found["click"][0]), "recall_auc": mean(found["click"][1])}
    for kind, (positions, aucs) in found.items():
        label = f"{SLICE_SEPARATOR}event_{kind}"
        out[f"mean_target_rank{label}"], out[f"recall_auc{label}"] = mean(positions), mean(aucs)
        out[f"rows{label}"] = float(len(positions))
    return out


def evaluate_vectors(cfg: Config, item_vectors: np.ndarray, eval_set: RecallEvalSet) -> dict[str, float]:
    """Item2Vec's evaluation as configured: queries from ``item2vec_queries``; with ``item2vec.multi_line`` the
    list metrics come from the merged business-line lists (``multi_line_metrics``), the mean target rank
    from the single vector (a merged list has no full ranking)."""
    out = evaluate_queries(cfg, item2vec_queries(cfg, item_vectors, eval_set.histories), item_vectors, eval_set)
    if cfg.item2vec.multi_line:
        out.update(multi_line_metrics(cfg, item_vectors, eval_set))
    return out


def evaluate_lists(cfg: Config, lists: Mapping[int, Sequence[Sequence[int]]], eval_set: RecallEvalSet) -> dict[str, float]:
    """The metrics of ``evaluate_queries`` except the positions (``position_metrics``), from ranked lists: ``lists[k]`` holds each
    eval user's top-k list for every k of the evaluation (one ranking cut at each k is fine too)."""
    ks = _ks(cfg)
    missing = sorted(set(ks) - set(lists))
    if missing:
        raise ValueError(f"need recommendation lists for every k in {ks}, received k={sorted(lists)}")
    out: dict[str, float] = {}
    for k in ks:
        out.update(metrics.retrieval_metrics(lists[k], eval_set.targets, [k], eval_set.n_items))
    k = cfg.recall_eval.slice_k
    out.update(metrics.sliced_recall(lists[k], eval_set.targets, k, eval_set.features["user_city"], eval_set.item_category))
    return out


def itemknn_similarity(targets: np.ndarray, contexts: np.ndarray, n_items: int):
    """Item-item cosine similarity over co-occurrence counts: ``c(i, j) / sqrt(c(i) c(j))``, symmetric, zero diagonal.

    ``targets[n]`` and ``contexts[n]`` co-occurred once (a positive skip-gram pair of the train window); ids outside
    ``[0, n_items)`` are dropped. Returns a ``scipy.sparse.csr_matrix`` of shape ``(n_items, n_items)``.
    """
    from scipy import sparse

    t, c = np.asarray(targets, np.int64), np.asarray(contexts, np.int64)
    keep = (t >= 0) & (t < n_items) & (c >= 0) & (c < n_items) & (t != c)
    t, c = t[keep], c[keep]
    counts = sparse.coo_matrix(
        (np.ones(2 * len(t), np.float32), (np.concatenate([t, c]), np.concatenate([c, t]))), shape=(n_items, n_items)
    ).tocsr()
    counts.sum_duplicates()
    norm = np.sqrt(np.asarray(counts.sum(axis=1)).reshape(-1))
    inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
    return (sparse.diags(inv) @ counts @ sparse.diags(inv)).tocsr().astype(np.float32)


def itemknn_lists(
    similarity,
    histories: Sequence[Sequence[int]],
    k: int,
    popular: np.ndarray,
    last: int = 50,
    exclude_seen: bool = False,
    batch: int = 1024,
) -> list[np.ndarray]:
    """Each user's top ``k`` items by item-kNN: the summed similarity to the last ``last`` items of the history.

    Items with equal scores (notably no co-occurrence at all) are ranked by popularity (``popular``: item ids, most
    clicked first), so every list is full. With ``exclude_seen`` the history's items are never recommended.
    """
    from scipy import sparse

    n_items = similarity.shape[0]
    # A tie-breaker smaller than any similarity step: the popularity rank, scaled into (0, 1e-6].
    prior = np.zeros(n_items, np.float64)
    ranked = np.asarray(popular, np.int64)
    ranked = ranked[(ranked >= 0) & (ranked < n_items)]
    prior[ranked] = (len(ranked) - np.arange(len(ranked))) / (len(ranked) + 1) * 1e-6
    out: list[np.ndarray] = []
    for start in range(0, len(histories), batch):
        chunk = [np.unique([i for i in list(h)[-last:] if 0 <= i < n_items]) for h in histories[start : start + batch]]
        rows = np.concatenate([np.full(len(h), n, np.int64) for n, h in enumerate(chunk)]) if chunk else np.empty(0)
        cols = np.concatenate(chunk) if chunk else np.empty(0)
        profile = sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(chunk), n_items))
        scores = (profile @ similarity).toarray().astype(np.float64) + prior
        if exclude_seen:
            scores[rows, cols] = -np.inf
        top = np.argpartition(-scores, min(k, n_items - 1), axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out.extend(np.take_along_axis(top, order, axis=1))
    return out


def itemknn_metrics(cfg: Config, ds: str, eval_set: RecallEvalSet) -> dict[str, float]:
    """The item-kNN reference on the eval users, prefixed ``itemknn_``: cosine over the co-occurrences of the day's
    train window (``training/item2vec_pairs`` positives; the CBOW contexts where only those exist), scored from each
    user's last ``recall_eval.itemknn_history`` items; empty when that setting is 0."""
    last = cfg.recall_eval.itemknn_history
    if last <= 0:
        return {}
    if lake.partition_ready(cfg.lake_root, contracts.ITEM2VEC_PAIRS, ds) or not lake.partition_ready(
        cfg.lake_root, contracts.ITEM2VEC_CBOW, ds
    ):
        pairs = tables.read_table(
            cfg.lake_root, contracts.ITEM2VEC_PAIRS, ds, columns=["target", "context"], filter_expr=pc.field("label") > 0
        )
        targets, contexts = pairs.column("target").to_numpy(), pairs.column("context").to_numpy()
    else:  # a lake with the CBOW contexts only: the same windows, one row per target
        cbow = tables.read_table(cfg.lake_root, contracts.ITEM2VEC_CBOW, ds, columns=["target", "context"])
        lengths = pc.list_value_length(cbow.column("context")).to_numpy(zero_copy_only=False)
        targets = np.repeat(cbow.column("target").to_numpy(), lengths)
        contexts = pc.list_flatten(cbow.column("context")).to_numpy()
    similarity = itemknn_similarity(targets, contexts, eval_set.n_items)
    ks = _ks(cfg)
    lists = itemknn_lists(
        similarity, eval_set.histories, max(ks), eval_set.popular, last=last, exclude_seen=cfg.recall_eval.exclude_seen
    )
    found = metrics.retrieval_metrics([list(r) for r in lists], eval_set.targets, ks, eval_set.n_items)
    return {f"itemknn_{name}": value for name, value in found.items()}


def reference_metrics(cfg: Config, eval_set: RecallEvalSet, ds: str | None = None) -> dict[str, float]:
    """The popularity baseline, the oracle and (with ``ds``, the day whose train window to learn from) item-kNN,
    on the same users, prefixed ``popularity_``, ``oracle_`` and ``itemknn_``."""
    ks = _ks(cfg)

    def score(prefix: str, lists: list) -> dict[str, float]:
        found = metrics.retrieval_metrics(lists, eval_set.targets, ks, eval_set.n_items)
        return {f"{prefix}_{name}": value for name, value in found.items()}

    out = score("popularity", [list(eval_set.popular[: max(ks)])] * len(eval_set.targets))
    if eval_set.oracle:
        out.update(score("oracle", [eval_set.oracle.get(int(u), []) for u in eval_set.user_ids]))
    if ds is not None:
        out.update(itemknn_metrics(cfg, ds, eval_set))
    return out


def line_quotas(clicks: Mapping[int, int], k: int) -> dict[int, int]:
    """Slots of each business line in a top-k list: proportional to its clicks, at least 1 per line.

    A line whose proportional share is under one slot gets exactly one; the other lines share the slots
    left in proportion to their clicks, by largest remainder (ties: more clicks, then the smaller line id).
    With more lines than k, only the k lines with the most clicks (ties: smaller id) get a slot.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, received {k}")
    rest = sorted((line for line, n in clicks.items() if n > 0), key=lambda line: (-clicks[line], line))[:k]
    quota: dict[int, int] = {}
    slots = k
    while small := [line for line in rest if clicks[line] * slots < sum(clicks[r] for r in rest)]:
        quota.update(dict.fromkeys(small, 1))
        slots -= len(small)
        rest = [line for line in rest if line not in small]
    total = sum(clicks[line] for line in rest)
    quota.update({line: slots * clicks[line] // total for line in rest})
    by_remainder = sorted(rest, key=lambda line: (-(slots * clicks[line] % total), -clicks[line], line))
    for line in by_remainder[: slots - sum(quota[line] for line in rest)]:
        quota[line] += 1
    return quota


def merge_lines(
    ranked: Mapping[int, Sequence[tuple[int, float]]], quotas: Mapping[int, int], fallback: Sequence[int], k: int
) -> list[int]:
    """One user's top-k list from per-line rankings: each line's best ``quotas[line]`` (item, score) pairs,
    ordered by score (ties: smaller item id), duplicates dropped (the best kept), then filled up from
    ``fallback`` (the single-vector list) in its order, skipping items already in, up to k items."""
    picked = [(score, item) for line, q in quotas.items() for item, score in list(ranked.get(line, ()))[:q]]
    out: list[int] = []
    seen: set[int] = set()
    for item in [item for _score, item in sorted(picked, key=lambda p: (-p[0], p[1]))] + list(fallback):
        if len(out) < k and int(item) not in seen:
            out.append(int(item))
            seen.add(int(item))
    return out


@dataclasses.dataclass(frozen=True)
class LineCandidates:
    """Per user: clicks per business line, each line's ranked (item, score) pairs and the single-vector list."""

    clicks: list[dict[int, int]]
    ranked: list[dict[int, list[tuple[int, float]]]]
    fallback: np.ndarray  # [U, depth] item ids

    def lists(self, k: int) -> list[list[int]]:
        """Every user's merged top-k list (k at most the depth the candidates were searched to)."""
        return [
            merge_lines(ranked, line_quotas(clicks, k) if clicks else {}, fallback, k)
            for clicks, ranked, fallback in zip(self.clicks, self.ranked, self.fallback, strict=True)
        ]


def line_candidates(
    item_vectors: np.ndarray,
    histories: list[list[int]],
    item_category: np.ndarray,
    depth: int,
    *,
    scheme: str = "mean",
    half_life: float = 1.0,
    exclude: Sequence[Sequence[int]] | None = None,
    batch: int = 1024,
) -> LineCandidates:
    """Search each user's business lines (item categories) to ``depth``, for ``LineCandidates.lists``.

    A line's vector is the ``history_weights``-weighted mean of the vectors of the user's clicks in that
    line (ages counted in the whole history); it searches only that line's items, by exact inner product.
    Clicks on items without a vector or a category belong to no line. ``exclude`` (per user) is never
    recommended; the fallback is the single user vector's top ``depth`` over all items.
    """
    n = item_vectors.shape[0]
    category = np.full(n, -1, dtype=np.int64)
    category[: min(n, len(item_category))] = item_category[:n]
    clicks: list[dict[int, int]] = []
    line_rows: dict[int, list[tuple[int, np.ndarray]]] = {}
    for row, hist in enumerate(histories):
        ids = np.asarray(hist, dtype=np.int64)
        weights = history_weights(len(ids), scheme, half_life)
        known = (ids >= 0) & (ids < n)
        lines = np.where(known, category[np.clip(ids, 0, n - 1)], -1)
        clicks.append({int(c): int((lines == c).sum()) for c in np.unique(lines[lines >= 0])})
        for line in clicks[-1]:
            in_line = lines == line
            line_rows.setdefault(line, []).append((row, _weighted_mean(item_vectors, ids[in_line], weights[in_line])))
    ranked: list[dict[int, list[tuple[int, float]]]] = [{} for _ in histories]
    for line, entries in line_rows.items():
        items = np.flatnonzero(category == line)
        for start in range(0, len(entries), batch):
            chunk = entries[start : start + batch]
            scores = np.stack([vector for _row, vector in chunk]).astype(np.float32) @ item_vectors[items].T
            for i, (row, _vector) in enumerate(chunk):
                if exclude is not None:
                    scores[i, np.isin(items, np.asarray(exclude[row], dtype=np.int64))] = -np.inf
            top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
            for i, (row, _vector) in enumerate(chunk):
                ranked[row][line] = [(int(items[j]), float(scores[i, j])) for j in top[i] if np.isfinite(scores[i, j])]
    queries = user_vectors(item_vectors, histories, scheme, half_life)
    return LineCandidates(clicks, ranked, metrics.top_k(queries, item_vectors, depth, exclude=exclude))


def multi_line_recommendations(
    item_vectors: np.ndarray,
    histories: list[list[int]],
    item_category: np.ndarray,
    k: int,
    *,
    scheme: str = "mean",
    half_life: float = 1.0,
    exclude: Sequence[Sequence[int]] | None = None,
) -> list[list[int]]:
    """Each user's multi-line top-k list: one vector per business line of their history, each searching its
    own line; lists merged with a quota per line proportional to its share of the clicks (at least 1),
    ordered by score, duplicates removed, filled up from the single-vector list (see ``line_candidates``)."""
    found = line_candidates(item_vectors, histories, item_category, k, scheme=scheme, half_life=half_life, exclude=exclude)
    return found.lists(k)


def multi_line_metrics(cfg: Config, item_vectors: np.ndarray, eval_set: RecallEvalSet) -> dict[str, float]:
    """``evaluate_lists`` of the multi-line lists, one merge per k (each k's list has its own quotas)."""
    ks, c = _ks(cfg), cfg.item2vec
    found = line_candidates(
        item_vectors,
        eval_set.histories,
        eval_set.item_category,
        max(ks),
        scheme=c.user_vector,
        half_life=c.recency_half_life,
        exclude=eval_set.histories if cfg.recall_eval.exclude_seen else None,
    )
    return evaluate_lists(cfg, {k: found.lists(k) for k in ks}, eval_set)


def pad_list_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list<int> column -> int32 [N, longest list], left-aligned, padded with -1 (vectorised ``pad_lists``)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy().astype(np.int64)
    out = np.full((len(column), int(lengths.max(initial=0))), -1, dtype=np.int32)
    flat = pc.list_flatten(column).to_numpy()
    rows = np.repeat(np.arange(len(column)), lengths)
    out[rows, np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)] = flat
    return out


def _neg_prob(cfg: Config, ds: str, n_items: int) -> np.ndarray:
    """Per item id, the global negative sampler's probability (popularity^0.75); 0 for items it never draws."""
    pop = tables.to_numpy(tables.read_table(cfg.lake_root, contracts.ITEM_POPULARITY, ds, columns=["item_id", "neg_prob"]))
    prob = np.zeros(n_items, dtype=np.float64)
    known = (pop["item_id"] >= 0) & (pop["item_id"] < n_items)
    prob[pop["item_id"][known]] = pop["neg_prob"][known]
    return prob


def fit_item2vec(cfg: Config, ds: str) -> tuple[Item2Vec | Item2VecCBOW, dict[str, list[float]]]:
    """Train Item2Vec in the configured ``item2vec.mode``; returns the model and its loss history."""
    keras.utils.set_random_seed(cfg.item2vec.seed)
    return _fit_cbow(cfg, ds) if cfg.item2vec.mode == "cbow" else _fit_skipgram(cfg, ds)


def _fit_skipgram(cfg: Config, ds: str) -> tuple[Item2Vec, dict[str, list[float]]]:
    """Skip-gram on the day's (target, context, label) pairs, negatives made by Spark."""
    c = cfg.item2vec
    pairs = tables.to_numpy(
        tables.read_table(cfg.lake_root, contracts.ITEM2VEC_PAIRS, ds, columns=["target", "context", "label"])
    )
    if len(pairs["label"]) == 0:
        raise ValueError(f"{contracts.ITEM2VEC_PAIRS.name}/ds={ds} holds no pairs: nothing to train on")
    order = np.random.default_rng(c.seed).permutation(len(pairs["label"]))
    model = Item2Vec(tables.n_items(cfg.lake_root, ds), c.embedding_dim)
    model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(
        {"target": pairs["target"][order], "context": pairs["context"][order]},
        pairs["label"][order].astype(np.float32),
        batch_size=c.batch_size,
        epochs=c.epochs,
        verbose=2,
        callbacks=[EpochTimer(len(order))],
    )
    return model, history.history


def _fit_cbow(cfg: Config, ds: str) -> tuple[Item2VecCBOW, dict[str, list[float]]]:
    """CBOW on the day's (target, context list) rows; negatives drawn in the model by popularity^0.75."""
    c = cfg.item2vec
    n_items = tables.n_items(cfg.lake_root, ds)
    table = tables.read_table(cfg.lake_root, contracts.ITEM2VEC_CBOW, ds, columns=["target", "context"])
    target = table.column("target").to_numpy()
    keep = (target >= 0) & (target < n_items)  # a target outside the item snapshot has no output row
    if not keep.any():
        raise ValueError(
            f"{contracts.ITEM2VEC_CBOW.name}/ds={ds} holds no row with a target in [0, {n_items}) "
            f"({table.num_rows} rows): nothing to train on"
        )
    order = np.random.default_rng(c.seed).permutation(np.flatnonzero(keep))
    x = {"target": target[order], "context": pad_list_column(table.column("context"))[order]}
    model = Item2VecCBOW(n_items, c.embedding_dim, c.cbow_negatives, _neg_prob(cfg, ds, n_items), seed=c.seed)
    model.compile(optimizer=keras.optimizers.Adam(c.learning_rate))
    return model, model.fit(x, batch_size=c.batch_size, epochs=c.epochs, verbose=2, callbacks=[EpochTimer(len(order))]).history
