"""Scaling of the Spark ETL (sessions, item2vec pairs and negatives) against DuckDB as a single-node baseline.

    .venv/bin/python benchmarks/etl.py --sizes 1000000 4000000 16000000 --repeats 3 --out BENCHMARKS-etl.md

For each size, generates staged events (STAGED_EVENTS columns, zipf-ish item popularity, users with bursts
of activity separated by idle gaps, a few day-long bot sessions) and a 50k-item table with numpy, once,
as Parquet under ``--scratch``. Then, for each repeat, runs each engine in a fresh subprocess:

- spark: ``local[2]``, 4g driver, 8 shuffle partitions; the real ``transform_sessions``,
  ``transform_positive_pairs`` and ``transform_negatives``, with the popularity table built as
  ``spark_jobs.item2vec_samples.run`` builds it;
- duckdb: 2 threads, the same sessions, skip-gram pairs and negatives in SQL (other hash functions, so
  other draws, but the same sessions and positive pairs).

Both read the events Parquet, write the sessions, read them back (the pipeline's two jobs), and write
positive pairs + negatives; the time is from reading to written output, measured inside the subprocess
after start-up (JVM start and a warm-up query excluded). The parent polls the subprocess tree's RSS
(Python, JVM, children) every 0.2 s for the peak. Exits 1 if the engines disagree on the number of
sessions or positive pairs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyspark
from pyspark.sql import SparkSession

from recpipe import contracts
from spark_jobs.item2vec_samples import (
    NEG_TABLE_SIZE,
    popularity_table,
    transform_item_popularity,
    transform_negatives,
    transform_pairs,
    transform_positive_pairs,
    transform_sampling_probs,
)
from spark_jobs.sessions import transform_sessions

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("spark", "duckdb")
GAP_MS = 30 * 60_000
MAX_MS = 24 * 60 * 60_000
WINDOW = 2
N_CITY, N_GLOBAL, N_HARD, SEED = 2, 2, 1, 7
POLL_S = 0.2
# The generator: change GENERATOR when the data changes, so old scratch data is regenerated.
GENERATOR = 2
CHUNK_EVENTS = 1_000_000
# Row groups are the unit of parallel Parquet reads in both engines: several per core even at 1M events.
ROW_GROUP = 128 * 1024
N_ITEMS, N_CITIES = 50_000, 64
CATEGORY_WEIGHTS = np.array([0.30, 0.20, 0.15, 0.15, 0.12, 0.08])
EVENTS_PER_USER = 40
DAYS = 2
START_MS = int(dt.datetime(2026, 11, 5, tzinfo=dt.UTC).timestamp() * 1000)
# Share of each hour of the day in session starts: quiet nights, evening peak.
DIURNAL = np.array([1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 9, 8, 5, 2], dtype=float)
ARROW_TYPES = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64()}


# --- data -------------------------------------------------------------------------------------------------


def _city_weights() -> np.ndarray:
    w = 1.0 / (np.arange(N_CITIES) + 3.0) ** 0.8
    return w / w.sum()


def _items(rng: np.random.Generator) -> pa.Table:
    """Items in skewed cities and categories; every city has at least one item."""
    city = np.concatenate([np.arange(N_CITIES), rng.choice(N_CITIES, N_ITEMS - N_CITIES, p=_city_weights())])
    category = rng.choice(len(CATEGORY_WEIGHTS), N_ITEMS, p=CATEGORY_WEIGHTS)
    return pa.table(
        {
            "item_id": pa.array(100_001 + np.arange(N_ITEMS), pa.int64()),
            "city_id": pa.array(city, pa.int32()),
            "category_id": pa.array(category, pa.int32()),
        }
    )


class _ItemPicker:
    """Zipf-ish draws of items in a city, or in a city and category: low popularity ranks are drawn most."""

    def __init__(self, items: pa.Table, rng: np.random.Generator) -> None:
        self.ids = items["item_id"].to_numpy()
        self.categories = items["category_id"].to_numpy()
        city = items["city_id"].to_numpy()
        rank = rng.permutation(len(self.ids))
        self.by_city = np.lexsort((rank, city))
        self.by_block = np.lexsort((rank, self.categories, city))
        self.city_start, self.city_n = _blocks(city, N_CITIES)
        self.block_start, self.block_n = _blocks(city * len(CATEGORY_WEIGHTS) + self.categories, N_CITIES * len(CATEGORY_WEIGHTS))

    def pick(
        self, rng: np.random.Generator, city: np.ndarray, category: np.ndarray, in_category: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(item_id, category_id) per event: in the event's category where ``in_category``, else anywhere in its city."""
        block = city * len(CATEGORY_WEIGHTS) + category
        use_block = in_category & (self.block_n[block] > 0)
        start = np.where(use_block, self.block_start[block], self.city_start[city])
        n = np.where(use_block, self.block_n[block], self.city_n[city])
        rank = np.minimum((n * rng.random(len(city)) ** 4).astype(np.int64), n - 1)
        index = np.where(use_block, self.by_block[start + rank], self.by_city[start + rank])
        return self.ids[index], self.categories[index]


def _blocks(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and size of each key's block in the key-sorted order."""
    counts = np.bincount(key, minlength=n_keys)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]), counts


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _event_chunk(rng: np.random.Generator, picker: _ItemPicker, m: int, user0: int, event0: int) -> pa.Table:
    """``m`` staged events numbered from ``event0``, of about ``m / EVENTS_PER_USER`` users numbered from ``user0``."""
    lengths = rng.geometric(1 / 10, m // 5 + 100)
    bots = rng.random(len(lengths)) < 0.001
    lengths[bots] = rng.integers(300, 700, bots.sum())
    n_sessions = int(np.searchsorted(np.cumsum(lengths), m)) + 1
    lengths, bots = lengths[:n_sessions], bots[:n_sessions]
    lengths[-1] -= lengths.sum() - m
    n_users = max(1, m // EVENTS_PER_USER)
    session_user = np.sort(rng.integers(0, n_users, n_sessions))
    home = rng.choice(N_CITIES, n_users, p=_city_weights())
    session_city = np.where(
        rng.random(n_sessions) < 0.85, home[session_user], rng.choice(N_CITIES, n_sessions, p=_city_weights())
    )
    session_category = rng.choice(len(CATEGORY_WEIGHTS), n_sessions, p=CATEGORY_WEIGHTS)
    hour = rng.choice(24, n_sessions, p=DIURNAL / DIURNAL.sum())
    day = rng.integers(0, DAYS, n_sessions)
    session_start = START_MS + (day * 24 + hour) * 3_600_000 + rng.integers(0, 3_600_000, n_sessions)

    s = np.repeat(np.arange(n_sessions), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(m) - first[s]
    # Gaps between a session's events: mostly seconds, sometimes minutes (an idle gap may split it); bots
    # act every few minutes for a day or more, so the one-day cap splits them.
    gap_ms = np.where(rng.random(m) < 0.95, rng.exponential(20_000, m), rng.exponential(300_000, m))
    gap_ms = np.where(bots[s], rng.exponential(240_000, m), gap_ms).astype(np.int64)
    gap_ms[first] = 0
    elapsed = np.cumsum(gap_ms)
    ts = session_start[s] + elapsed - elapsed[first][s]

    city = session_city[s]
    item, category = picker.pick(rng, city, session_category[s], rng.random(m) < 0.7)
    u = rng.random(m)
    event = np.select([u < 0.12, u < 0.13, u < 0.14, u < 0.15, u < 0.16], [1, 2, 3, 4, 5], 0)
    # Logs arrive in time order, not grouped by user.
    order = np.argsort(ts, kind="stable")
    columns = {
        "event_id": _prefixed("e", event0 + np.arange(m)),
        "ts": pa.array(ts),
        "user_id": pa.array(user0 + session_user[s]),
        "item_id": pa.array(item),
        "event": pc.take(pa.array(contracts.EVENT_TYPES), pa.array(event)),
        "city_id": pa.array(city.astype(np.int32)),
        "category_id": pa.array(category.astype(np.int32)),
        "page": pc.take(pa.array(contracts.PAGES), pa.array(rng.choice(len(contracts.PAGES), m, p=[0.4, 0.3, 0.2, 0.1]))),
        "position": pa.array((pos % contracts.MAX_POSITION).astype(np.int32)),
        "device": pc.take(
            pa.array(contracts.DEVICES), pa.array(rng.integers(0, len(contracts.DEVICES), n_users)[session_user[s]])
        ),
        # Fewer sessions than events in a chunk, so event0 + s numbers sessions uniquely.
        "request_id": _prefixed("r", (event0 + s) * 1000 + pos // 10),
        "hour": pa.array(((ts // 3_600_000) % 24).astype(np.int32)),
    }
    table = pa.table(columns, schema=_events_schema())
    return table.take(pa.array(order))


def _events_schema() -> pa.Schema:
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in contracts.STAGED_EVENTS.schema])


def generate(root: Path, size: int, seed: int) -> Path:
    """Write ``events.parquet`` and ``items.parquet`` for ``size`` events, unless already there."""
    data = root / f"data-{size}"
    meta = {"events": size, "seed": seed, "generator": GENERATOR}
    marker = data / "_meta.json"
    if marker.exists() and json.loads(marker.read_text()) == meta:
        return data
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    t0 = time.perf_counter()
    items = _items(np.random.default_rng([seed, 0]))
    pq.write_table(items, data / "items.parquet")
    picker = _ItemPicker(items, np.random.default_rng([seed, 1]))
    with pq.ParquetWriter(data / "events.parquet", _events_schema()) as writer:
        for chunk, done in enumerate(range(0, size, CHUNK_EVENTS)):
            rng = np.random.default_rng([seed, 2, chunk])
            m = min(CHUNK_EVENTS, size - done)
            table = _event_chunk(rng, picker, m, user0=1 + done // EVENTS_PER_USER, event0=done)
            writer.write_table(table, row_group_size=ROW_GROUP)
    marker.write_text(json.dumps(meta))
    print(f"generated {size:,} events in {time.perf_counter() - t0:.1f} s: {data}", flush=True)
    return data


# --- engines (run in the worker subprocess) ----------------------------------------------------------------


def run_spark(data: Path, work: Path) -> dict:
    """The pipeline's Spark transforms on ``local[2]``; returns times (s) and counts."""
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bench-etl")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(work / "spark-local"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    spark.range(1000).selectExpr("sum(id)").collect()

    t0 = time.perf_counter()
    events = spark.read.parquet(str(data / "events.parquet")).select(*contracts.STAGED_EVENTS.columns)
    transform_sessions(events, GAP_MS, MAX_MS).write.mode("overwrite").parquet(str(work / "sessions"))
    t1 = time.perf_counter()
    # As spark_jobs.item2vec_samples.run (all sessions are train sessions here).
    sessions = spark.read.parquet(str(work / "sessions"))
    items = spark.read.parquet(str(data / "items.parquet")).select("item_id", "city_id", "category_id")
    item_clicks = transform_item_popularity(sessions).cache()
    clicks = {r.item_id: r.clicks for r in item_clicks.collect()}
    all_items = [r.item_id for r in items.select("item_id").collect()]
    pop = spark.createDataFrame(popularity_table(clicks, all_items), "bucket int, item_id bigint").cache()
    probs = transform_sampling_probs(pop).cache()
    positives = transform_positive_pairs(sessions, WINDOW).cache()
    negatives = transform_negatives(
        positives, items, pop, n_city=N_CITY, n_global=N_GLOBAL, n_hard=N_HARD, seed=SEED, table_size=NEG_TABLE_SIZE
    )
    transform_pairs(positives, negatives, probs).write.mode("overwrite").parquet(str(work / "pairs"))
    t2 = time.perf_counter()

    kinds = spark.read.parquet(str(work / "pairs")).groupBy("kind").count().collect()
    result = {
        "wall_s": t2 - t0,
        "sessions_s": t1 - t0,
        "pairs_s": t2 - t1,
        "sessions": spark.read.parquet(str(work / "sessions")).count(),
        "positive_pairs": positives.count(),
        "rows_by_kind": {r["kind"]: r["count"] for r in kinds},
    }
    spark.stop()
    return result


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _sessions_sql(events: Path) -> str:
    """transform_sessions in SQL: new session after a gap or past the cap, clicks ordered by (ts, event_id)."""
    return f"""
    WITH marked AS (
        SELECT user_id, ts, event_id, event, item_id,
               coalesce(ts - lag(ts) OVER by_user > {GAP_MS}, true)::INT AS is_new
        FROM read_parquet({_sql_str(events)})
        WINDOW by_user AS (PARTITION BY user_id ORDER BY ts, event_id)
    ), gaps AS (
        SELECT *, sum(is_new) OVER (PARTITION BY user_id ORDER BY ts, event_id ROWS UNBOUNDED PRECEDING) AS gap_no
        FROM marked
    ), slots AS (
        SELECT *, (ts - min(ts) OVER (PARTITION BY user_id, gap_no)) // {MAX_MS} AS slot FROM gaps
    )
    SELECT substr(sha256(concat_ws(':', user_id, min(ts))), 1, 16) AS session_id,
           user_id,
           min(ts) AS start_ts,
           max(ts) AS end_ts,
           count(*) AS n_events,
           coalesce(list(item_id ORDER BY ts, event_id) FILTER (WHERE event = 'click'), []::BIGINT[]) AS click_items,
           coalesce(list(ts ORDER BY ts, event_id) FILTER (WHERE event = 'click'), []::BIGINT[]) AS click_ts
    FROM slots
    GROUP BY user_id, gap_no, slot
    """


def _draw_sql(k: int, n: str) -> str:
    """A uniform integer in [0, n) from the pair's identity, the draw number and the seed."""
    return f"(hash(session_id, target_pos, context_pos, {k}, {SEED}) % ({n}))::BIGINT"


def _pairs_sql(table_size: int) -> str:
    """Positive pairs with the global sampler's probability, and transform_negatives' negatives."""
    city = [
        f"""SELECT t.click_items, t.target, t.context, s.item_id AS negative, 'city' AS kind, 1.0 / t.city_n AS prob
        FROM (SELECT *, {_draw_sql(k, "city_n")} AS idx FROM with_target) t
        JOIN samplers s ON s.city_id = t.city_id AND s.city_idx = t.idx"""
        for k in range(N_CITY)
    ]
    hard = [
        f"""SELECT t.click_items, t.target, t.context, s.item_id AS negative, 'hard' AS kind, 1.0 / (t.city_n - t.cat_n) AS prob
        FROM (SELECT *, {_draw_sql(N_CITY + k, "city_n - cat_n")} AS r FROM with_target WHERE city_n > cat_n) t
        JOIN samplers s ON s.city_id = t.city_id AND s.cc_idx = CASE WHEN t.r >= t.cat_start THEN t.r + t.cat_n ELSE t.r END"""
        for k in range(N_HARD)
    ]
    glob = [
        f"""SELECT p.click_items, p.target, p.context, pop.item_id AS negative, 'global' AS kind, probs.neg_prob AS prob
        FROM (SELECT *, {_draw_sql(N_CITY + N_HARD + k, str(table_size))} AS bucket FROM positives) p
        JOIN pop ON pop.bucket = p.bucket
        JOIN probs ON probs.item_id = pop.item_id"""
        for k in range(N_GLOBAL)
    ]
    union = "\n        UNION ALL\n        ".join(city + hard + glob)
    return f"""
    WITH with_target AS (
        SELECT p.*, s.city_id, s.city_n, s.cat_start, s.cat_n
        FROM positives p JOIN samplers s ON s.item_id = p.target
    ), negatives AS (
        {union}
    )
    SELECT p.target, p.context, 1.0::FLOAT AS label, 'positive' AS kind, probs.neg_prob::FLOAT AS prob
    FROM positives p LEFT JOIN probs ON probs.item_id = p.context
    UNION ALL
    SELECT target, negative AS context, 0.0::FLOAT AS label, kind, prob::FLOAT AS prob
    FROM negatives
    WHERE negative <> target AND negative <> context AND NOT list_contains(click_items, negative)
    """


def run_duckdb(data: Path, work: Path, memory_limit: str) -> dict:
    """The same sessions, pairs and negatives in DuckDB SQL with 2 threads; returns times (s) and counts."""
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = {_sql_str(work / 'duckdb-tmp')}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SELECT sum(range) FROM range(1000)").fetchall()
    sessions_file, pairs_file = work / "sessions.parquet", work / "pairs.parquet"

    t0 = time.perf_counter()
    con.execute(f"COPY ({_sessions_sql(data / 'events.parquet')}) TO {_sql_str(sessions_file)} (FORMAT parquet)")
    t1 = time.perf_counter()
    con.execute(f"CREATE VIEW sessions AS SELECT * FROM read_parquet({_sql_str(sessions_file)})")
    con.execute(
        f"CREATE VIEW items AS SELECT item_id, city_id, category_id FROM read_parquet({_sql_str(data / 'items.parquet')})"
    )
    con.execute("""
        CREATE TEMP TABLE samplers AS
        WITH ranked AS (
            SELECT item_id, city_id, category_id,
                   row_number() OVER (PARTITION BY city_id ORDER BY item_id) - 1 AS city_idx,
                   row_number() OVER (PARTITION BY city_id ORDER BY category_id, item_id) - 1 AS cc_idx,
                   count(*) OVER (PARTITION BY city_id) AS city_n
            FROM items
        )
        SELECT *, min(cc_idx) OVER block AS cat_start, count(*) OVER block AS cat_n
        FROM ranked WINDOW block AS (PARTITION BY city_id, category_id)
    """)
    # popularity_table: bucket b draws the first item whose cumulative (clicks + 1) ** 0.75 share exceeds (b + 0.5) / size.
    con.execute(f"""
        CREATE TEMP TABLE pop AS
        WITH clicks AS (
            SELECT item_id, count(*) AS clicks FROM (SELECT unnest(click_items) AS item_id FROM sessions) GROUP BY item_id
        ), weights AS (
            SELECT i.item_id, pow(coalesce(c.clicks, 0) + 1, 0.75) AS w FROM items i LEFT JOIN clicks c ON c.item_id = i.item_id
        ), cdf AS (
            SELECT item_id, sum(w) OVER (ORDER BY item_id ROWS UNBOUNDED PRECEDING) / sum(w) OVER () AS cdf FROM weights
        ), buckets AS (
            SELECT range AS bucket, (range + 0.5) / {NEG_TABLE_SIZE} AS u FROM range({NEG_TABLE_SIZE})
        )
        SELECT b.bucket, coalesce(cdf.item_id, (SELECT max(item_id) FROM items)) AS item_id
        FROM buckets b ASOF LEFT JOIN cdf ON b.u < cdf.cdf
    """)
    con.execute("""
        CREATE TEMP TABLE probs AS
        SELECT item_id, count(*) / sum(count(*)) OVER () AS neg_prob FROM pop GROUP BY item_id
    """)
    con.execute(f"""
        CREATE TEMP TABLE positives AS
        WITH exploded AS (
            SELECT session_id, click_items, unnest(click_items) AS item, unnest(range(len(click_items))) AS pos FROM sessions
        )
        SELECT l.session_id, l.click_items, l.pos AS target_pos, r.pos AS context_pos, l.item AS target, r.item AS context
        FROM exploded l JOIN exploded r
          ON l.session_id = r.session_id AND abs(l.pos - r.pos) <= {WINDOW} AND l.pos <> r.pos AND l.item <> r.item
    """)
    table_size = con.execute("SELECT count(*) FROM pop").fetchone()[0]
    con.execute(f"COPY ({_pairs_sql(table_size)}) TO {_sql_str(pairs_file)} (FORMAT parquet)")
    t2 = time.perf_counter()

    kinds = con.execute(f"SELECT kind, count(*) FROM read_parquet({_sql_str(pairs_file)}) GROUP BY kind").fetchall()
    result = {
        "wall_s": t2 - t0,
        "sessions_s": t1 - t0,
        "pairs_s": t2 - t1,
        "sessions": con.execute("SELECT count(*) FROM sessions").fetchone()[0],
        "positive_pairs": con.execute("SELECT count(*) FROM positives").fetchone()[0],
        "rows_by_kind": dict(kinds),
    }
    con.close()
    return result


def worker(argv: list[str]) -> int:
    """``etl.py worker ENGINE DATA WORK RESULT``: run one engine once, write its result as JSON."""
    parser = argparse.ArgumentParser(prog="etl.py worker")
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("data", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--duckdb-memory", default="4GB")
    args = parser.parse_args(argv)
    if args.engine == "spark":
        result = run_spark(args.data, args.work)
    else:
        result = run_duckdb(args.data, args.work, args.duckdb_memory)
    args.result.write_text(json.dumps(result))
    return 0


# --- harness ------------------------------------------------------------------------------------------------


def _tree_rss(proc: psutil.Process) -> int:
    """RSS of the process and all its descendants (the Spark JVM is a child of the Python worker)."""
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # exited between listing and reading
    return total


def measure(engine: str, data: Path, root: Path, tag: str, duckdb_memory: str) -> dict:
    """Run one engine in a fresh subprocess; its result plus the peak RSS of its process tree."""
    work = root / "out" / engine
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result_file = work / "result.json"
    log_file = root / "logs" / f"{tag}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "worker", engine, str(data), str(work), str(result_file)]
    cmd += ["--duckdb-memory", duckdb_memory]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    peak = 0
    t0 = time.perf_counter()
    with log_file.open("w") as log:
        proc = psutil.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc))
            time.sleep(POLL_S)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or not result_file.exists():
        tail = "".join(log_file.read_text().splitlines(keepends=True)[-30:])
        raise RuntimeError(f"{tag}: worker exited with {proc.returncode}; last lines of {log_file}:\n{tail}")
    return {**json.loads(result_file.read_text()), "engine": engine, "peak_rss_mib": peak / 2**20, "process_s": elapsed}


def _label(n: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n:,}"


def check_counts(size: int, runs: list[dict]) -> list[str]:
    """Errors if the engines (or repeats) disagree on the number of sessions or positive pairs."""
    errors = []
    for key in ("sessions", "positive_pairs"):
        seen = {r["engine"]: sorted({x[key] for x in runs if x["engine"] == r["engine"]}) for r in runs}
        if len({v for values in seen.values() for v in values}) != 1:
            errors.append(f"{_label(size)} events: {key} differ: {seen}; expected the same count from every engine and repeat")
    return errors


def report(runs: list[dict], sizes: list[int], header: str) -> str:
    """Markdown: per engine and size medians, Spark/DuckDB ratios, and scaling between consecutive sizes."""
    med: dict[tuple[str, int], dict] = {}
    for engine in ENGINES:
        for size in sizes:
            rs = [r for r in runs if r["engine"] == engine and r["events"] == size]
            if rs:
                keys = ("wall_s", "sessions_s", "pairs_s", "peak_rss_mib")
                med[engine, size] = {k: statistics.median(r[k] for r in rs) for k in keys} | {
                    "sessions": rs[0]["sessions"],
                    "positive_pairs": rs[0]["positive_pairs"],
                    "rows": sum(rs[0]["rows_by_kind"].values()),
                    "walls": [r["wall_s"] for r in rs],
                }
    lines = [header, ""]
    lines += [
        "| engine | events | wall s (median) | of which sessions s | events/s | peak RSS MiB (median) "
        "| sessions | positive pairs | output rows | runs, s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (engine, size), m in med.items():
        lines.append(
            f"| {engine} | {_label(size)} | {m['wall_s']:.1f} | {m['sessions_s']:.1f} | {size / m['wall_s']:,.0f} | "
            f"{m['peak_rss_mib']:,.0f} | {m['sessions']:,} | {m['positive_pairs']:,} | {m['rows']:,} | "
            f"{', '.join(f'{w:.1f}' for w in m['walls'])} |"
        )
    lines += ["", "| events | Spark / DuckDB time | Spark / DuckDB peak RSS |", "|---:|---:|---:|"]
    for size in sizes:
        if ("spark", size) in med and ("duckdb", size) in med:
            s, d = med["spark", size], med["duckdb", size]
            lines.append(f"| {_label(size)} | {s['wall_s'] / d['wall_s']:.2f} | {s['peak_rss_mib'] / d['peak_rss_mib']:.2f} |")
    pairs = list(itertools.pairwise(sizes))
    if pairs:
        cols = [f"t({_label(b)}) / t({_label(a)}) (events ×{b / a:g})" for a, b in pairs]
        lines += ["", f"| engine | {' | '.join(cols)} |", "|---|" + "---:|" * len(pairs)]
        for engine in ENGINES:
            cells = [
                f"{med[engine, b]['wall_s'] / med[engine, a]['wall_s']:.2f}" if (engine, a) in med and (engine, b) in med else "-"
                for a, b in pairs
            ]
            lines.append(f"| {engine} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        return worker(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000], help="events per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine and size (the table shows medians)")
    parser.add_argument("--out", type=Path, help="write the table here (Markdown), or the runs and the table (.json)")
    parser.add_argument("--scratch", type=Path, default=REPO / "var" / "bench" / "etl", help="generated data, outputs, logs")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data")
    parser.add_argument("--duckdb-memory", default="4GB", help="DuckDB memory_limit (Spark's driver heap is 4g)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or any(n < 1000 for n in args.sizes):
        parser.error(f"need --repeats >= 1 and sizes >= 1000; received --repeats {args.repeats} --sizes {args.sizes}")
    sizes = sorted(set(args.sizes))
    load = os.getloadavg()
    header = (
        f"`benchmarks/etl.py --sizes {' '.join(map(str, sizes))} --repeats {args.repeats}` "
        f"({dt.datetime.now().astimezone():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load average {load[0]:.1f} at start; "
        f"Python {platform.python_version()}, pyspark {pyspark.__version__} local[2], duckdb {duckdb.__version__} 2 threads). "
        "Medians over repeats; wall time from reading the events to the written pairs, start-up excluded; "
        "peak RSS of the whole process tree (Python + JVM)."
    )
    runs: list[dict] = []
    errors: list[str] = []
    for size in sizes:
        data = generate(args.scratch, size, args.seed)
        for rep in range(args.repeats):
            for engine in ENGINES:
                r = measure(engine, data, args.scratch, f"{engine}-{size}-{rep}", args.duckdb_memory)
                runs.append({**r, "events": size, "repeat": rep})
                print(
                    f"{engine:6} {_label(size):>5} #{rep}: {r['wall_s']:7.1f} s ({r['process_s']:.0f} s with start-up), "
                    f"peak {r['peak_rss_mib']:7,.0f} MiB, "
                    f"{r['sessions']:,} sessions, {r['positive_pairs']:,} positive pairs",
                    flush=True,
                )
        errors += check_counts(size, [r for r in runs if r["events"] == size])
        if errors:
            break
    table = report(runs, sizes, header) + f"\nLoad average at the end: {os.getloadavg()[0]:.1f}.\n"
    print(table)
    (args.scratch / "runs.json").write_text(json.dumps(runs, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "table": table}, indent=1) if args.out.suffix == ".json" else table)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
