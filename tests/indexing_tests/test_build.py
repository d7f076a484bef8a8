"""The index step: build, tune, validate, register and load back, against a real MLflow registry (SQLite)."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from indexing import ann, artifact, build, filtering
from recpipe import tracking
from recpipe.config import Config, GateConfig, IndexConfig

N_ITEMS, DIM, CATEGORIES, CITIES = 1200, 16, 4, 3


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(12, DIM))
    x = centres[rng.integers(0, 12, n)] + 0.4 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _inputs():
    ids = np.arange(5000, 5000 + N_ITEMS, dtype=np.int64)  # item ids are not row numbers
    category = np.arange(N_ITEMS) % CATEGORIES
    category[:7] = -1  # items missing from the day's snapshot
    city = (np.arange(N_ITEMS) // 7) % CITIES
    queries = _clustered(300, seed=2)
    return ids, _clustered(N_ITEMS, seed=1), queries, np.arange(300) % CITIES, category, city


def _cfg(cfg: Config, **index) -> Config:
    import dataclasses

    return dataclasses.replace(cfg, index=IndexConfig(**{"factory": "IVF32,Flat", "target_recall": 0.95, **index}))


def test_the_index_is_tuned_validated_and_filtered(cfg):
    ids, vectors, queries, query_city, category, city = _inputs()
    built = build.build_release_index(_cfg(cfg), "2026-11-05", vectors, ids, queries, query_city, category, city)
    m, index = built["metrics"], built["index"]
    assert set(built["params"]) == {"nprobe"} and 1 <= built["params"]["nprobe"] < 32
    assert m["index_tune_recall_at_k"] >= 0.95 and m["index_recall_at_50"] >= cfg.gates.min_index_recall_at_k
    assert m["index_latency_ms_p50_batch1"] <= m["index_latency_ms_p99_batch1"] and m["index_qps_batch256"] > 0
    assert m["index_size"] == N_ITEMS and m["index_city_recall_at_50"] >= 0.9
    assert set(built["city_params"]) == {"nprobe"}  # tuned for city-filtered queries on their own
    assert sorted(built["categories"]) == list(range(CATEGORIES))  # unknown (-1) has no sub-index
    for cat, cat_index in built["categories"].items():  # each sub-index holds exactly its category's items
        assert set(faiss_ids(cat_index)) == set(ids[category == cat])
    assert m["index_category_recall_at_50"] >= 0.95
    _, found = filtering.search_filtered(index, queries[:20], 50, ids[city == 1])
    assert set(found[found >= 0].tolist()) <= set(ids[city == 1].tolist())


def faiss_ids(index) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(faiss.downcast_index(index).id_map)


def _training_run(cfg: Config, model: str = "item2vec", version: str = "1") -> str:
    tracking.setup(cfg)
    with mlflow.start_run(tags={"model": model, "ds": "2026-11-05", "stage": "train", "model_version": version}) as run:
        return run.info.run_id


def test_register_then_load_refuses_another_tower(cfg, monkeypatch):
    monkeypatch.setattr(build, "_inputs", lambda *_: _inputs())
    cfg = _cfg(cfg)
    run_id = _training_run(cfg)
    out = build.build_and_register("item2vec", cfg, "2026-11-05", run_id)
    assert out["index_version"] == 1
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    assert run.data.tags["index_version"] == "1" and set(json.loads(run.data.tags["index_params"])) == {"nprobe"}
    assert run.data.tags["index_factory"] == "IVF32,Flat" and run.data.metrics["index_recall_at_50"] >= 0.9
    version = client.get_model_version(tracking.index_name(cfg, "item2vec"), "1")
    assert version.tags["model_version"] == "1" and version.tags["ds"] == "2026-11-05"

    index, ids, manifest, cats = build.load_registered_index(cfg, "item2vec", index_version=1, tower_version=1)
    assert manifest["model_version"] == 1 and manifest["search_params"] == json.loads(run.data.tags["index_params"])
    assert manifest["factory"] == "IVF32,Flat" and manifest["ds"] == "2026-11-05" and manifest["dim"] == DIM
    assert sorted(ids.tolist()) == list(range(5000, 5000 + N_ITEMS)) and len(cats) == CATEGORIES
    assert ann.search_parameter(index) == "nprobe" and faiss_nprobe(index) == manifest["search_params"]["nprobe"]
    with pytest.raises(artifact.IndexVersionMismatch, match="built from item2vec v1 vectors; the serving tower is v2"):
        build.load_registered_index(cfg, "item2vec", index_version=1, tower_version=2)

    again = build.build_and_register("item2vec", cfg, "2026-11-05", run_id)  # a retry of a finished task
    assert again["index_version"] == 1
    assert len(client.search_model_versions(f"name = '{tracking.index_name(cfg, 'item2vec')}'")) == 1


def faiss_nprobe(index) -> int:
    import faiss

    return faiss.extract_index_ivf(index).nprobe


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("nan", r"1 item vectors are NaN or infinite \(item ids \[5003\]\)"),
        ("zero", r"1 item vectors are all zeros \(item ids \[5004\]\)"),
        ("pq", "IndexIVFPQ misses recall@50 0.95: the best reached is"),
    ],
)
def test_a_bad_index_is_refused_and_nothing_is_registered(cfg, monkeypatch, change, message):
    ids, vectors, *rest = _inputs()
    vectors = vectors.copy()
    if change == "nan":
        vectors[3, 2] = np.nan
    if change == "zero":
        vectors[4] = 0.0
    monkeypatch.setattr(build, "_inputs", lambda *_: (ids, vectors, *rest))
    factory = "IVF8,PQ2x4" if change == "pq" else "IVF32,Flat"  # 2 codes of 4 bits cannot reach 0.95 recall
    cfg = _cfg(cfg, factory=factory)
    run_id = _training_run(cfg)
    with pytest.raises(ann.IndexValidationError, match=message):
        build.build_and_register("item2vec", cfg, "2026-11-05", run_id)
    assert mlflow.MlflowClient().get_run(run_id).data.tags["index_error"]
    assert "index_version" not in mlflow.MlflowClient().get_run(run_id).data.tags
    assert tracking.alias_version(cfg, tracking.index_name(cfg, "item2vec")) is None


def test_held_out_recall_under_the_gate_floor_is_refused(cfg):
    import dataclasses

    ids, vectors, queries, query_city, category, city = _inputs()
    strict = dataclasses.replace(_cfg(cfg, target_recall=0.5), gates=GateConfig(min_index_recall_at_k=0.99))
    with pytest.raises(ann.IndexValidationError, match=r"under the gate's floor 0\.99"):
        build.build_release_index(strict, "2026-11-05", vectors, ids, queries, query_city, category, city)


def test_the_artifact_is_complete(cfg, monkeypatch, tmp_path):
    monkeypatch.setattr(build, "_inputs", lambda *_: _inputs())
    cfg = _cfg(cfg)
    run_id = _training_run(cfg)
    build.build_and_register("item2vec", cfg, "2026-11-05", run_id)
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=build.ARTIFACT_DIR, dst_path=str(tmp_path)))
    names = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert names == sorted(
        ["index.faiss", "id_map.json", "manifest.json", "item_meta.json", *[f"categories/{c}.faiss" for c in range(CATEGORIES)]]
    )
    meta = json.loads((local / "item_meta.json").read_text())
    assert meta["item_id"][:3] == [5000, 5001, 5002] and meta["category_id"][:8] == [-1] * 7 + [3]
