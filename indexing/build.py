"""Build, tune, validate and register the FAISS index over a recall model's item vectors.

Run as ``python -m indexing.build --model item2vec --ds D --run-id R``. Reads the item vectors logged by
training run R and the day's item snapshot (category, city), then:

1. builds the configured ``index_factory`` index (inner product; on a GPU when FAISS sees one), plus
   one sub-index per item category (``index.per_category``);
2. tunes the search setting (nprobe, efSearch) to the cheapest that reaches ``index.target_recall``
   recall@k against exact search, on one half of the eval users' query vectors;
3. validates on the other half: dimension and id map against the embedding table, recall@k against
   exact search (whole catalogue, within each category's sub-index and within the user's city through
   an id filter), latency p50/p99 at batch 1 and 256; under the gate's ``min_index_recall_at_k`` the
   index is refused and nothing is registered;
4. logs index file, id map, item metadata and a manifest (factory, tuned setting, metrics, the
   embedding model version that produced the vectors, ``ds``) into run R, and registers them as a
   version of ``<prefix>-<model>-index``.

``load_registered_index`` is the serving side: it refuses an index built from another model version
than the serving tower's.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import faiss
import mlflow
import numpy as np

from indexing import ann, artifact, filtering
from recpipe import contracts, tables, tracking
from recpipe.config import Config, load_config
from recpipe.runner import step_main
from training import catalogue

log = logging.getLogger(__name__)
ARTIFACT_DIR = "faiss"
ITEM_META_FILE = "item_meta.json"


def _split_queries(queries: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, ...]:
    """(tune queries, held-out queries, their row numbers): a seeded sample of at most ``limit``, halved."""
    order = np.random.default_rng(seed).permutation(len(queries))[:limit]
    if len(order) < 40:  # too few to halve: tune and validate on the same queries
        return queries[order], queries[order], order, order
    tune, held = order[: len(order) // 2], order[len(order) // 2 :]
    return queries[tune], queries[held], held, tune


def _restricted_recall(
    search, vectors: np.ndarray, ids: np.ndarray, groups: dict[int, np.ndarray], queries: np.ndarray, k: int
) -> float | None:
    """Mean recall@k, over groups of queries, of ``search(group, queries, k)`` against exact search in the group.

    ``groups`` maps a group (a category or a city) to the rows (of ``vectors``) it may return and
    ``search`` returns the item ids found; the mean is weighted by queries. None without any group.
    """
    found_share, weights = [], []
    for group, (rows, query_rows) in groups.items():
        if len(rows) == 0 or len(query_rows) == 0:
            continue
        kk = min(k, len(rows))
        truth = ann.exact_topk(vectors[rows], ids[rows], queries[query_rows], kk)
        found_share.append(ann.recall_at_k(search(group, queries[query_rows], kk), truth))
        weights.append(len(query_rows))
    return float(np.average(found_share, weights=weights)) if weights else None


def _item_meta(cfg: Config, ds: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category and city of each item id (-1 where the day's item snapshot does not have it)."""
    items = tables.to_numpy(
        tables.read_snapshot(cfg.lake_root, contracts.RAW_ITEMS, ds, columns=["item_id", "category_id", "city_id"])
    )
    category, city = np.full(len(ids), -1, np.int64), np.full(len(ids), -1, np.int64)
    where = {int(i): n for n, i in enumerate(ids)}
    for item, cat, c in zip(items["item_id"], items["category_id"], items["city_id"], strict=True):
        n = where.get(int(item))
        if n is not None:
            category[n], city[n] = cat, c
    return category, city


def build_release_index(
    cfg: Config,
    ds: str,
    vectors: np.ndarray,
    ids: np.ndarray,
    queries: np.ndarray,
    query_city: np.ndarray,
    category: np.ndarray,
    city: np.ndarray,
) -> dict:
    """Build, tune and measure the index and its category sub-indexes; the pieces ``artifact.save`` writes, and metrics.

    Raises ``ann.IndexValidationError`` for bad vectors, an untrainable factory, a recall target no
    setting reaches, or held-out recall under the gate's floor.
    """
    icfg, k = cfg.index, min(cfg.item2vec.top_k, len(ids))
    start = time.perf_counter()
    index = ann.build(vectors, ids, icfg.factory, train_sample=icfg.train_sample, seed=icfg.seed, device=icfg.device)
    tune_q, held_q, held_rows, tune_rows = _split_queries(queries, icfg.tune_queries, icfg.seed)
    # City-filtered search needs its own setting: the probed lists hold fewer of one city's items.
    city_params = _tune_city_filter(index, vectors, ids, city, tune_q, query_city[tune_rows], k, icfg.target_recall)
    params, tuned_recall = ann.tune(index, tune_q, ann.exact_topk(vectors, ids, tune_q, k), k, icfg.target_recall)
    metrics = ann.validate(index, vectors, ids, held_q, k, target=0.0)
    metrics["index_tune_recall_at_k"] = tuned_recall
    held_city = query_city[held_rows]
    by_city = {int(c): (np.flatnonzero(city == c), np.flatnonzero(held_city == c)) for c in np.unique(held_city) if c >= 0}
    city_recall = _restricted_recall(
        lambda c, q, kk: filtering.search_filtered(index, q, kk, ids[city == c], city_params)[1], vectors, ids, by_city, held_q, k
    )
    if city_recall is not None:
        metrics[f"index_city_recall_at_{k}"] = city_recall
    cats, cat_params = {}, {}
    if icfg.per_category:
        cats = filtering.category_indexes(
            vectors, ids, category, icfg.factory, train_sample=icfg.train_sample, seed=icfg.seed, device=icfg.device
        )
        everyone = np.arange(len(held_q))
        for cat, cat_index in cats.items():
            rows = np.flatnonzero(category == cat)
            kk = min(k, len(rows))
            truth = ann.exact_topk(vectors[rows], ids[rows], tune_q, kk)
            cat_params[str(cat)] = ann.tune(cat_index, tune_q, truth, kk, icfg.target_recall)[0]
        groups = {cat: (np.flatnonzero(category == cat), everyone) for cat in cats}
        cat_recall = _restricted_recall(
            lambda c, q, kk: filtering.search_category(cats, c, q, kk)[1], vectors, ids, groups, held_q, k
        )
        metrics[f"index_category_recall_at_{k}"] = cat_recall if cat_recall is not None else float("nan")
    metrics["index_build_seconds"] = time.perf_counter() - start
    floor = cfg.gates.min_index_recall_at_k
    if metrics[f"index_recall_at_{k}"] < floor:
        raise ann.IndexValidationError(
            f"held-out index recall@{k} is {metrics[f'index_recall_at_{k}']:.4f}, under the gate's floor {floor} "
            f"(tuned to {params} for {icfg.target_recall} on the tuning queries): not registering it"
        )
    return {
        "index": index,
        "params": params,
        "city_params": city_params,
        "categories": cats,
        "category_params": cat_params,
        "metrics": metrics,
    }


def _tune_city_filter(
    index,
    vectors: np.ndarray,
    ids: np.ndarray,
    city: np.ndarray,
    queries: np.ndarray,
    query_city: np.ndarray,
    k: int,
    target: float,
) -> dict[str, int]:
    """The cheapest setting at which searches filtered to the query's city reach ``target`` recall@k.

    Measured against exact search within the city, at k no larger than the smallest city's item count.
    If no setting reaches it, the best one is kept and a warning logged: the filtered recall is reported
    (``index_city_recall_at_k``), not gated. Leaves the index at the setting found.
    """
    known = np.flatnonzero(query_city >= 0)
    cities = [int(c) for c in np.unique(query_city[known]) if (city == c).any()]
    if ann.search_parameter(index) is None or not cities:
        return {}
    kk = min(k, *[int((city == c).sum()) for c in cities])
    groups = {c: np.flatnonzero(query_city == c) for c in cities}
    q = queries[np.concatenate(list(groups.values()))]
    truth = np.concatenate([ann.exact_topk(vectors[city == c], ids[city == c], queries[rows], kk) for c, rows in groups.items()])
    bounds = np.cumsum([0, *[len(rows) for rows in groups.values()]])

    def filtered(idx, queries_in_order, n):
        found = [
            filtering.search_filtered(idx, queries_in_order[a:b], n, ids[city == c])[1]
            for c, a, b in zip(groups, bounds[:-1], bounds[1:], strict=True)
        ]
        return np.concatenate(found)

    try:
        return ann.tune(index, q, truth, kk, target, search=filtered)[0]
    except ann.RecallTargetMissed as exc:
        log.warning("city-filtered search: %s; keeping %s", exc, exc.params)
        return exc.params


def _inputs(cfg: Config, ds: str, run_id: str) -> tuple[np.ndarray, ...]:
    """(item ids, item vectors, query vectors, each query's city, each item's category and city).

    The queries' cities come with the query vectors (``recpipe.tables.load_query_table``); a run logged before
    they did has them read from the day's recall eval set, whose row order the query vectors keep.
    """
    ids, vectors = tables.load_item_table(run_id)
    logged = tables.load_query_table(run_id)
    queries = logged["vector"]
    query_city = logged.get("user_city")
    if query_city is None:
        query_city = tables.read_table(cfg.lake_root, contracts.RECALL_EVAL, ds, columns=["user_city"]).column(0).to_numpy()
    query_city = np.asarray(query_city, np.int64)
    if len(query_city) != len(queries):
        raise ann.IndexValidationError(
            f"run {run_id} logged {len(queries)} query vectors for {len(query_city)} eval users of ds={ds}"
        )
    return (ids, vectors, queries, query_city, *_item_meta(cfg, ds, ids))


def build_and_register(model_key: str, cfg: Config, ds: str, run_id: str) -> dict:
    """Build the index of training run ``run_id``, log it into that run and register it (once per run)."""
    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    registered = tracking.index_name(cfg, catalogue.indexed(model_key).name)
    if "index_version" in run.data.tags:  # a retry after the index was registered: nothing to redo
        version = int(run.data.tags["index_version"])
        log.info("run %s already has %s v%s", run_id, registered, version)
        return {"model": model_key, "ds": ds, "run_id": run_id, "index_version": version, "metrics": {}}
    model_version = int(run.data.tags["model_version"])
    ids, vectors, queries, query_city, category, city = _inputs(cfg, ds, run_id)
    try:
        built = build_release_index(cfg, ds, vectors, ids, queries, query_city, category, city)
    except ann.IndexValidationError as exc:
        client.set_tag(run_id, "index_error", str(exc)[:5000])
        raise
    metrics, k = built["metrics"], min(cfg.item2vec.top_k, len(ids))
    manifest = {
        "factory": cfg.index.factory,
        "search_params": built["params"],
        "category_search_params": built["category_params"],
        "city_filter_search_params": built["city_params"],
        "target_recall": cfg.index.target_recall,
        "k": k,
        "metric": "inner_product",
        "dim": int(vectors.shape[1]),
        "n_items": len(ids),
        "model": model_key,
        "model_version": model_version,
        "run_id": run_id,
        "ds": ds,
        "built_on": "gpu" if cfg.index.device == "auto" and faiss.get_num_gpus() > 0 else "cpu",
        "faiss_version": faiss.__version__,
        "metrics": metrics,
    }
    with tempfile.TemporaryDirectory() as tmp:
        meta = {"item_id": ids.tolist(), "category_id": category.tolist(), "city_id": city.tolist()}
        (Path(tmp) / ITEM_META_FILE).write_text(json.dumps(meta))
        artifact.save(Path(tmp), built["index"], ids, manifest, built["categories"])
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(tmp, artifact_path=ARTIFACT_DIR)
            mlflow.log_metrics({name: value for name, value in metrics.items() if np.isfinite(value)})
            mlflow.set_tags({"index_factory": cfg.index.factory, "index_params": json.dumps(built["params"])})
            source = mlflow.get_artifact_uri(ARTIFACT_DIR)
    tracking.ensure_registered_model(registered, f"FAISS index over {model_key} item vectors")
    tags = {"ds": ds, "run_id": run_id, "model_version": str(model_version), "factory": cfg.index.factory}
    version = client.create_model_version(registered, source=source, run_id=run_id, tags=tags)
    client.set_tag(run_id, "index_version", str(version.version))
    log.info(
        "registered %s v%s: %s, %s, recall@%d %.4f",
        registered,
        version.version,
        cfg.index.factory,
        built["params"],
        k,
        metrics[f"index_recall_at_{k}"],
    )
    return {"model": model_key, "ds": ds, "run_id": run_id, "index_version": int(version.version), "metrics": metrics}


def load_registered_index(cfg: Config, model_key: str, index_version: int | None = None, tower_version: int | None = None):
    """``artifact.load`` of a registered index version (default: the champion release's).

    ``tower_version`` is the model version whose query tower will search it (default: the champion
    release's model version); an index built from other vectors raises ``artifact.IndexVersionMismatch``.
    """
    from indexing import release

    tracking.setup(cfg)
    serving = release.current(cfg, model_key)
    if index_version is None or tower_version is None:
        if serving is None:
            raise release.ReleaseError(f"{tracking.model_name(cfg, model_key)} has no champion release: name the versions")
        index_version = serving.index_version if index_version is None else index_version
        tower_version = serving.model_version if tower_version is None else tower_version
    source = mlflow.MlflowClient().get_model_version(tracking.index_name(cfg, model_key), str(index_version)).source
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp)
        return artifact.load(Path(local), expected_model_version=tower_version)


def _step(args) -> dict:
    if not args.run_id:
        raise SystemExit("--run-id (the training run whose item vectors to index) is required")
    return build_and_register(args.model, load_config(args.config), args.ds, args.run_id)


def main(argv: list[str] | None = None) -> dict:
    return step_main(__doc__, _step, catalogue.INDEXED_MODELS, argv)


if __name__ == "__main__":
    main()
