"""Item2Vec training sets for day D: skip-gram pairs with city/category-aware negatives, CBOW contexts,
and item popularity with the negative sampler's probabilities.

Pairs and contexts come from click sequences of sessions in the train days [D-k, D-1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recpipe import contracts, lake
from recpipe.config import Config
from spark_jobs.common import job_main, read_days, read_snapshot, union_all, write_partition

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
    return items.groupBy("item_id").agg(F.count(F.lit(1)).alias("clicks"))


def popularity_table(item_clicks: dict[int, int], all_items: Sequence[int], size: int = NEG_TABLE_SIZE) -> list[tuple[int, int]]:
    """(bucket, item) rows: a uniform bucket draws an item with probability ~ (clicks + 1) ** 0.75."""
    items = np.array(sorted(all_items), dtype=np.int64)
    weights = np.array([(item_clicks.get(int(i), 0) + 1) ** 0.75 for i in items])
    cdf = np.cumsum(weights) / weights.sum()
    picks = np.searchsorted(cdf, (np.arange(size) + 0.5) / size, side="right").clip(max=len(items) - 1)
    return [(b, int(items[p])) for b, p in enumerate(picks)]


def transform_sampling_probs(pop_table: DataFrame) -> DataFrame:
    """(item_id, neg_prob): the exact probability that one draw from the bucket table gives the item."""
    per_item = pop_table.groupBy("item_id").agg(F.count(F.lit(1)).alias("_buckets"))
    total = pop_table.agg(F.count(F.lit(1)).alias("_total"))
    share = F.col("_buckets") / F.col("_total")
    return per_item.crossJoin(total).select("item_id", share.cast("double").alias("neg_prob"))


def transform_item_samplers(items: DataFrame) -> DataFrame:
    """Per item: its position in its city (``city_idx``) and in its city ordered by category (``cc_idx``).

    Also the city's size, and the offset and size of the item's category block inside the city, so a
    uniform draw among "same city" or "same city, other category" items is one hash and one join.
    """
    by_city = Window.partitionBy("city_id").orderBy("item_id")
    by_city_cat = Window.partitionBy("city_id").orderBy("category_id", "item_id")
    block = Window.partitionBy("city_id", "category_id")
    ranked = items.select(
        "item_id",
        "city_id",
        "category_id",
        (F.row_number().over(by_city) - 1).alias("city_idx"),
        (F.row_number().over(by_city_cat) - 1).alias("cc_idx"),
        F.count(F.lit(1)).over(Window.partitionBy("city_id")).alias("city_n"),
    )
    return ranked.select("*", F.min("cc_idx").over(block).alias("cat_start"), F.count(F.lit(1)).over(block).alias("cat_n"))


def _draw(key_cols: Sequence[str], k: int, seed: int, n: Column) -> Column:
    """A deterministic uniform integer in [0, n) from the row's identity, the draw number and the seed."""
    return F.pmod(F.xxhash64(*key_cols, F.lit(k), F.lit(seed)), n).cast("int")


def transform_negatives(
    positives: DataFrame,
    items: DataFrame,
    pop_table: DataFrame,
    *,
    n_city: int,
    n_global: int,
    n_hard: int,
    seed: int,
    table_size: int,
) -> DataFrame:
    """Negatives for each positive pair, with the probability their sampler gave them (for logQ).

    ``n_city`` uniform in the target's city, ``n_hard`` uniform in the target's city among items of
    another category, ``n_global`` by popularity^0.75 from ``pop_table`` (buckets 0..``table_size``-1). A negative is never the
    target, the context, nor any item clicked in the same session. Draws hash the pair's identity with
    the seed, so they do not depend on how Spark partitions the data.
    """
    key = ["session_id", "target_pos", "context_pos"]
    samplers = transform_item_samplers(items)
    target = samplers.select(
        F.col("item_id").alias("target"), "city_id", "city_n", F.col("category_id").alias("t_cat"), "cat_start", "cat_n"
    )
    with_target = positives.join(target, on="target", how="inner")
    cols = ["click_items", "target", "context", "negative", "kind", "prob"]
    negatives = []
    for k in range(n_city):
        drawn = with_target.withColumn("city_idx", _draw(key, k, seed, F.col("city_n")))
        pool = samplers.select("city_id", "city_idx", F.col("item_id").alias("negative"))
        neg = drawn.join(pool, on=["city_id", "city_idx"], how="inner")
        negatives.append(neg.select(*cols[:4], F.lit("city").alias("kind"), (1.0 / F.col("city_n")).alias("prob")))
    others = F.col("city_n") - F.col("cat_n")
    for k in range(n_hard):
        r = _draw(key, n_city + k, seed, others)
        skip_own_category = F.when(r >= F.col("cat_start"), r + F.col("cat_n")).otherwise(r)
        drawn = with_target.where(others > 0).withColumn("cc_idx", skip_own_category)
        pool = samplers.select("city_id", "cc_idx", F.col("item_id").alias("negative"))
        neg = drawn.join(pool, on=["city_id", "cc_idx"], how="inner")
        negatives.append(neg.select(*cols[:4], F.lit("hard").alias("kind"), (1.0 / others).alias("prob")))
    probs = transform_sampling_probs(pop_table).withColumnRenamed("item_id", "negative")
    for k in range(n_global):
        drawn = positives.withColumn("bucket", _draw(key, n_city + n_hard + k, seed, F.lit(table_size)))
        neg = drawn.join(pop_table.withColumnRenamed("item_id", "negative"), on="bucket", how="inner")
        neg = neg.join(probs, on="negative", how="inner")
        negatives.append(neg.select(*cols[:4], F.lit("global").alias("kind"), F.col("neg_prob").alias("prob")))
    allneg = union_all(negatives)
    keep = (
        (F.col("negative") != F.col("target"))
        & (F.col("negative") != F.col("context"))
        & ~F.array_contains("click_items", F.col("negative"))
    )
    return allneg.where(keep).select(
        "target",
        F.col("negative").alias("context"),
        F.lit(0.0).cast("float").alias("label"),
        "kind",
        F.col("prob").cast("float").alias("prob"),
    )


def transform_pairs(positives: DataFrame, negatives: DataFrame, probs: DataFrame) -> DataFrame:
    """The training pairs: positives (with the global sampler's probability of their context) and negatives."""
    labelled = positives.join(probs.withColumnRenamed("item_id", "context"), on="context", how="left").select(
        "target",
        "context",
        F.lit(1.0).cast("float").alias("label"),
        F.lit("positive").alias("kind"),
        F.col("neg_prob").cast("float").alias("prob"),
    )
    return labelled.unionByName(negatives).select(*contracts.ITEM2VEC_PAIRS.columns)


def transform_cbow(sessions: DataFrame, window: int) -> DataFrame:
    """CBOW examples: each clicked item of a session with the other clicks at most ``window`` positions away."""
    exploded = sessions.select("session_id", "click_items", F.posexplode("click_items").alias("pos", "target"))
    context = F.filter(
        "click_items", lambda x, i: (F.abs(i - F.col("pos")) <= window) & (i != F.col("pos")) & (x != F.col("target"))
    )
    out = exploded.select("session_id", "target", context.alias("context"))
    return out.where(F.size("context") > 0).select(*contracts.ITEM2VEC_CBOW.columns)


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Build ``training/{item2vec_pairs,item2vec_cbow,item_popularity}/ds`` from the sessions window."""
    e = cfg.etl
    sessions = read_days(spark, cfg.lake_root, contracts.SESSIONS, lake.window(ds, e.lookback_days, include_ds=True))
    train = sessions.where(F.col("ds") != ds)
    items = read_snapshot(spark, cfg.lake_root, contracts.RAW_ITEMS, ds, cfg.etl.max_snapshot_age_days).select(
        "item_id", "city_id", "category_id"
    )
    item_clicks = transform_item_popularity(train).cache()
    clicks = {r.item_id: r.clicks for r in item_clicks.collect()}
    all_items = [r.item_id for r in items.select("item_id").collect()]
    pop = spark.createDataFrame(popularity_table(clicks, all_items), "bucket int, item_id bigint").cache()
    probs = transform_sampling_probs(pop).cache()
    popularity = probs.join(item_clicks, on="item_id", how="left").fillna(0, subset=["clicks"])
    write_partition(popularity, cfg.lake_root, contracts.ITEM_POPULARITY, ds)
    positives = transform_positive_pairs(train, e.skipgram_window).cache()
    negatives = transform_negatives(
        positives,
        items,
        pop,
        n_city=e.negatives_city,
        n_global=e.negatives_global,
        n_hard=e.negatives_hard,
        seed=e.seed,
        table_size=NEG_TABLE_SIZE,
    )
    write_partition(transform_pairs(positives, negatives, probs), cfg.lake_root, contracts.ITEM2VEC_PAIRS, ds)
    return write_partition(transform_cbow(train, e.cbow_window), cfg.lake_root, contracts.ITEM2VEC_CBOW, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
