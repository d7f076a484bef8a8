"""Item2Vec training set for day D: skip-gram pairs with city/category-aware negatives, and the recall eval set.

Pairs come from click sequences of sessions in the train days [D-k, D-1]; the eval set holds, for every
user who clicked on D and has train history, the history (last N clicks before D) and D's clicked items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recpipe import contracts, lake
from recpipe.config import Config
from spark_jobs.common import job_main, read_days, read_json_partition, union_all, write_partition

NEG_TABLE_SIZE = 100_000


def transform_positive_pairs(sessions: DataFrame, window: int) -> DataFrame:
    """(session_id, click_items, positions, target, context) for clicks at most ``window`` apart in a session."""
    exploded = sessions.select("session_id", "click_items", F.posexplode("click_items").alias("pos", "item"))
    left, right = exploded.alias("l"), exploded.alias("r")
    cond = (
        (F.col("l.session_id") == F.col("r.session_id"))
        & (F.abs(F.col("l.pos") - F.col("r.pos")) <= window)
        & (F.col("l.pos") != F.col("r.pos"))
        & (F.col("l.item") != F.col("r.item"))
    )
    return left.join(right, cond, how="inner").select(
        F.col("l.session_id").alias("session_id"),
        F.col("l.click_items").alias("click_items"),
        F.col("l.pos").alias("target_pos"),
        F.col("r.pos").alias("context_pos"),
        F.col("l.item").alias("target"),
        F.col("r.item").alias("context"),
    )


def transform_item_popularity(train_sessions: DataFrame) -> DataFrame:
    """Clicks per item over the train sessions (the popularity baseline and the negatives' weights)."""
    items = train_sessions.select(F.explode("click_items").alias("item_id"))
    return items.groupBy("item_id").agg(F.count(F.lit(1)).alias("clicks")).select(*contracts.ITEM_POPULARITY.columns)


def popularity_table(item_clicks: dict[int, int], all_items: Sequence[int], size: int = NEG_TABLE_SIZE) -> list[tuple[int, int]]:
    """(bucket, item) rows: a uniform bucket draws an item with probability ~ (clicks + 1) ** 0.75."""
    items = np.array(sorted(all_items), dtype=np.int64)
    weights = np.array([(item_clicks.get(int(i), 0) + 1) ** 0.75 for i in items])
    cdf = np.cumsum(weights) / weights.sum()
    picks = np.searchsorted(cdf, (np.arange(size) + 0.5) / size, side="right").clip(max=len(items) - 1)
    return [(b, int(items[p])) for b, p in enumerate(picks)]


def transform_negatives(
    positives: DataFrame, items: DataFrame, pop_table: DataFrame, *, n_city: int, n_global: int, seed: int
) -> DataFrame:
    """Negatives for each positive pair: ``n_city`` from the target's city, ``n_global`` by popularity^0.75.

    A negative is never the target, the context, nor any item clicked in the same session. Draws hash
    the pair's identity with the seed, so they do not depend on how Spark partitions the data.
    """

    def draw(k: int, n) -> Column:
        key = F.xxhash64("session_id", "target_pos", "context_pos", F.lit(k), F.lit(seed))
        return F.pmod(key, n).cast("int")

    by_city = Window.partitionBy("city_id").orderBy("item_id")
    city_items = items.select("item_id", "city_id", F.row_number().over(by_city).alias("city_idx"))
    city_size = city_items.groupBy("city_id").agg(F.count(F.lit(1)).alias("city_n"))
    with_city = positives.join(items.select(F.col("item_id").alias("target"), "city_id"), on="target", how="inner")
    with_city = with_city.join(city_size, on="city_id", how="inner")
    negatives = []
    for k in range(n_city):
        drawn = with_city.withColumn("city_idx", draw(k, F.col("city_n")) + 1)
        neg = drawn.join(city_items.withColumnRenamed("item_id", "negative"), on=["city_id", "city_idx"], how="inner")
        negatives.append(neg.select("click_items", "target", "context", "negative", F.lit("city").alias("kind")))
    table_n = pop_table.count()
    for k in range(n_global):
        drawn = positives.withColumn("bucket", draw(n_city + k, F.lit(table_n)))
        neg = drawn.join(pop_table.withColumnRenamed("item_id", "negative"), on="bucket", how="inner")
        negatives.append(neg.select("click_items", "target", "context", "negative", F.lit("global").alias("kind")))
    allneg = union_all(negatives)
    keep = (
        (F.col("negative") != F.col("target"))
        & (F.col("negative") != F.col("context"))
        & ~F.array_contains("click_items", F.col("negative"))
    )
    return allneg.where(keep).select(
        "target", F.col("negative").alias("context"), F.lit(0.0).cast("float").alias("label"), "kind"
    )


def transform_recall_eval(train_sessions: DataFrame, eval_sessions: DataFrame, max_history: int) -> DataFrame:
    """Users who clicked on the eval day and have history: last ``max_history`` train clicks and the eval clicks."""
    hist = (
        train_sessions.where(F.size("click_items") > 0)
        .groupBy("user_id")
        .agg(
            F.flatten(
                F.transform(F.sort_array(F.collect_list(F.struct("start_ts", "click_items"))), lambda s: s["click_items"])
            ).alias("h")
        )
    )
    hist = hist.select("user_id", F.slice("h", F.greatest(F.size("h") - max_history + 1, F.lit(1)), max_history).alias("history"))
    targets = (
        eval_sessions.select("user_id", F.explode("click_items").alias("item"))
        .groupBy("user_id")
        .agg(F.sort_array(F.collect_set("item")).alias("targets"))
    )
    return hist.join(targets, on="user_id", how="inner").select(*contracts.RECALL_EVAL.columns)


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Build ``training/{item2vec_pairs,item_popularity,recall_eval}/ds`` from the sessions window."""
    sessions = read_days(spark, cfg.lake_root, contracts.SESSIONS, lake.window(ds, cfg.etl.lookback_days, include_ds=True))
    train = sessions.where(F.col("ds") != ds)
    items = read_json_partition(spark, cfg.lake_root, contracts.RAW_ITEMS, ds).select("item_id", "city_id")
    popularity = transform_item_popularity(train).cache()
    write_partition(popularity, cfg.lake_root, contracts.ITEM_POPULARITY, ds)
    clicks = {r.item_id: r.clicks for r in popularity.collect()}
    all_items = [r.item_id for r in items.select("item_id").collect()]
    pop = spark.createDataFrame(popularity_table(clicks, all_items), "bucket int, item_id bigint")
    positives = transform_positive_pairs(train, cfg.etl.skipgram_window).cache()
    negatives = transform_negatives(
        positives, items, pop, n_city=cfg.etl.negatives_city, n_global=cfg.etl.negatives_global, seed=cfg.etl.seed
    )
    pairs = positives.select("target", "context", F.lit(1.0).cast("float").alias("label"), F.lit("positive").alias("kind"))
    write_partition(pairs.unionByName(negatives), cfg.lake_root, contracts.ITEM2VEC_PAIRS, ds)
    recall_eval = transform_recall_eval(train, sessions.where(F.col("ds") == ds), cfg.etl.history_max_len)
    return write_partition(recall_eval, cfg.lake_root, contracts.RECALL_EVAL, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
