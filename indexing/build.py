"""Build, measure and register a FAISS index over a recall model's item vectors.

Run as ``python -m indexing.build --model item2vec --ds D --run-id R``: reads the item vectors logged
by training run R, builds the configured ``index_factory`` index (inner product), measures its
recall@K against exact search on the eval users' query vectors, and registers index + id map +
manifest as a version of ``<prefix>-<model>-index``.
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

from recpipe import tracking
from recpipe.config import Config, IndexConfig, load_config
from recpipe.runner import step_main
from training.artifacts import load_item_vectors, load_query_vectors

log = logging.getLogger(__name__)
INDEX_FILE = "index.faiss"
ID_MAP_FILE = "id_map.json"
MANIFEST_FILE = "manifest.json"
ARTIFACT_DIR = "faiss"


def build_index(vectors: np.ndarray, ids: np.ndarray, cfg: IndexConfig) -> faiss.Index:
    """A trained inner-product index over ``vectors`` whose FAISS ids are ``ids``."""
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(f"need one vector per id, received vectors {vectors.shape} for {len(ids)} ids")
    if not np.isfinite(vectors).all():
        raise ValueError("item vectors contain NaN or infinite values")
    base = faiss.index_factory(vectors.shape[1], cfg.factory, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexIDMap2(base) if not cfg.factory.startswith("IDMap") else base
    index.train(vectors)
    index.add_with_ids(vectors, ids.astype(np.int64))
    if "IVF" in cfg.factory:
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", cfg.nprobe)
    return index


def index_recall(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Mean share of the exact top-k (inner product) that the index also returns."""
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, k)
    _, found = index.search(queries, k)
    truth_ids = ids[truth]
    hits = [len(set(t) & set(f)) / k for t, f in zip(truth_ids, found, strict=True)]
    return float(np.mean(hits))


def latency_ms(index: faiss.Index, queries: np.ndarray, k: int, repeats: int = 3) -> float:
    """Median wall time of one batch-1 query, in milliseconds."""
    times = []
    for q in queries[: max(1, min(len(queries), 200))]:
        start = time.perf_counter()
        for _ in range(repeats):
            index.search(q[None, :], k)
        times.append((time.perf_counter() - start) / repeats)
    return float(np.median(times) * 1000)


def build_and_register(model_key: str, cfg: Config, ds: str, run_id: str) -> dict:
    """Build the index of training run ``run_id``, log it into that run and register it."""
    tracking.setup(cfg)
    vectors = load_item_vectors(run_id)
    ids = np.arange(len(vectors), dtype=np.int64)
    index = build_index(vectors, ids, cfg.index)
    queries = load_query_vectors(run_id)  # the eval users' query vectors the training run logged
    k = min(cfg.item2vec.top_k, len(ids))
    metrics = {
        f"index_recall_at_{cfg.item2vec.top_k}": index_recall(index, vectors, ids, queries, k),
        "index_latency_ms_p50_batch1": latency_ms(index, queries, k),
        "index_size": float(index.ntotal),
    }
    client = mlflow.MlflowClient()
    model_version = client.get_run(run_id).data.tags["model_version"]
    manifest = {
        "factory": cfg.index.factory,
        "nprobe": cfg.index.nprobe,
        "metric": "inner_product",
        "dim": int(vectors.shape[1]),
        "model": model_key,
        "model_version": int(model_version),
        "run_id": run_id,
        "ds": ds,
        "metrics": metrics,
    }
    with tempfile.TemporaryDirectory() as tmp:
        faiss.write_index(index, str(Path(tmp) / INDEX_FILE))
        (Path(tmp) / ID_MAP_FILE).write_text(json.dumps({"faiss_id_to_item_id": ids.tolist()}))
        (Path(tmp) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(tmp, artifact_path=ARTIFACT_DIR)
            mlflow.log_metrics(metrics)
            source = mlflow.get_artifact_uri(ARTIFACT_DIR)
    registered = tracking.index_name(cfg, model_key)
    tracking.ensure_registered_model(registered, f"FAISS index over {model_key} item vectors")
    tags = {"ds": ds, "run_id": run_id, "model_version": str(model_version), "factory": cfg.index.factory}
    version = client.create_model_version(registered, source=source, run_id=run_id, tags=tags)
    client.set_tag(run_id, "index_version", str(version.version))
    return {"model": model_key, "ds": ds, "run_id": run_id, "index_version": int(version.version), "metrics": metrics}


def _step(args) -> dict:
    if not args.run_id:
        raise SystemExit("--run-id (the training run whose item vectors to index) is required")
    return build_and_register(args.model, load_config(args.config), args.ds, args.run_id)


def main(argv: list[str] | None = None) -> dict:
    return step_main(__doc__, _step, tracking.RECALL_MODELS, argv)


if __name__ == "__main__":
    main()
