"""Ranking training set for day D: exposures of [D-k, D] labelled by click, with user, item and cross features.

Every behaviour feature of an example on day d is summed over the same fixed window [d-w, d-1] of
days strictly before d, so no example sees its own day or the future and train and eval examples
see windows of the same width. Exposures of D form the eval split, those of [D-k, D-1] the train split.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from recpipe import contracts, lake
from recpipe.config import Config
from spark_jobs.common import job_main, read_days, read_json_partition, write_partition


def _prior(examples: DataFrame, daily: DataFrame, keys: Sequence[str], values: Sequence[str], window_days: int) -> DataFrame:
    """For each (keys, ds) of ``examples``: the sum of ``daily`` values over the ``window_days`` days before ds."""
    ex = examples.select(*keys, "ds").distinct().alias("ex")
    d = daily.alias("d")
    first = F.date_format(F.date_sub(F.to_date(F.col("ex.ds")), window_days), "yyyy-MM-dd")
    cond = [F.col(f"ex.{k}") == F.col(f"d.{k}") for k in keys] + [F.col("d.ds") < F.col("ex.ds"), F.col("d.ds") >= first]
    joined = ex.join(d, on=cond, how="left")
    sums = [F.coalesce(F.sum(F.col(f"d.{v}")), F.lit(0)).cast("float").alias(v) for v in values]
    return joined.groupBy(*[F.col(f"ex.{k}").alias(k) for k in keys], F.col("ex.ds").alias("ds")).agg(*sums)


def _index_of(col: str, values: Sequence[str]) -> Column:
    return (F.array_position(F.array(*[F.lit(v) for v in values]), F.col(col)) - 1).cast("int")


def transform_ranking_samples(
    events: DataFrame,
    users: DataFrame,
    items: DataFrame,
    eval_ds: str,
    *,
    lookback_days: int,
    feature_window_days: int,
    smooth_clicks: float,
    smooth_exposures: float,
) -> DataFrame:
    """Labelled exposures of [eval_ds - lookback_days, eval_ds] with features.

    ``events`` are staged events with a ``ds`` column covering at least
    [eval_ds - lookback_days - feature_window_days, eval_ds].
    """
    first_example_day = lake.shift_ds(eval_ds, -lookback_days)
    is_click = (F.col("event") == "click").cast("int")
    is_expose = (F.col("event") == "expose").cast("int")
    clicked = events.where(F.col("event") == "click").select("request_id", "item_id").distinct().withColumn("label", F.lit(1.0))
    shown = events.where((F.col("event") == "expose") & (F.col("ds") >= first_example_day) & (F.col("ds") <= eval_ds))
    exposures = shown.join(clicked, on=["request_id", "item_id"], how="left")
    exposures = exposures.withColumn("label", F.coalesce("label", F.lit(0.0)).cast("float"))
    examples = exposures.join(
        items.select("item_id", F.col("city_id").alias("item_city"), F.col("category_id").alias("item_category"), "price"),
        on="item_id",
        how="inner",
    ).join(
        users.select("user_id", F.col("city_id").alias("user_city"), "user_type", F.col("device").alias("user_device")),
        on="user_id",
        how="inner",
    )
    user_daily = events.groupBy("user_id", "ds").agg(
        F.sum(is_click).alias("user_clicks_prior"), F.sum(is_expose).alias("user_exposures_prior")
    )
    user_cat_daily = (
        events.where(F.col("event") == "click")
        .groupBy("user_id", F.col("category_id").alias("item_category"), "ds")
        .agg(F.count(F.lit(1)).alias("user_cat_clicks_prior"))
    )
    item_daily = events.groupBy("item_id", "ds").agg(F.sum(is_click).alias("_ic"), F.sum(is_expose).alias("_ie"))
    w = feature_window_days
    item_prior = _prior(examples, item_daily, ["item_id"], ["_ic", "_ie"], w).withColumn(
        "item_ctr_prior", ((F.col("_ic") + smooth_clicks) / (F.col("_ie") + smooth_exposures)).cast("float")
    )
    out = (
        examples.join(
            _prior(examples, user_daily, ["user_id"], ["user_clicks_prior", "user_exposures_prior"], w),
            on=["user_id", "ds"],
            how="left",
        )
        .join(
            _prior(examples, user_cat_daily, ["user_id", "item_category"], ["user_cat_clicks_prior"], w),
            on=["user_id", "item_category", "ds"],
            how="left",
        )
        .join(item_prior.select("item_id", "ds", "item_ctr_prior"), on=["item_id", "ds"], how="left")
    )
    return out.select(
        F.when(F.col("ds") == eval_ds, "eval").otherwise("train").alias("split"),
        "event_id",
        "ts",
        "user_id",
        "item_id",
        "label",
        F.col("user_city").cast("int").alias("user_city"),
        _index_of("user_type", contracts.USER_TYPES).alias("user_type"),
        _index_of("user_device", contracts.DEVICES).alias("device"),
        F.col("item_city").cast("int").alias("item_city"),
        F.col("item_category").cast("int").alias("category_id"),
        F.least(F.floor(F.log2(F.col("price") + 1) / 2), F.lit(contracts.PRICE_BUCKETS - 1)).cast("int").alias("price_bucket"),
        F.least(F.col("position"), F.lit(contracts.MAX_POSITION - 1)).cast("int").alias("position"),
        "hour",
        (F.col("user_city") == F.col("item_city")).cast("int").alias("city_match"),
        "user_clicks_prior",
        "user_exposures_prior",
        "user_cat_clicks_prior",
        "item_ctr_prior",
    ).fillna(0.0, subset=["user_clicks_prior", "user_exposures_prior", "user_cat_clicks_prior"])


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Build ``training/ranking_samples/ds`` from staged events of [D-k, D] and the day's snapshots."""
    days = lake.window(ds, cfg.etl.lookback_days + cfg.etl.feature_window_days, include_ds=True)
    events = read_days(spark, cfg.lake_root, contracts.STAGED_EVENTS, days)
    users = read_json_partition(spark, cfg.lake_root, contracts.RAW_USERS, ds)
    items = read_json_partition(spark, cfg.lake_root, contracts.RAW_ITEMS, ds)
    out = transform_ranking_samples(
        events,
        users,
        items,
        ds,
        lookback_days=cfg.etl.lookback_days,
        feature_window_days=cfg.etl.feature_window_days,
        smooth_clicks=cfg.etl.ctr_smoothing_clicks,
        smooth_exposures=cfg.etl.ctr_smoothing_exposures,
    )
    return write_partition(out, cfg.lake_root, contracts.RANKING_SAMPLES, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
