"""Stage one day of raw events: typed, required fields present, known event types, in-day, deduplicated."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recpipe import contracts, lake
from recpipe.config import Config
from spark_jobs.common import job_main, read_json_partition, write_partition


def transform_stage_events(raw: DataFrame, day_start_ms: int, day_end_ms: int) -> DataFrame:
    """Typed, valid, in-day events with one row per ``event_id`` (the earliest) and the UTC hour."""
    valid = raw.where(
        F.expr(" AND ".join(f"`{c}` IS NOT NULL" for c in contracts.RAW_EVENTS.columns))
        & F.col("event").isin(*contracts.EVENT_TYPES)
        & (F.col("ts") >= day_start_ms)
        & (F.col("ts") < day_end_ms)
    )
    first = Window.partitionBy("event_id").orderBy("ts", "request_id")
    dedup = valid.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n")
    hour = F.expr("CAST(((ts DIV 1000) % 86400) DIV 3600 AS INT)")
    return dedup.withColumn("hour", hour).select(*contracts.STAGED_EVENTS.columns)


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Read ``raw/events/ds``, stage it, overwrite ``staged/events/ds``."""
    raw = read_json_partition(spark, cfg.lake_root, contracts.RAW_EVENTS, ds)
    start, end = lake.day_bounds_ms(ds)
    return write_partition(transform_stage_events(raw, start, end), cfg.lake_root, contracts.STAGED_EVENTS, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
