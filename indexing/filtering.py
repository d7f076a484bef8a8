"""Search within a subset of the items: per-category sub-indexes and city filtering.

Pure FAISS + numpy, built on ``indexing.ann``: a category gets an index of its own (``category_indexes``,
searched with ``search_category``), tuned like the main one with ``ann.tune``; a city is a filter on the
main index, an ``IDSelectorBatch`` of its item ids that FAISS applies during the search (``city_filter``,
``search_filtered``).
"""

from __future__ import annotations

import logging

import faiss
import numpy as np

from indexing.ann import IndexValidationError, _current, _unwrap, build, check_vectors, min_train_vectors, search_parameter

log = logging.getLogger(__name__)


def category_indexes(
    vectors: np.ndarray,
    ids: np.ndarray,
    categories: np.ndarray,
    factory: str,
    *,
    train_sample: int = 200_000,
    seed: int = 0,
    device: str = "auto",
) -> dict[int, faiss.Index]:
    """One index per category: ``categories[i]`` is row i's category, negative for unknown (left out).

    A category with too few vectors to train ``factory`` (under FAISS's 39 per centroid for IVF or PQ)
    gets a ``"Flat"`` index instead, exact and as fast at that size. IVF sub-indexes keep the default
    ``nprobe=1``: tune each with ``tune`` on that category's queries.
    """
    categories = np.asarray(categories)
    if categories.shape != (len(ids),):
        raise IndexValidationError(f"need one category per item, received {categories.shape} for {len(ids)} ids")
    check_vectors(vectors, ids)
    need = min_train_vectors(factory, vectors.shape[1])
    out = {}
    for cat in np.unique(categories[categories >= 0]):
        rows = np.flatnonzero(categories == cat)
        cat_factory = factory
        if min(len(rows), train_sample) < need:
            log.info("category %d: %d items, too few to train %r (needs %d): Flat index", cat, len(rows), factory, need)
            cat_factory = "Flat"
        out[int(cat)] = build(vectors[rows], ids[rows], cat_factory, train_sample=train_sample, seed=seed, device=device)
    return out


def search_category(
    cat_indexes: dict[int, faiss.Index], category: int, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, item ids)`` of the top ``k`` items of ``category`` for each query (-1 past the category's size)."""
    if category not in cat_indexes:
        raise IndexValidationError(f"no sub-index for category {category}; categories with one: {sorted(cat_indexes)}")
    return cat_indexes[category].search(np.ascontiguousarray(queries, dtype=np.float32), k)


def city_filter(ids: np.ndarray, item_city: np.ndarray, city: int) -> np.ndarray:
    """The item ids whose city is ``city`` (``item_city[i]`` is the city of ``ids[i]``)."""
    ids, item_city = np.asarray(ids), np.asarray(item_city)
    if ids.shape != item_city.shape:
        raise IndexValidationError(f"need one city per item id, received {item_city.shape} for {ids.shape}")
    return ids[item_city == city].astype(np.int64)


def search_filtered(
    index: faiss.Index, queries: np.ndarray, k: int, allowed_ids: np.ndarray, params: dict[str, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Search only among ``allowed_ids`` (item ids) with an ``IDSelectorBatch``, at the index's search setting.

    FAISS applies the selector during the search (the IDMap wrapper translates item ids), so every
    result is allowed; a query gets ``-1`` padding where the probed lists (IVF) or the visited graph
    (HNSW) hold fewer than ``k`` allowed items.

    Args:
        params: the search setting (e.g. ``{"nprobe": 32}``); default the one set on ``index``.

    Raises:
        IndexValidationError: the index type takes no selector (supported: Flat, IVF, HNSW).
    """
    base = _unwrap(index)
    name = search_parameter(index)
    setting = dict(params or {})
    if name is not None:
        setting.setdefault(name, _current(index, name))
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
    if isinstance(faiss.downcast_index(index), faiss.IndexPreTransform) or not isinstance(
        base, faiss.IndexFlat | faiss.IndexIVF | faiss.IndexHNSW
    ):
        raise IndexValidationError(f"filtered search supports Flat, IVF and HNSW indexes, received {type(base).__name__}")
    if isinstance(base, faiss.IndexIVF):
        search_params = faiss.SearchParametersIVF(sel=selector, nprobe=setting["nprobe"])
    elif isinstance(base, faiss.IndexHNSW):
        search_params = faiss.SearchParametersHNSW(sel=selector, efSearch=setting["efSearch"])
    else:
        search_params = faiss.SearchParameters(sel=selector)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=search_params)
