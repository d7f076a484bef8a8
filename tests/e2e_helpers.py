"""Helpers of the end-to-end tests: tiny generated lakes, their ETL history, partition fingerprints."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pads

from recpipe import contracts, lake, synthetic
from recpipe.config import Config

USERS, ITEMS, SEED = 300, 120, 5
# The partitions one nightly run writes for its day.
OUTPUTS = [
    contracts.STAGED_EVENTS,
    contracts.QUARANTINE_EVENTS,
    contracts.SESSIONS,
    contracts.USER_DAILY,
    contracts.ITEM_DAILY,
    contracts.USER_CROSS_DAILY,
    contracts.ITEM2VEC_PAIRS,
    contracts.ITEM2VEC_CBOW,
    contracts.ITEM_POPULARITY,
    contracts.RECALL_EVAL,
    contracts.RANKING_SAMPLES,
    contracts.RETRIEVAL_SAMPLES,
]


def make_lake(cfg: Config, days: int, history: int, start: str = "2026-11-01", spark=None) -> list[str]:
    """Generate ``days`` days of tiny logs and stage the first ``history`` days (the lookback window)."""
    from orchestration.tasks import run_history_jobs

    day_list = synthetic.generate(cfg.lake_root, days=days, users=USERS, items=ITEMS, seed=SEED, start=start)
    for ds in day_list[:history]:
        run_history_jobs(spark, cfg, ds)  # what `recpipe etl` runs: the registry's history jobs, in order
    return day_list


def fingerprint(cfg: Config, dataset: str, ds: str) -> str:
    """Hash of a Parquet partition's rows, independent of file names and row order."""
    table = pads.dataset(lake.partition_uri(cfg.lake_root, dataset, ds), format="parquet").to_table()
    rows = sorted(repr(r) for r in table.to_pylist())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def airflow(*args: str, env: dict | None = None, timeout: int = 300) -> str:
    """Run an ``airflow`` CLI command of this environment; fail with its output."""
    cmd = [str(Path(sys.executable).parent / "airflow"), *args]
    for _attempt in range(3):
        proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
        # SQLite answers "database is locked" at once (no busy wait) when a reading transaction must
        # upgrade to a write while the scheduler writes; only that error is retried.
        if proc.returncode == 0 or "database is locked" not in proc.stderr + proc.stdout:
            break
        time.sleep(5)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout
