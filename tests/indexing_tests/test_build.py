import numpy as np
import pytest

from indexing.build import build_index, index_recall
from recpipe.config import IndexConfig


def _vectors(n=400, d=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_ivf_index_keeps_ids_and_recall_grows_with_nprobe():
    v = _vectors()
    ids = np.arange(1000, 1400)
    queries = _vectors(50, seed=1)
    low = index_recall(build_index(v, ids, IndexConfig(factory="IVF16,Flat", nprobe=1)), v, ids, queries, 10)
    full = index_recall(build_index(v, ids, IndexConfig(factory="IVF16,Flat", nprobe=16)), v, ids, queries, 10)
    assert full == pytest.approx(1.0)  # probing every list is exact search
    assert low < full
    _, found = build_index(v, ids, IndexConfig(factory="Flat", nprobe=1)).search(v[:1], 1)
    assert found[0, 0] == 1000  # the item's own id, not its row


def test_bad_vectors_are_refused():
    v = _vectors(20)
    v[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        build_index(v, np.arange(20), IndexConfig(factory="Flat"))
    with pytest.raises(ValueError, match=r"vectors \(20, 8\) for 19 ids"):
        build_index(_vectors(20), np.arange(19), IndexConfig(factory="Flat"))
