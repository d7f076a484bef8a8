"""indexing.ann, .filtering and .artifact on a few thousand clustered 16-d unit vectors: build, tuning, filtering, save/load."""

from __future__ import annotations

import json
import logging

import faiss
import numpy as np
import pytest

from indexing import ann, artifact, filtering

DIM, K = 16, 10


def clustered(n: int, seed: int, dim: int = DIM, clusters: int = 20) -> np.ndarray:
    """Unit vectors around 20 fixed centres (the same centres for every seed)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((clusters, dim))
    x = centres[rng.integers(clusters, size=n)] + 0.5 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    vectors = clustered(2000, seed=0)
    ids = np.arange(2000, dtype=np.int64) * 3 + 100  # item ids unlike FAISS positions
    queries = clustered(100, seed=1)
    return vectors, ids, queries, ann.exact_topk(vectors, ids, queries, K)


# --- checks -----------------------------------------------------------------------------------------


def test_nan_and_infinite_rows_are_named():
    vectors = np.ones((20, 4), np.float32)
    vectors[[5, 9], 1] = np.nan
    vectors[12, 0] = np.inf
    with pytest.raises(ann.IndexValidationError, match=r"3 item vectors are NaN or infinite \(item ids \[5, 9, 12\]\)"):
        ann.check_vectors(vectors, np.arange(20))


def test_all_zero_rows_are_named():
    vectors = np.ones((20, 4), np.float32)
    vectors[[3, 7]] = 0.0
    with pytest.raises(ann.IndexValidationError, match=r"2 item vectors are all zeros \(item ids \[103, 107\]\)"):
        ann.check_vectors(vectors, np.arange(20) + 100)


def test_more_than_ten_offenders_are_counted_and_ten_named():
    vectors = np.ones((30, 4), np.float32)
    vectors[:15] = 0.0
    with pytest.raises(ann.IndexValidationError, match=r"15 item vectors .* \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, \.\.\.\]"):
        ann.check_vectors(vectors, np.arange(30))


def test_duplicate_negative_and_missing_ids_are_refused():
    vectors = np.ones((4, 2), np.float32)
    with pytest.raises(ann.IndexValidationError, match=r"1 item ids appear more than once \(item ids \[7\]\)"):
        ann.check_vectors(vectors, np.array([1, 7, 7, 3]))
    with pytest.raises(ann.IndexValidationError, match=r"1 item ids are negative \(\[-1\]\)"):
        ann.check_vectors(vectors, np.array([1, -1, 2, 3]))
    with pytest.raises(ann.IndexValidationError, match="received 3 ids for 4 vectors"):
        ann.check_vectors(vectors, np.array([1, 2, 3]))
    with pytest.raises(ann.IndexValidationError, match="2-D float array"):
        ann.check_vectors(np.ones(4), np.arange(4))


def test_bad_factory_string_is_named(data):
    vectors, ids, _, _ = data
    with pytest.raises(ann.IndexValidationError, match="invalid FAISS index factory string 'IVF16,Flux'"):
        ann.build(vectors, ids, "IVF16,Flux")


def test_too_few_vectors_to_train_suggests_a_smaller_nlist(data):
    vectors, ids, _, _ = data
    with pytest.raises(ann.IndexValidationError, match=r"'IVF1024,Flat'.* at least 1,024 .*received 500 .* e\.g\. IVF8 "):
        ann.build(vectors[:500], ids[:500], "IVF1024,Flat")
    with pytest.raises(ann.IndexValidationError, match=r"PQ4x8 codebooks needs at least 256 .*received 100"):
        ann.build(vectors[:100], ids[:100], "PQ4")  # 8-bit codes need 256 centroids per sub-quantizer


def test_validate_refuses_another_dimension_and_another_id_map(data):
    vectors, ids, queries, _ = data
    index = ann.build(vectors[:, :8].copy(), ids, "Flat")
    with pytest.raises(ann.IndexValidationError, match="index dimension 8 does not match the embedding table's 16"):
        ann.validate(index, vectors, ids, queries, K, 0.9)
    index = ann.build(vectors, ids, "Flat")
    with pytest.raises(ann.IndexValidationError, match="id map has 1990 ids for 2000 vectors"):
        ann.validate(index, vectors[:1990], ids[:1990], queries, K, 0.9)
    other = ids.copy()
    other[[0, 1]] = [1, 2]
    with pytest.raises(
        ann.IndexValidationError, match=r"2 item ids are missing from the index \(\[1, 2\]\), 2 .* \(\[100, 103\]\)"
    ):
        ann.validate(index, vectors, other, queries, K, 0.9)


# --- build, search, tune ----------------------------------------------------------------------------


@pytest.mark.parametrize("factory", ["Flat", "IVF32,Flat", "HNSW8", "IVF16,PQ8x4"])
def test_build_keeps_the_item_ids(data, factory):
    vectors, ids, _, _ = data
    index = ann.build(vectors, ids, factory)
    assert index.ntotal == 2000 and index.d == DIM
    assert np.array_equal(faiss.vector_to_array(faiss.downcast_index(index).id_map), ids)
    ann.apply_params(index, {"nprobe": 32} if "IVF" in factory else {"efSearch": 64} if "HNSW" in factory else {})
    _, found = index.search(vectors[:50], 1)
    if "PQ" in factory:  # compressed: not always itself, but always an item id
        assert np.isin(found, ids).all() and (found[:, 0] == ids[:50]).mean() > 0.3
    else:  # a unit vector's best inner product is itself, found under its item id
        assert np.array_equal(found[:, 0], ids[:50])


def test_exact_topk_and_recall_by_hand():
    vectors = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], np.float32)
    ids = np.array([10, 11, 12, 13])
    assert ann.exact_topk(vectors, ids, np.array([[1, 0], [0, 1]], np.float32), 2).tolist() == [[10, 11], [12, 11]]
    found = np.array([[1, 2, -1], [4, 5, 6]])
    truth = np.array([[1, 2, 3], [6, 5, 4]])
    assert ann.recall_at_k(found, truth) == pytest.approx((2 / 3 + 1) / 2)


def test_search_parameter_looks_through_the_id_map(data):
    vectors, ids, _, _ = data
    assert ann.search_parameter(ann.build(vectors, ids, "IVF32,Flat")) == "nprobe"
    assert ann.search_parameter(ann.build(vectors, ids, "HNSW8")) == "efSearch"
    assert ann.search_parameter(ann.build(vectors, ids, "Flat")) is None
    assert ann.search_parameter(ann.build(vectors, ids, "PQ4x4")) is None


def _recall_at(index, params, queries, truth):
    ann.apply_params(index, params)
    return ann.recall_at_k(index.search(queries, K)[1], truth)


@pytest.mark.parametrize(("factory", "name"), [("IVF32,Flat", "nprobe"), ("HNSW8", "efSearch")])
def test_tune_picks_the_cheapest_setting_reaching_the_target(data, factory, name):
    vectors, ids, queries, truth = data
    index = ann.build(vectors, ids, factory)
    params, recall = ann.tune(index, queries, truth, K, target=0.99)
    assert list(params) == [name] and recall >= 0.99
    assert ann._current(index, name) == params[name]  # left at the chosen setting
    assert _recall_at(index, params, queries, truth) == recall
    candidates = ann._candidates(index, name, K)
    cheaper = candidates[candidates.index(params[name]) - 1]
    assert cheaper < params[name], "the target must need more than the cheapest setting for this test to mean anything"
    assert _recall_at(index, {name: cheaper}, queries, truth) < 0.99


def test_tune_candidates_include_exhaustive_nprobe_and_skip_ef_below_k(data):
    vectors, ids, _, _ = data
    assert ann._candidates(ann.build(vectors, ids, "IVF32,Flat"), "nprobe", K) == [1, 2, 4, 8, 16, 32]
    assert ann._candidates(ann.build(vectors, ids, "HNSW8"), "efSearch", K) == [10, 16, 32, 64, 128, 256, 512]


def test_tune_raises_when_no_setting_reaches_the_target(data):
    vectors, ids, queries, truth = data
    index = ann.build(vectors, ids, "IVF16,PQ4x4")
    with pytest.raises(ann.RecallTargetMissed, match=r"misses recall@10 1.0: the best reached is 0\.\d+ at nprobe=\d+") as e:
        ann.tune(index, queries, truth, K, target=1.0)
    assert isinstance(e.value, ann.IndexValidationError) and 0 < e.value.recall < 1
    assert ann._current(index, "nprobe") == 16  # left at the most expensive setting


def test_tune_without_a_parameter_measures_the_only_setting(data):
    vectors, ids, queries, truth = data
    assert ann.tune(ann.build(vectors, ids, "Flat"), queries, truth, K, target=0.99) == ({}, 1.0)
    with pytest.raises(ann.RecallTargetMissed, match="at its only setting"):
        ann.tune(ann.build(vectors, ids, "PQ4x4"), queries, truth, K, target=0.99)


def test_latency_gives_sane_percentiles(data):
    vectors, ids, queries, _ = data
    index = ann.build(vectors, ids, "HNSW8")
    one, many = ann.latency(index, queries, K, batch=1), ann.latency(index, queries, K, batch=256)
    assert one["batches"] == 200 and many["batches"] == 20
    for m in (one, many):
        assert 0 < m["p50_ms"] <= m["p99_ms"] and m["qps"] > 0
    assert many["p50_ms"] > one["p50_ms"]  # 256 queries take longer than one


def test_validate_returns_the_metrics_and_refuses_low_recall(data):
    vectors, ids, queries, _ = data
    index = ann.build(vectors, ids, "IVF32,Flat")
    ann.apply_params(index, {"nprobe": 32})
    metrics = ann.validate(index, vectors, ids, queries, K, target=0.99)
    assert set(metrics) == {
        "index_recall_at_10",
        "index_latency_ms_p50_batch1",
        "index_latency_ms_p99_batch1",
        "index_latency_ms_p50_batch256",
        "index_latency_ms_p99_batch256",
        "index_qps_batch256",
        "index_size",
    }
    assert metrics["index_recall_at_10"] == 1.0 and metrics["index_size"] == 2000
    ann.apply_params(index, {"nprobe": 1})
    with pytest.raises(ann.IndexValidationError, match=r"index recall@10 is 0\.8\d+, under the target 0.99"):
        ann.validate(index, vectors, ids, queries, K, target=0.99)


def test_build_trains_and_adds_on_the_gpu_when_there_is_one(data, monkeypatch):
    """No GPU here: a CPU clone stands in for the GPU copy, to check which path runs and what comes back."""
    vectors, ids, queries, truth = data
    calls = []

    def to_gpu(index):
        calls.append(type(ann._unwrap(index)).__name__)
        if "HNSW" in calls[-1]:
            raise RuntimeError("Error in ...: This index type is not implemented on GPU.")
        return faiss.clone_index(index)

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_gpu, raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", lambda index: faiss.clone_index(index), raising=False)
    for factory in ("IVF32,Flat", "HNSW8"):
        index = ann.build(vectors, ids, factory)
        assert index.ntotal == 2000 and ann.tune(index, queries, truth, K, 0.99)[1] >= 0.99
    assert calls == ["IndexIVFFlat", "IndexHNSWFlat"]
    assert ann.build(vectors, ids, "Flat", device="cpu").ntotal == 2000 and len(calls) == 2


# --- per-category indexes and city filtering --------------------------------------------------------


def test_category_indexes_hold_their_category_and_small_ones_are_flat(data, caplog):
    vectors, ids, queries, _ = data
    categories = np.zeros(2000, np.int64)
    categories[:100] = 1  # 100 items: too few for IVF8 (8 * 39 = 312)
    categories[100:130] = -1  # unknown category: in no sub-index
    with caplog.at_level(logging.INFO, logger="indexing.filtering"):
        cats = filtering.category_indexes(vectors, ids, categories, "IVF8,Flat")
    assert sorted(cats) == [0, 1]
    assert isinstance(ann._unwrap(cats[0]), faiss.IndexIVFFlat)
    assert isinstance(ann._unwrap(cats[1]), faiss.IndexFlat)
    assert "category 1: 100 items, too few to train 'IVF8,Flat' (needs 312): Flat index" in caplog.text
    for cat, size in ((0, 1870), (1, 100)):
        assert cats[cat].ntotal == size
        _, found = filtering.search_category(cats, cat, queries, 20)
        assert np.isin(found, ids[categories == cat]).all()
    # the Flat sub-index is exact over its category
    _, found = filtering.search_category(cats, 1, queries, 20)
    assert np.array_equal(found, ann.exact_topk(vectors[:100], ids[:100], queries, 20))
    with pytest.raises(ann.IndexValidationError, match=r"no sub-index for category 7; categories with one: \[0, 1\]"):
        filtering.search_category(cats, 7, queries, 20)


def test_city_filter():
    assert filtering.city_filter(np.array([10, 11, 12, 13]), np.array([2, 5, 2, 1]), 2).tolist() == [10, 12]


@pytest.mark.parametrize("factory", ["Flat", "IVF32,Flat", "HNSW8"])
def test_filtered_search_returns_only_allowed_items(data, factory):
    vectors, ids, queries, _ = data
    item_city = np.arange(2000) % 7
    allowed = filtering.city_filter(ids, item_city, 3)
    index = ann.build(vectors, ids, factory)
    ann.apply_params(index, {"nprobe": 32} if "IVF" in factory else {"efSearch": 128} if "HNSW" in factory else {})
    scores, found = filtering.search_filtered(index, queries, K, allowed)
    assert np.isin(found[found >= 0], allowed).all()
    exact = ann.exact_topk(vectors[item_city == 3], allowed, queries, K)
    if factory == "HNSW8":
        assert ann.recall_at_k(found, exact) > 0.9
    else:  # Flat, and IVF at the index's nprobe=nlist (which the filtered search must keep): exact
        assert np.array_equal(found, exact)
        assert np.allclose(scores[:, 0], (queries * vectors[np.searchsorted(ids, found[:, 0])]).sum(axis=1), atol=1e-5)


def test_filtered_search_uses_the_given_setting_over_the_index_one(data):
    vectors, ids, queries, _ = data
    allowed = ids[::7]
    index = ann.build(vectors, ids, "IVF32,Flat")  # nprobe=1 on the index
    exact = ann.exact_topk(vectors[::7], allowed, queries, K)
    _, narrow = filtering.search_filtered(index, queries, K, allowed)
    _, wide = filtering.search_filtered(index, queries, K, allowed, params={"nprobe": 32})
    assert np.array_equal(wide, exact) and not np.array_equal(narrow, exact)


def test_filtered_search_refuses_an_index_without_selectors(data):
    vectors, ids, queries, _ = data
    with pytest.raises(ann.IndexValidationError, match="supports Flat, IVF and HNSW indexes, received IndexPQ"):
        filtering.search_filtered(ann.build(vectors, ids, "PQ4x4"), queries, K, ids[:10])


# --- save / load ------------------------------------------------------------------------------------


def test_save_load_round_trip(data, tmp_path):
    vectors, ids, queries, truth = data
    index = ann.build(vectors, ids, "IVF32,Flat")
    params, _ = ann.tune(index, queries, truth, K, target=0.99)
    cats = filtering.category_indexes(vectors, ids, (np.arange(2000) >= 1000).astype(int), "IVF8,Flat")
    manifest = {"model": "item2vec", "model_version": 3, "search_params": params, "category_search_params": {"0": {"nprobe": 8}}}
    ann.apply_params(index, {"nprobe": 1})  # the file holds nprobe=1 (and cats[0] its default 1): the manifest wins
    artifact.save(tmp_path / "release", index, ids, manifest, cats)
    ann.apply_params(index, params)
    files = sorted(p.name for p in (tmp_path / "release").iterdir())
    assert files == ["categories", "id_map.json", "index.faiss", "manifest.json"]
    assert json.loads((tmp_path / "release" / "id_map.json").read_text())["faiss_id_to_item_id"] == ids.tolist()

    loaded, loaded_ids, loaded_manifest, loaded_cats = artifact.load(tmp_path / "release", expected_model_version=3)
    assert ann._current(loaded, "nprobe") == params["nprobe"] > 1  # reapplied, not the default 1
    assert np.array_equal(loaded.search(queries, K)[1], index.search(queries, K)[1])
    assert np.array_equal(loaded_ids, ids) and loaded_manifest == manifest
    assert sorted(loaded_cats) == [0, 1] and ann._current(loaded_cats[0], "nprobe") == 8
    assert np.array_equal(loaded_cats[1].search(queries, K)[1], cats[1].search(queries, K)[1])


def test_save_replaces_an_older_release_without_stale_categories(data, tmp_path):
    vectors, ids, _, _ = data
    index = ann.build(vectors, ids, "Flat")
    artifact.save(
        tmp_path, index, ids, {"model_version": 1}, filtering.category_indexes(vectors, ids, np.arange(2000) % 3, "Flat")
    )
    artifact.save(tmp_path, index, ids, {"model_version": 2})
    _, _, manifest, cats = artifact.load(tmp_path, expected_model_version=2)
    assert manifest == {"model_version": 2} and cats == {}
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_save_refuses_ids_that_are_not_the_index_ones(data, tmp_path):
    vectors, ids, _, _ = data
    with pytest.raises(ann.IndexValidationError, match="ids must be the index's item ids in FAISS order"):
        artifact.save(tmp_path, ann.build(vectors, ids, "Flat"), ids[::-1], {"model_version": 1})
    assert not (tmp_path / "manifest.json").exists()


def test_load_refuses_a_mismatched_model_version_before_reading_the_index(data, tmp_path):
    vectors, ids, _, _ = data
    artifact.save(tmp_path, ann.build(vectors, ids, "Flat"), ids, {"model": "two_tower", "model_version": 4})
    (tmp_path / "index.faiss").unlink()  # reading it would fail with another error
    with pytest.raises(
        artifact.IndexVersionMismatch,
        match="index built from two_tower v4 vectors; the serving tower is v5: refusing to serve mismatched vectors",
    ):
        artifact.load(tmp_path, expected_model_version=5)


def test_load_refuses_a_release_without_manifest(data, tmp_path):
    vectors, ids, _, _ = data
    artifact.save(tmp_path, ann.build(vectors, ids, "Flat"), ids, {"model_version": 1})
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ann.IndexValidationError, match=r"no manifest\.json .*: the index was not completely written"):
        artifact.load(tmp_path, expected_model_version=None)


def test_load_refuses_an_id_map_that_does_not_fit(data, tmp_path):
    vectors, ids, _, _ = data
    artifact.save(tmp_path, ann.build(vectors, ids, "Flat"), ids, {"model_version": 1})
    (tmp_path / "id_map.json").write_text(json.dumps({"faiss_id_to_item_id": ids[:1990].tolist()}))
    with pytest.raises(ann.IndexValidationError, match="id map has 1990 ids for 2000 vectors"):
        artifact.load(tmp_path, expected_model_version=1)
