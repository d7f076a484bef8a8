"""Build time, size, tuned search setting, recall and speed of FAISS index types over 1M item vectors.

    .venv/bin/python benchmarks/index.py --n 1000000 --dim 64 --k 50 --target 0.95 --out var/bench/index.md

The item vectors are synthetic but shaped like trained embeddings rather than noise: a seeded mixture
of ``--clusters`` Gaussians (cluster sizes skewed like item popularity, spread about as wide as the
distance between centres) normalised to unit length. Uniform random vectors would have no
neighbourhoods for IVF or HNSW to find and make every index look worse than it is on real embeddings.
The queries are drawn the same way: one set to tune on and a held-out set to report on, with their
exact inner-product top-k computed once.

For each ``--factories`` string, one after the other in this process, with ``indexing.ann``: build
time (train on at most ``--train-sample`` vectors, add all), size of the serialized index (the JSON
also has the growth of the process RSS over the build, which understates whenever the build reuses
memory freed earlier, so the table leaves it out), the cheapest search setting reaching ``--target``
recall@k on the tuning queries (``ann.tune``; for an index that cannot reach it, its best), recall@k
at that setting on both query sets, then QPS in batches of 256 and p50/p99 latency of single queries (``ann.latency``). FAISS
searches with all its OpenMP threads, so QPS and latencies are for the whole machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import psutil

from indexing import ann

DEFAULT_FACTORIES = ["Flat", "IVF4096,Flat", "IVF4096,PQ32", "HNSW32"]
CHUNK = 100_000


def clustered(n: int, dim: int, clusters: int, seed: int, centre_seed: int = 0) -> np.ndarray:
    """``n`` unit vectors from a mixture of ``clusters`` Gaussians whose centres depend on ``centre_seed`` only.

    Cluster weights fall as ``1/sqrt(rank)`` (a few popular genres, a long tail); each point is its
    unit-norm centre plus isotropic noise of expected norm 1, then normalised.
    """
    centres = np.random.default_rng(centre_seed).standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.sqrt(np.arange(1, clusters + 1))
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        x = centres[rng.choice(clusters, m, p=weights / weights.sum())]
        x += rng.standard_normal((m, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _rss() -> int:
    return psutil.Process().memory_info().rss


def measure(factory: str, data: dict, args: argparse.Namespace) -> dict:
    """One factory's row: build, size, tuned setting, recall on both query sets, QPS and latency."""
    rss0 = _rss()
    start = time.perf_counter()
    index = ann.build(data["vectors"], data["ids"], factory, train_sample=args.train_sample, seed=args.seed, device=args.device)
    build_s = time.perf_counter() - start
    rss_growth = _rss() - rss0
    size = faiss.serialize_index(index).nbytes
    start = time.perf_counter()
    try:
        params, tune_recall = ann.tune(index, data["tune_queries"], data["tune_truth"], args.k, args.target)
        missed = False
    except ann.RecallTargetMissed as e:
        params, tune_recall, missed = e.params, e.recall, True
        ann.apply_params(index, params)
    tune_s = time.perf_counter() - start
    test_recall = ann.recall_at_k(index.search(data["test_queries"], args.k)[1], data["test_truth"])
    one = ann.latency(index, data["test_queries"], args.k, batch=1, threads=1)  # one serving worker, as validate
    many = ann.latency(index, data["test_queries"], args.k, batch=256)
    return {
        "factory": factory,
        "build_s": build_s,
        "serialized_bytes": size,
        "rss_growth_bytes": rss_growth,
        "search_params": params,
        "target_missed": missed,
        "tune_s": tune_s,
        "recall_tuning": tune_recall,
        "recall_held_out": test_recall,
        "qps_batch256": many["qps"],
        "p50_ms_batch256": many["p50_ms"],
        "p50_ms_batch1": one["p50_ms"],
        "p99_ms_batch1": one["p99_ms"],
    }


def table(rows: list[dict], k: int, target: float) -> str:
    lines = [
        f"| index | build s | serialized MiB | search setting (recall@{k} ≥ {target}) | "
        f"recall@{k} tuning | recall@{k} held-out | QPS batch 256 | p50 ms batch 1 | p99 ms batch 1 |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        setting = ", ".join(f"{n}={v}" for n, v in r["search_params"].items()) or "–"
        if r["target_missed"]:
            setting += " (target missed: best reached)"
        lines.append(
            f"| {r['factory']} | {r['build_s']:,.1f} | {r['serialized_bytes'] / 2**20:,.0f} | {setting} | "
            f"{r['recall_tuning']:.4f} | {r['recall_held_out']:.4f} | "
            f"{r['qps_batch256']:,.0f} | {r['p50_ms_batch1']:.3f} | {r['p99_ms_batch1']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="item vectors")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=1000, help="Gaussians in the mixture")
    parser.add_argument("--queries", type=int, default=1000, help="queries in each of the tuning and held-out sets")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--target", type=float, default=0.95, help="recall@k the search setting is tuned to reach")
    parser.add_argument("--factories", nargs="+", default=DEFAULT_FACTORIES, help="faiss.index_factory strings")
    parser.add_argument("--train-sample", type=int, default=200_000, help="train on at most this many vectors")
    parser.add_argument("--device", default="auto", choices=ann.DEVICES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the table here (Markdown), or rows and table (.json)")
    args = parser.parse_args(argv)
    for flag in ("n", "dim", "clusters", "queries", "k", "train_sample"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, received {getattr(args, flag)}")
    if args.k > args.n or not 0 < args.target <= 1:
        parser.error(f"need --k <= --n and 0 < --target <= 1, received --k {args.k} --n {args.n} --target {args.target}")

    started, load = time.perf_counter(), os.getloadavg()
    vectors = clustered(args.n, args.dim, args.clusters, seed=args.seed + 1)
    data = {"vectors": vectors, "ids": np.arange(args.n, dtype=np.int64)}
    queries = clustered(2 * args.queries, args.dim, args.clusters, seed=args.seed + 2)
    data["tune_queries"], data["test_queries"] = queries[: args.queries], queries[args.queries :]
    start = time.perf_counter()
    data["tune_truth"] = ann.exact_topk(vectors, data["ids"], data["tune_queries"], args.k)
    data["test_truth"] = ann.exact_topk(vectors, data["ids"], data["test_queries"], args.k)
    truth_s = time.perf_counter() - start
    print(f"{args.n:,} vectors, {2 * args.queries:,} queries, exact top-{args.k} in {truth_s:.1f} s", flush=True)

    rows = []
    for factory in args.factories:
        rows.append(measure(factory, data, args))
        r = rows[-1]
        print(
            f"{factory}: built in {r['build_s']:.1f} s, {r['search_params'] or 'no parameter'} reaches recall@{args.k} "
            f"{r['recall_tuning']:.4f} (held-out {r['recall_held_out']:.4f}), {r['qps_batch256']:,.0f} QPS",
            flush=True,
        )
    header = (
        f"`benchmarks/index.py --n {args.n} --dim {args.dim} --queries {args.queries} --k {args.k} --target {args.target}` "
        f"({dt.datetime.now().astimezone():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load average {load[0]:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at the end; Python {platform.python_version()}, faiss {faiss.__version__} "
        f"with {faiss.omp_get_max_threads()} OpenMP threads, {faiss.get_num_gpus()} GPUs). {args.n:,} unit vectors of "
        f"dim {args.dim} from {args.clusters} Gaussians; {args.queries} tuning and {args.queries} held-out queries; "
        f"training sample {min(args.n, args.train_sample):,}; exact ground truth {truth_s:.0f} s; "
        f"whole run {time.perf_counter() - started:.0f} s."
    )
    report = f"{header}\n\n{table(rows, args.k, args.target)}\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        raw = {"args": vars(args) | {"out": str(args.out)}, "rows": rows, "table": report}
        args.out.write_text(json.dumps(raw, indent=1) if args.out.suffix == ".json" else report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
