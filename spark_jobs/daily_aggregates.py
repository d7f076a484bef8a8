"""Daily aggregates of one day's staged events: per user and action type, per item, per user x category x city.

Ranking features sum these over 1..30-day windows, so each nightly run aggregates one new day of logs
and reads back small daily tables instead of rescanning a month of raw events.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recpipe import contracts
from recpipe.config import Config
from spark_jobs.common import job_main, read_partition, read_snapshot, write_partition


def _count(event: str) -> F.Column:
    return F.sum((F.col("event") == event).cast("long")).alias(f"n_{event}")


def transform_user_daily(events: DataFrame, by: Sequence[str] = ()) -> DataFrame:
    """Events per user and action type (and per ``by`` columns, e.g. ``ds`` over several days)."""
    counts = events.groupBy("user_id", *by).agg(*[_count(e) for e in contracts.EVENT_TYPES])
    return counts.select(*contracts.USER_DAILY.columns, *by)


def transform_item_daily(events: DataFrame, by: Sequence[str] = ()) -> DataFrame:
    """Exposures and clicks per item (and per ``by`` columns)."""
    return events.groupBy("item_id", *by).agg(_count("expose"), _count("click")).select(*contracts.ITEM_DAILY.columns, *by)


def transform_user_cross_daily(events: DataFrame, items: DataFrame, by: Sequence[str] = ()) -> DataFrame:
    """Clicks per user in each category and city of the clicked items, from the item snapshot (and per ``by``)."""
    clicks = events.where(F.col("event") == "click").select("user_id", "item_id", *by)
    clicks = clicks.join(items.select("item_id", "category_id", "city_id"), on="item_id", how="inner")
    counts = clicks.groupBy("user_id", "category_id", "city_id", *by).agg(F.count(F.lit(1)).alias("clicks"))
    return counts.select(*contracts.USER_CROSS_DAILY.columns, *by)


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Read ``staged/events/ds`` (and the item snapshot); overwrite ``features/{user,item,user_cross}_daily/ds``."""
    events = read_partition(spark, cfg.lake_root, contracts.STAGED_EVENTS, ds).cache()
    write_partition(transform_user_daily(events), cfg.lake_root, contracts.USER_DAILY, ds)
    write_partition(transform_item_daily(events), cfg.lake_root, contracts.ITEM_DAILY, ds)
    items = read_snapshot(spark, cfg.lake_root, contracts.RAW_ITEMS, ds, cfg.etl.max_snapshot_age_days)
    out = write_partition(transform_user_cross_daily(events, items), cfg.lake_root, contracts.USER_CROSS_DAILY, ds)
    events.unpersist()
    return out


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
