"""The FAISS side of the item index: check, build, tune and measure.

Pure FAISS + numpy, no MLflow and no config objects: ``indexing.build`` wires these into the pipeline.
Every index here is inner product over float32 vectors, and its ids are the items' own int64 ids
(an ``IndexIDMap2`` around the ``index_factory`` index), so a search returns item ids, ``-1`` where
fewer than ``k`` results exist. Searching within a category or a city is ``indexing.filtering``; saving
and loading an index with its manifest is ``indexing.artifact``.

Search settings are tuned with FAISS's ``ParameterSpace`` on the one parameter that trades recall for
speed (``nprobe`` for IVF, ``efSearch`` for HNSW). ``faiss.write_index`` keeps both, but the manifest is
the record of the setting that was measured, so ``artifact.load`` applies the manifest's setting over
whatever the file holds.
"""

from __future__ import annotations

import logging
import math
import time

import faiss
import numpy as np
from faiss.contrib.evaluation import knn_intersection_measure

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")
# FAISS's k-means warns below this many training points per centroid (ClusteringParameters)
MIN_POINTS_PER_CENTROID = faiss.ClusteringParameters().min_points_per_centroid
_SHOWN = 10  # offending ids named in an error message


class IndexValidationError(ValueError):
    """Vectors, ids or an index that cannot be indexed or served; the message says what and why."""


class RecallTargetMissed(IndexValidationError):
    """``tune`` found no search setting reaching the target; ``params`` and ``recall`` are the best it reached."""

    def __init__(self, message: str, params: dict[str, int], recall: float):
        super().__init__(message)
        self.params = params
        self.recall = recall


def _ids_text(ids: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in ids[:_SHOWN])
    return f"[{shown}{', ...' if len(ids) > _SHOWN else ''}]"


def check_vectors(vectors: np.ndarray, ids: np.ndarray) -> None:
    """Refuse item vectors that would make a broken index.

    Args:
        vectors: ``(n, d)`` float array, one row per item.
        ids: ``(n,)`` integer item ids, unique and non-negative (FAISS uses -1 for "no result").

    Raises:
        IndexValidationError: naming the count and up to 10 ids of NaN/infinite rows, all-zero rows,
            duplicate or negative ids, or the shapes received.
    """
    vectors, ids = np.asarray(vectors), np.asarray(ids)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise IndexValidationError(f"item vectors must be a 2-D float array, received {vectors.dtype} of shape {vectors.shape}")
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise IndexValidationError(f"item ids must be a 1-D integer array, received {ids.dtype} of shape {ids.shape}")
    if len(vectors) != len(ids):
        raise IndexValidationError(f"need one id per item vector, received {len(ids)} ids for {len(vectors)} vectors")
    if len(vectors) == 0 or vectors.shape[1] == 0:
        raise IndexValidationError(f"no item vectors to index, received shape {vectors.shape}")
    negative = ids[ids < 0]
    if len(negative):
        raise IndexValidationError(
            f"{len(negative)} item ids are negative ({_ids_text(negative)}): ids must be >= 0, -1 means 'no result' in FAISS"
        )
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) < len(ids):
        dup = unique[counts > 1]
        raise IndexValidationError(f"{len(dup)} item ids appear more than once (item ids {_ids_text(dup)}): ids must be unique")
    bad = ids[~np.isfinite(vectors).all(axis=1)]
    if len(bad):
        raise IndexValidationError(f"{len(bad)} item vectors are NaN or infinite (item ids {_ids_text(bad)})")
    zero = ids[~vectors.any(axis=1)]
    if len(zero):
        raise IndexValidationError(
            f"{len(zero)} item vectors are all zeros (item ids {_ids_text(zero)}): an untrained embedding row scores 0 "
            "against every query"
        )


def _unwrap(index: faiss.Index) -> faiss.Index:
    """The index under any IDMap / PreTransform wrappers, downcast to its own class."""
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexIDMap | faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return index


def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    ivf = faiss.try_extract_index_ivf(index)
    return None if ivf is None else faiss.downcast_index(ivf)


def _training_needs(index: faiss.Index) -> list[tuple[str, int, int]]:
    """(part, minimum, recommended) training vectors for each trained part of ``index``."""
    needs = []
    ivf = _ivf(index)
    base = ivf if ivf is not None else _unwrap(index)
    if ivf is not None:
        needs.append((f"IVF{ivf.nlist} coarse quantizer", ivf.nlist, MIN_POINTS_PER_CENTROID * ivf.nlist))
    if isinstance(base, faiss.IndexHNSW):
        base = faiss.downcast_index(base.storage)
    pq = getattr(base, "pq", None)
    if pq is not None:
        needs.append((f"PQ{pq.M}x{pq.nbits} codebooks", pq.ksub, MIN_POINTS_PER_CENTROID * pq.ksub))
    return needs


def min_train_vectors(factory: str, dim: int) -> int:
    """How many training vectors ``factory`` needs for FAISS's k-means to train it without warning (1 if untrained)."""
    needs = _training_needs(_factory(dim, factory))
    return max((recommended for _, _, recommended in needs), default=1)


def _factory(dim: int, factory: str) -> faiss.Index:
    """``index_factory`` for inner product, wrapped in an IDMap2 unless the string starts with one."""
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[-1].split("Error: ")[-1]
        raise IndexValidationError(f"invalid FAISS index factory string {factory!r} for dimension {dim}: {reason}") from e
    return index if factory.startswith("IDMap") else faiss.IndexIDMap2(index)


def _check_trainable(index: faiss.Index, factory: str, n_train: int, n_items: int) -> None:
    for part, minimum, recommended in _training_needs(index):
        if n_train < minimum:
            hint = "use a smaller nlist" if part.startswith("IVF") else "use fewer bits per code"
            if part.startswith("IVF"):
                nlist = 2 ** max(0, int(math.log2(max(1, n_train // MIN_POINTS_PER_CENTROID))))
                hint += f", e.g. IVF{nlist} ({MIN_POINTS_PER_CENTROID} vectors per list)"
            raise IndexValidationError(
                f"too few vectors to train {factory!r}: its {part} needs at least {minimum:,} training vectors "
                f"({recommended:,} recommended), received {n_train:,} (of {n_items:,} items): {hint}, or 'Flat'"
            )
        if n_train < recommended:
            log.warning("%r: %s trained on %d vectors, under the %d FAISS recommends", factory, part, n_train, recommended)


def _train_add_gpu(index: faiss.Index, sample: np.ndarray, vectors: np.ndarray, ids: np.ndarray) -> faiss.Index | None:
    """Train and fill ``index`` on all GPUs and return its CPU copy; None if FAISS has no GPU version of it."""
    try:
        gpu_index = faiss.index_cpu_to_all_gpus(index)
    except RuntimeError as e:  # e.g. HNSW, PQ without IVF: "This index type is not implemented on GPU."
        log.info("%s has no GPU implementation, building on CPU (%s)", type(_unwrap(index)).__name__, str(e).splitlines()[-1])
        return None
    if not gpu_index.is_trained:
        gpu_index.train(sample)
    gpu_index.add_with_ids(vectors, ids)
    return faiss.index_gpu_to_cpu(gpu_index)


def build(
    vectors: np.ndarray,
    ids: np.ndarray,
    factory: str,
    *,
    train_sample: int = 200_000,
    seed: int = 0,
    device: str = "auto",
) -> faiss.Index:
    """A trained inner-product index over ``vectors`` whose FAISS ids are the item ``ids``.

    Args:
        vectors: ``(n, d)`` item vectors (checked with ``check_vectors``).
        ids: ``(n,)`` int64 item ids.
        factory: a ``faiss.index_factory`` string, e.g. ``"IVF4096,Flat"`` or ``"HNSW32"``.
        train_sample: trains on a seeded random sample of at most this many vectors.
        seed: seed of the training sample.
        device: ``"auto"`` trains and adds on the GPUs when FAISS sees any (on CPU for index types
            FAISS has no GPU version of, such as HNSW), ``"cpu"`` never, ``"gpu"`` requires one.

    Returns:
        A CPU index (ready for ``faiss.write_index``) with its default search parameters.

    Raises:
        IndexValidationError: bad vectors or ids, an invalid factory string, or too few vectors to train it.
    """
    check_vectors(vectors, ids)
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, received {device!r}")
    if train_sample <= 0:
        raise ValueError(f"train_sample must be positive, received {train_sample}")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    index = _factory(x.shape[1], factory)
    sample = x
    if len(x) > train_sample:
        sample = x[np.sort(np.random.default_rng(seed).choice(len(x), train_sample, replace=False))]
    if not index.is_trained:
        _check_trainable(index, factory, len(sample), len(x))
    if getattr(_ivf(index) or _unwrap(index), "do_polysemous_training", False):
        # index_factory turns it on for PQ unless the string says "np"; only polysemous search ("ht") uses it
        log.info("%r spends its training on polysemous codes, unused here: 'PQ<M>np' builds faster", factory)
    n_gpus = faiss.get_num_gpus()
    if device == "gpu" and n_gpus == 0:
        raise IndexValidationError("device='gpu' but FAISS sees no GPU (is faiss-cpu installed instead of faiss-gpu?)")
    start = time.perf_counter()
    built = _train_add_gpu(index, sample, x, ids) if device != "cpu" and n_gpus > 0 else None
    if built is None:
        if not index.is_trained:
            index.train(sample)
        index.add_with_ids(x, ids)
        built = index
    log.info(
        "built %r over %d vectors of dim %d (trained on %d) in %.1f s on %s",
        factory,
        built.ntotal,
        built.d,
        len(sample),
        time.perf_counter() - start,
        "GPU" if built is not index else "CPU",
    )
    return built


def exact_topk(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The item ids of the exact inner-product top ``k`` of each query, best first: ``(len(queries), k)``."""
    if not 0 < k <= len(vectors):
        raise IndexValidationError(f"k must be between 1 and the {len(vectors)} item vectors, received {k}")
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, rows = exact.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return np.asarray(ids, dtype=np.int64)[rows]


def recall_at_k(found_ids: np.ndarray, truth_ids: np.ndarray) -> float:
    """Mean over queries of the share of the exact top-k (``truth_ids``) that ``found_ids`` contains.

    Both are ``(n_queries, k)``; ``-1`` padding in ``found_ids`` counts as a miss (the truth has none).
    """
    found_ids, truth_ids = np.asarray(found_ids), np.asarray(truth_ids)
    if found_ids.shape != truth_ids.shape:
        raise ValueError(
            f"found and exact ids must have the same (queries, k) shape, received {found_ids.shape} and {truth_ids.shape}"
        )
    if (truth_ids < 0).any():
        raise ValueError("the exact top-k contains -1 padding: k is larger than the number of items")
    return float(knn_intersection_measure(found_ids, truth_ids))


def search_parameter(index: faiss.Index) -> str | None:
    """The search parameter trading recall for speed: ``"nprobe"`` (IVF), ``"efSearch"`` (HNSW), else None."""
    if _ivf(index) is not None:
        return "nprobe"
    if isinstance(_unwrap(index), faiss.IndexHNSW):
        return "efSearch"
    return None


def apply_params(index: faiss.Index, params: dict[str, int]) -> None:
    """Set search parameters (e.g. ``{"nprobe": 32}``) on ``index``, through its IDMap wrapper."""
    space = faiss.ParameterSpace()
    for name, value in params.items():
        try:
            space.set_index_parameter(index, name, float(value))
        except RuntimeError as e:
            raise IndexValidationError(
                f"cannot set search parameter {name}={value} on a {type(_unwrap(index)).__name__} index "
                f"(its parameter is {search_parameter(index)})"
            ) from e


def _current(index: faiss.Index, name: str) -> int:
    if name == "nprobe":
        return int(_ivf(index).nprobe)
    return int(_unwrap(index).hnsw.efSearch)


def _candidates(index: faiss.Index, name: str, k: int) -> list[int]:
    """The values of ``name`` that ``ParameterSpace`` proposes for ``index``, cheapest first."""
    space = faiss.ParameterSpace()
    space.initialize(_unwrap(index))  # initialize() does not look through IndexIDMap (set_index_parameter does)
    ranges = [space.parameter_ranges.at(i) for i in range(space.parameter_ranges.size())]
    values = next(r.values for r in ranges if r.name == name)
    candidates = {int(values.at(i)) for i in range(values.size())}
    if name == "nprobe":
        candidates.add(int(_ivf(index).nlist))  # ParameterSpace stops below nlist; nprobe=nlist scans every list
    else:
        # HNSW searches with max(efSearch, k): settings below k are all the same as k
        candidates = {k} | {v for v in candidates if v > k}
    return sorted(candidates)


def _search_ids(index: faiss.Index, queries: np.ndarray, k: int) -> np.ndarray:
    return index.search(queries, k)[1]


def tune(
    index: faiss.Index, queries: np.ndarray, truth_ids: np.ndarray, k: int, target: float, search=None
) -> tuple[dict[str, int], float]:
    """The cheapest search setting whose recall@k against the exact top-k reaches ``target``.

    Tries ``search_parameter(index)``'s values from ``faiss.ParameterSpace`` in increasing order
    (plus ``nprobe=nlist`` for IVF) and stops at the first that reaches the target.

    Args:
        index: the index to tune; left set to the chosen value.
        queries: ``(n_queries, d)`` query vectors.
        truth_ids: ``(n_queries, k)`` exact top-k item ids (``exact_topk``).
        k: neighbours per query.
        target: the recall@k to reach, in [0, 1].
        search: ``search(index, queries, k) -> item ids`` measured at each setting; default a plain
            ``index.search`` (pass a filtered search to tune the setting filtered queries need).

    Returns:
        ``({name: value}, recall)``; ``({}, recall)`` for an index without a search parameter (Flat, PQ).

    Raises:
        RecallTargetMissed: (an IndexValidationError) even the most expensive setting (for an index
            without a parameter, its only one) misses the target; the index is left at that setting.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    name = search_parameter(index)
    settings = [{}] if name is None else [{name: v} for v in _candidates(index, name, k)]
    best: tuple[dict[str, int], float] = ({}, -1.0)
    for params in settings:
        apply_params(index, params)
        recall = recall_at_k((search or _search_ids)(index, q, k), truth_ids)
        log.info("recall@%d %.4f at %s", k, recall, params or "the index's only setting")
        if recall >= target:
            return params, recall
        best = max(best, (params, recall), key=lambda p: p[1])
    raise RecallTargetMissed(
        f"{type(_unwrap(index)).__name__} misses recall@{k} {target}: the best reached is {best[1]:.4f} at "
        f"{_setting_text(best[0])}; the most expensive setting tried was {_setting_text(settings[-1])}",
        best[0],
        best[1],
    )


def _setting_text(params: dict[str, int]) -> str:
    return ", ".join(f"{n}={v}" for n, v in params.items()) or "its only setting"


def latency(
    index: faiss.Index, queries: np.ndarray, k: int, batch: int, repeats: int | None = None, threads: int | None = None
) -> dict[str, float]:
    """Wall time of ``index.search`` on consecutive batches of ``batch`` queries (cycling through ``queries``).

    Args:
        repeats: timed batches; default ``max(20, 200 // batch)`` (200 of batch 1, 20 of batch 256),
            after one untimed warm-up batch.
        threads: OpenMP threads FAISS searches with (restored afterwards); default all of them. A
            serving worker answering single queries runs one thread: with more, a lone query waits
            for the other threads to get a core, which on a busy machine is most of its latency.

    Returns:
        ``p50_ms`` and ``p99_ms`` per batch, ``qps`` (queries per second over all timed batches) and ``batches``.
    """
    if batch <= 0 or (repeats is not None and repeats <= 0):
        raise ValueError(f"batch and repeats must be positive, received batch={batch} repeats={repeats}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    repeats = repeats or max(20, 200 // batch)
    batches = [q[np.arange(i * batch, (i + 1) * batch) % len(q)] for i in range(repeats + 1)]
    before = faiss.omp_get_max_threads()
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    try:
        index.search(batches[0], k)
        times = []
        for b in batches[1:]:
            start = time.perf_counter()
            index.search(b, k)
            times.append(time.perf_counter() - start)
    finally:
        faiss.omp_set_num_threads(before)
    t = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(t, 50) * 1000),
        "p99_ms": float(np.percentile(t, 99) * 1000),
        "qps": float(repeats * batch / t.sum()),
        "batches": repeats,
    }


def _id_map(index: faiss.Index) -> np.ndarray:
    """The index's item ids by FAISS position (positions themselves without an IDMap)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIDMap):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    return np.arange(index.ntotal, dtype=np.int64)


def _check_index_matches(index: faiss.Index, dim: int, ids: np.ndarray) -> None:
    if index.d != dim:
        raise IndexValidationError(f"index dimension {index.d} does not match the embedding table's {dim}")
    if index.ntotal != len(ids):
        raise IndexValidationError(f"id map has {len(ids)} ids for {index.ntotal} vectors in the index")
    in_index = _id_map(index)
    missing, extra = np.setdiff1d(ids, in_index), np.setdiff1d(in_index, ids)
    if len(missing) or len(extra):
        raise IndexValidationError(
            f"the index's ids differ from the id map: {len(missing)} item ids are missing from the index "
            f"({_ids_text(missing)}), {len(extra)} in the index are not items ({_ids_text(extra)})"
        )


def validate(
    index: faiss.Index, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int, target: float
) -> dict[str, float]:
    """Check that ``index`` serves ``vectors``/``ids`` and measure it at its current search setting.

    Batch-1 latency is measured on one thread (a serving worker's single query), batch 256 on all.

    Returns:
        ``index_recall_at_{k}``, ``index_latency_ms_p50_batch1``, ``index_latency_ms_p99_batch1``,
        ``index_latency_ms_p50_batch256``, ``index_latency_ms_p99_batch256``, ``index_qps_batch256``
        and ``index_size`` (vectors in the index).

    Raises:
        IndexValidationError: another dimension, another number or set of ids, or recall@k under ``target``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    _check_index_matches(index, vectors.shape[1], ids)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    recall = recall_at_k(_search_ids(index, q, k), exact_topk(vectors, ids, q, k))
    one, many = latency(index, q, k, batch=1, threads=1), latency(index, q, k, batch=256)
    metrics = {
        f"index_recall_at_{k}": recall,
        "index_latency_ms_p50_batch1": one["p50_ms"],
        "index_latency_ms_p99_batch1": one["p99_ms"],
        "index_latency_ms_p50_batch256": many["p50_ms"],
        "index_latency_ms_p99_batch256": many["p99_ms"],
        "index_qps_batch256": many["qps"],
        "index_size": float(index.ntotal),
    }
    if recall < target:
        raise IndexValidationError(f"index recall@{k} is {recall:.4f}, under the target {target} (metrics: {metrics})")
    return metrics
