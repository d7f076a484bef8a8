"""Shared Spark I/O: sessions, reading a partition, overwriting exactly one partition, job arguments."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from recpipe import lake
from recpipe.config import Config, load_config
from recpipe.contracts import Contract

log = logging.getLogger(__name__)


def spark_session(app_name: str) -> SparkSession:
    """The job's SparkSession; master and resources come from spark-submit (or ``local[*]``)."""
    builder = SparkSession.builder.appName(app_name).config("spark.ui.showConsoleProgress", "false")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def read_json_partition(spark: SparkSession, root: str, contract: Contract, ds: str) -> DataFrame:
    """Read a raw JSON-lines partition with the contract's schema; fails if it is not complete."""
    lake.require_partitions(root, contract, [ds])
    return spark.read.schema(contract.spark_ddl()).json(lake.partition_uri(root, contract, ds))


def read_snapshot(spark: SparkSession, root: str, contract: Contract, ds: str, max_age_days: int) -> DataFrame:
    """Read the latest complete raw snapshot (users, items) at most ``max_age_days`` before ``ds``.

    Raises ``LakeError`` when the snapshot is older than that, has duplicate keys, or nulls in a
    non-nullable column: each would silently drop or duplicate training examples downstream.
    """
    day = lake.latest_ready(root, contract, ds)
    age = (lake.parse_ds(ds) - lake.parse_ds(day)).days
    where = lake.partition_uri(root, contract, day)
    if age > max_age_days:
        raise lake.LakeError(
            f"{where} is the latest snapshot for ds={ds}: {age} days old, more than etl.max_snapshot_age_days={max_age_days}"
        )
    if day != ds:
        log.warning("%s: no snapshot for ds=%s, using the one of ds=%s", lake.dataset_uri(root, contract), ds, day)
    df = read_json_partition(spark, root, contract, day)
    required = [c.name for c in contract.schema if not c.nullable]
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(*[F.col(k) for k in contract.keys]).alias("keys"),
        *[F.sum(F.col(c).isNull().cast("long")).alias(c) for c in required],
    ).first()
    nulls = {c: stats[c] for c in required if stats[c]}
    if stats["rows"] != stats["keys"] or nulls:
        dupes = stats["rows"] - stats["keys"]
        raise lake.LakeError(f"{where}: {dupes} rows with a duplicate {list(contract.keys)}; null values per column: {nulls}")
    return df


def read_partition(spark: SparkSession, root: str, contract: Contract, ds: str) -> DataFrame:
    """Read one Parquet partition, checking its marker and the contract's columns."""
    lake.require_partitions(root, contract, [ds])
    df = spark.read.parquet(lake.partition_uri(root, contract, ds))
    missing = [c for c in contract.columns if c not in df.columns]
    if missing:
        raise lake.LakeError(f"{lake.partition_uri(root, contract, ds)}: columns {missing} missing; found {df.columns}")
    return df.select(*contract.columns)


def read_days(spark: SparkSession, root: str, contract: Contract, days: Sequence[str]) -> DataFrame:
    """Union of several Parquet partitions with a ``ds`` column; every day must be complete."""
    lake.require_partitions(root, contract, list(days))
    return union_all([read_partition(spark, root, contract, ds).withColumn("ds", F.lit(ds)) for ds in days])


def read_available_days(spark: SparkSession, root: str, contract: Contract, days: Sequence[str]) -> tuple[DataFrame, list[str]]:
    """Union of the complete partitions among ``days`` with a ``ds`` column, and the days that were missing.

    For look-back windows of daily aggregates: days before the dataset's first day in the window (a
    young lake) contribute nothing; a gap after it (a failed or deleted day) is an error naming the days.
    """
    present = [ds for ds in days if lake.partition_ready(root, contract, ds)]
    missing = [ds for ds in days if ds not in present]
    gaps = [ds for ds in missing if present and ds > present[0]]
    if gaps:
        raise lake.LakeError(
            f"{lake.dataset_uri(root, contract)}: window days missing after the first present day {present[0]}: "
            f"{', '.join(f'ds={d}' for d in gaps)} (backfill them; only days before the lake's first day may be absent)"
        )
    if missing:
        log.warning("%s: %d of %d window days missing: %s", lake.dataset_uri(root, contract), len(missing), len(days), missing)
    if not present:
        empty_schema = f"{contract.spark_ddl()}, ds string"
        return spark.createDataFrame([], empty_schema), missing
    frames = [read_partition(spark, root, contract, ds).withColumn("ds", F.lit(ds)) for ds in present]
    return union_all(frames), missing


def join_items(df: DataFrame, items: DataFrame, *extra: str) -> DataFrame:
    """Each row's item city and category (``item_city``, ``item_category``) and ``extra`` columns from the snapshot."""
    cols = items.select("item_id", F.col("city_id").alias("item_city"), F.col("category_id").alias("item_category"), *extra)
    return df.join(cols, on="item_id", how="inner")


def join_users(df: DataFrame, users: DataFrame) -> DataFrame:
    """Each row's user profile (``user_city``, ``user_type``, ``user_device``) from the snapshot."""
    cols = users.select("user_id", F.col("city_id").alias("user_city"), "user_type", F.col("device").alias("user_device"))
    return df.join(cols, on="user_id", how="inner")


def index_of(col: str, values: Sequence[str]) -> Column:
    """0-based position of the column's value in ``values`` (-1 when absent: the models' OOV bucket)."""
    return (F.array_position(F.array(*[F.lit(v) for v in values]), F.col(col)) - 1).cast("int")


def union_all(frames: Sequence[DataFrame]) -> DataFrame:
    """Union of DataFrames with the same columns, matched by name."""
    if not frames:
        raise ValueError("union_all needs at least one DataFrame")
    return functools.reduce(DataFrame.unionByName, frames)


def write_partition(df: DataFrame, root: str, contract: Contract, ds: str) -> str:
    """Overwrite exactly one partition (Spark's commit protocol writes ``_SUCCESS`` last)."""
    uri = lake.partition_uri(root, contract, ds)
    df.select(*contract.columns).write.mode("overwrite").parquet(uri)
    log.info("wrote %s", uri)
    return uri


def job_main(description: str, run: Callable[[SparkSession, Config, str], str], argv: Sequence[str] | None = None) -> None:
    """Common ``main()``: parse ``--ds`` and ``--config``, run the job, print the output URI."""
    parser = argparse.ArgumentParser(description=description)
    # A malformed day is a usage error (exit code 2) naming the value, before any Spark session starts.
    parser.add_argument("--ds", required=True, type=lake.ds_arg, help="the day to process, YYYY-MM-DD")
    parser.add_argument("--config", default=None, help="config YAML (default: $RECPIPE_CONFIG or embedded)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config)
    # Under spark-submit the job's module is ``__main__``: name the app after its file, as the DAG's --name does.
    job = run.__module__.rsplit(".", 1)[-1]
    if job == "__main__":
        job = Path(sys.argv[0]).stem
    spark = spark_session(f"recpipe-{job}-{args.ds}")
    try:
        print(run(spark, cfg, args.ds))
    finally:
        spark.stop()
