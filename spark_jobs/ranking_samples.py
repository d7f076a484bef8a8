"""Ranking training set for day D: exposures of [D-k, D] labelled by click, with windowed behaviour features.

Every behaviour feature of an example on day d sums the daily aggregates (``features/*_daily``) of the
days [d-w, d-1] for each window w in ``contracts.FEATURE_WINDOWS``: days strictly before d, so no
example sees its own day or the future, and train and eval examples see windows of the same width.
Window days missing from the lake (before its first day, or not yet backfilled) count as zero and are
logged. Exposures of D form the eval split, those of [D-k, D-1] the train split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recpipe import contracts, lake
from recpipe.config import Config
from spark_jobs.common import (
    index_of,
    job_main,
    join_items,
    join_users,
    read_available_days,
    read_days,
    read_snapshot,
    write_partition,
)

log = logging.getLogger(__name__)
WINDOWS = contracts.FEATURE_WINDOWS


def transform_windowed(examples: DataFrame, daily: DataFrame, keys: Sequence[str], values: dict[str, str]) -> DataFrame:
    """For each distinct (keys, ds) of ``examples``: ``daily`` values summed over each window before ds.

    ``values`` maps a daily column to a feature prefix: column ``v`` becomes ``{prefix}_{w}d`` for every
    window w, the sum of ``v`` over the daily rows with ds in [example ds - w, example ds - 1].
    """
    ex = examples.select(*keys, "ds").distinct().alias("ex")
    d = daily.alias("d")
    age = F.datediff(F.to_date(F.col("ex.ds")), F.to_date(F.col("d.ds")))
    first = F.date_format(F.date_sub(F.to_date(F.col("ex.ds")), max(WINDOWS)), "yyyy-MM-dd")
    cond = [F.col(f"ex.{k}") == F.col(f"d.{k}") for k in keys] + [F.col("d.ds") < F.col("ex.ds"), F.col("d.ds") >= first]
    joined = ex.join(d, on=cond, how="left").withColumn("_age", age)
    sums = [
        F.coalesce(F.sum(F.when(F.col("_age") <= w, F.col(f"d.{col}"))), F.lit(0)).cast("double").alias(f"{prefix}_{w}d")
        for col, prefix in values.items()
        for w in WINDOWS
    ]
    return joined.groupBy(*[F.col(f"ex.{k}").alias(k) for k in keys], F.col("ex.ds").alias("ds")).agg(*sums)


def transform_ranking_samples(
    events: DataFrame,
    users: DataFrame,
    items: DataFrame,
    user_daily: DataFrame,
    item_daily: DataFrame,
    user_cross_daily: DataFrame,
    eval_ds: str,
    *,
    smooth_clicks: float,
    smooth_exposures: float,
) -> DataFrame:
    """Labelled exposures of ``events`` (staged events with a ``ds`` column) with windowed features.

    The daily tables carry a ``ds`` column and should cover the 30 days before the first example day;
    days they lack count as zero.
    """
    clicked = events.where(F.col("event") == "click").select("request_id", "item_id").distinct().withColumn("label", F.lit(1.0))
    exposures = events.where(F.col("event") == "expose").join(clicked, on=["request_id", "item_id"], how="left")
    exposures = exposures.withColumn("label", F.coalesce("label", F.lit(0.0)).cast("float"))
    examples = join_users(join_items(exposures, items, "price"), users)
    user_counts = transform_windowed(examples, user_daily, ["user_id"], {f"n_{e}": f"user_{e}" for e in contracts.EVENT_TYPES})
    item_counts = transform_windowed(examples, item_daily, ["item_id"], {"n_click": "_ic", "n_expose": "_ie"})
    item_ctr = item_counts.select(
        "item_id",
        "ds",
        *[
            ((F.col(f"_ic_{w}d") + smooth_clicks) / (F.col(f"_ie_{w}d") + smooth_exposures)).alias(f"item_ctr_{w}d")
            for w in WINDOWS
        ],
    )
    clicks = F.sum("clicks").alias("clicks")
    cat_daily = user_cross_daily.groupBy("user_id", F.col("category_id").alias("item_category"), "ds").agg(clicks)
    city_daily = user_cross_daily.groupBy("user_id", F.col("city_id").alias("item_city"), "ds").agg(clicks)
    user_cat = transform_windowed(examples, cat_daily, ["user_id", "item_category"], {"clicks": "user_cat_clicks"})
    user_city = transform_windowed(examples, city_daily, ["user_id", "item_city"], {"clicks": "user_city_clicks"})
    out = (
        examples.join(user_counts, on=["user_id", "ds"], how="left")
        .join(item_ctr, on=["item_id", "ds"], how="left")
        .join(user_cat, on=["user_id", "item_category", "ds"], how="left")
        .join(user_city, on=["user_id", "item_city", "ds"], how="left")
    )
    return out.select(
        F.when(F.col("ds") == eval_ds, "eval").otherwise("train").alias("split"),
        "event_id",
        "ts",
        "user_id",
        "item_id",
        "label",
        F.col("user_city").cast("int").alias("user_city"),
        index_of("user_type", contracts.USER_TYPES).alias("user_type"),
        index_of("user_device", contracts.DEVICES).alias("device"),
        F.col("item_city").cast("int").alias("item_city"),
        F.col("item_category").cast("int").alias("category_id"),
        F.least(F.floor(F.log2(F.col("price") + 1) / 2), F.lit(contracts.PRICE_BUCKETS - 1)).cast("int").alias("price_bucket"),
        F.least(F.col("position"), F.lit(contracts.MAX_POSITION - 1)).cast("int").alias("position"),
        "hour",
        (F.col("user_city") == F.col("item_city")).cast("int").alias("city_match"),
        *[F.col(name).cast("float").alias(name) for name in contracts.window_features()],
    )


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Build ``training/ranking_samples/ds`` from staged events of [D-k, D] and 30 days of daily aggregates."""
    root, e = cfg.lake_root, cfg.etl
    events = read_days(spark, root, contracts.STAGED_EVENTS, lake.window(ds, e.lookback_days, include_ds=True))
    feature_days = lake.window(ds, cfg.etl.lookback_days + max(WINDOWS), include_ds=False)
    dailies = {}
    for contract in (contracts.USER_DAILY, contracts.ITEM_DAILY, contracts.USER_CROSS_DAILY):
        # The days of the example window itself must be there: the examples come from them.
        lake.require_partitions(root, contract, lake.window(ds, cfg.etl.lookback_days, include_ds=False))
        dailies[contract.name], _missing = read_available_days(spark, root, contract, feature_days)
    out = transform_ranking_samples(
        events,
        read_snapshot(spark, root, contracts.RAW_USERS, ds, e.max_snapshot_age_days),
        read_snapshot(spark, root, contracts.RAW_ITEMS, ds, e.max_snapshot_age_days),
        dailies[contracts.USER_DAILY.name],
        dailies[contracts.ITEM_DAILY.name],
        dailies[contracts.USER_CROSS_DAILY.name],
        ds,
        smooth_clicks=cfg.etl.ctr_smoothing_clicks,
        smooth_exposures=cfg.etl.ctr_smoothing_exposures,
    )
    return write_partition(out, root, contracts.RANKING_SAMPLES, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
