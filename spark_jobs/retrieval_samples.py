"""Retrieval training set for day D (two-tower, YouTube DNN): positive actions of [D-k, D] with left-wise history.

For each positive action (click, collect, apply, call, IM) at time t: the user's clicked items strictly
before t and before the start of the action's request (from the sessions of [D-k-h, D], newest last,
capped in length), the action's weight from the
configured cost matrix, the user's profile, the request context (hour, weekday, city), the item's city and
category, and hard negatives drawn uniformly from the item's city among items of other categories, with
their sampling probability for logQ correction. Actions of D form the eval split, those before it train.
The recall eval set (users who clicked on D, with their history before D, profile and request context)
is written beside it, so every recall model is evaluated on the same users.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

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
    union_all,
    write_partition,
)
from spark_jobs.item2vec_samples import transform_item_samplers

DAY_MS = 86_400_000


def _last(items: F.Column, n: int) -> F.Column:
    """The last ``n`` elements of an array column (all of them when it is shorter)."""
    return F.slice(items, F.greatest(F.size(items) - n + 1, F.lit(1)), n)


def transform_user_clicks(sessions: DataFrame) -> DataFrame:
    """(user_id, clicks): every click of the user in the sessions, as (ts, item) structs in time order."""
    zipped = sessions.select("user_id", F.explode(F.arrays_zip("click_ts", "click_items")).alias("c"))
    click = F.struct(F.col("c.click_ts").alias("ts"), F.col("c.click_items").alias("item"))
    per_click = zipped.select("user_id", click.alias("c"))
    return per_click.groupBy("user_id").agg(F.sort_array(F.collect_list("c")).alias("clicks"))


def transform_hard_negatives(positives: DataFrame, items: DataFrame, *, n: int, seed: int) -> DataFrame:
    """(event_id, hard_negatives, hard_negative_prob): ``n`` uniform draws from the item's city, other categories."""
    samplers = transform_item_samplers(items)
    target = samplers.select("item_id", "city_id", "city_n", "cat_start", "cat_n")
    others = F.col("city_n") - F.col("cat_n")
    draws = positives.select("event_id", "item_id").join(target, on="item_id", how="inner").where(others > 0)
    draws = draws.withColumn("k", F.explode(F.sequence(F.lit(0), F.lit(n - 1))))
    r = F.pmod(F.xxhash64("event_id", "k", F.lit(seed)), others).cast("int")
    draws = draws.withColumn("cc_idx", F.when(r >= F.col("cat_start"), r + F.col("cat_n")).otherwise(r))
    pool = samplers.select("city_id", "cc_idx", F.col("item_id").alias("negative"))
    drawn = draws.join(pool, on=["city_id", "cc_idx"], how="inner")
    return drawn.groupBy("event_id").agg(
        F.transform(F.sort_array(F.collect_list(F.struct("k", "negative"))), lambda s: s["negative"]).alias("hard_negatives"),
        F.first(1.0 / others).cast("float").alias("hard_negative_prob"),
    )


def transform_retrieval_samples(
    events: DataFrame,
    sessions: DataFrame,
    users: DataFrame,
    items: DataFrame,
    eval_ds: str,
    *,
    weights: Mapping[str, float],
    max_history: int,
    n_hard: int,
    seed: int,
) -> DataFrame:
    """Positive actions of ``events`` (staged, with ``ds``) with history from ``sessions`` strictly before each one."""
    unknown = sorted(set(weights) - set(contracts.POSITIVE_ACTIONS))
    if unknown:
        raise ValueError(f"weights name actions that are not positive actions: {unknown}; expected {contracts.POSITIVE_ACTIONS}")
    weight_of = F.create_map(*[F.lit(x) for kv in weights.items() for x in kv])
    positives = events.where(F.col("event").isin(list(weights))).withColumn("weight", weight_of[F.col("event")].cast("float"))
    # History ends where the action's request began: a follow-up (apply after click) must not see the
    # click on its own item, which the recommender could not have known when it served the request.
    request_start = events.groupBy("request_id").agg(F.min("ts").alias("_request_ts"))
    positives = positives.join(request_start, on="request_id", how="left")
    cutoff = F.least(F.col("ts"), F.coalesce(F.col("_request_ts"), F.col("ts")))
    with_clicks = positives.withColumn("_cutoff", cutoff).join(transform_user_clicks(sessions), on="user_id", how="left")
    before = F.filter(F.coalesce("clicks", F.array()), lambda c: c["ts"] < F.col("_cutoff"))
    items_before = F.transform(before, lambda c: c["item"])
    history = _last(items_before, max_history)
    samples = join_users(join_items(with_clicks.withColumn("history", history.cast("array<bigint>")), items), users)
    if n_hard > 0:
        samples = samples.join(transform_hard_negatives(positives, items, n=n_hard, seed=seed), on="event_id", how="left")
    else:
        samples = samples.withColumn("hard_negatives", F.lit(None)).withColumn("hard_negative_prob", F.lit(None))
    clean_negatives = F.filter(
        F.coalesce("hard_negatives", F.array().cast("array<bigint>")),
        lambda x: (x != F.col("item_id")) & ~F.array_contains("history", x),
    )
    return samples.select(
        F.when(F.col("ds") == eval_ds, "eval").otherwise("train").alias("split"),
        "event_id",
        "ts",
        "user_id",
        "item_id",
        "event",
        "weight",
        "history",
        F.col("user_city").cast("int").alias("user_city"),
        index_of("user_type", contracts.USER_TYPES).alias("user_type"),
        index_of("user_device", contracts.DEVICES).alias("device"),
        F.col("hour").cast("int").alias("hour"),
        # Monday = 0, in UTC like ``hour`` (1970-01-01 was a Thursday).
        F.expr(f"CAST(((ts DIV {DAY_MS}) + 3) % 7 AS INT)").alias("weekday"),
        F.col("city_id").cast("int").alias("city_id"),
        F.col("item_city").cast("int").alias("item_city"),
        F.col("item_category").cast("int").alias("category_id"),
        clean_negatives.alias("hard_negatives"),
        F.coalesce("hard_negative_prob", F.lit(0.0)).cast("float").alias("hard_negative_prob"),
    )


def transform_recall_eval(
    eval_events: DataFrame, user_clicks: DataFrame, users: DataFrame, eval_start_ms: int, max_history: int
) -> DataFrame:
    """The recall eval set: users who clicked on the eval day and clicked before it.

    Per user: the last ``max_history`` clicks before the day (``user_clicks`` from
    ``transform_user_clicks``), the day's clicked items, the day's deeper actions (collect, apply, call,
    IM) as parallel ``action_items`` / ``action_events`` arrays (one entry per distinct (event, item),
    ordered by event then item; empty when none), the profile, and the context (hour, weekday, city) of
    the day's first click, which is what a recall request would carry.
    """
    # Targets and history split at the same instant: staging keeps late events of the day before in D.
    today = eval_events.where(F.col("ts") >= eval_start_ms)
    clicks = today.where(F.col("event") == "click")
    first = clicks.groupBy("user_id").agg(F.min(F.struct("ts", "event_id", "hour", "city_id")).alias("f"))
    targets = clicks.groupBy("user_id").agg(F.sort_array(F.collect_set("item_id")).alias("targets"))
    deeper = [e for e in contracts.POSITIVE_ACTIONS if e != "click"]
    actions = today.where(F.col("event").isin(*deeper)).groupBy("user_id")
    actions = actions.agg(F.sort_array(F.collect_set(F.struct("event", "item_id"))).alias("a"))
    before = F.transform(F.filter("clicks", lambda c: c["ts"] < eval_start_ms), lambda c: c["item"])
    hist = user_clicks.select("user_id", _last(before, max_history).alias("history"))
    out = targets.join(hist.where(F.size("history") > 0), on="user_id", how="inner").join(first, on="user_id", how="inner")
    out = join_users(out.join(actions, on="user_id", how="left"), users)
    none = F.array().cast("array<struct<event:string,item_id:bigint>>")
    deep = F.coalesce(F.col("a"), none)
    return out.select(
        "user_id",
        F.col("history").cast("array<bigint>").alias("history"),
        "targets",
        F.transform(deep, lambda a: a["item_id"]).cast("array<bigint>").alias("action_items"),
        F.transform(deep, lambda a: a["event"]).alias("action_events"),
        F.col("user_city").cast("int").alias("user_city"),
        index_of("user_type", contracts.USER_TYPES).alias("user_type"),
        index_of("user_device", contracts.DEVICES).alias("device"),
        F.col("f.hour").cast("int").alias("hour"),
        F.expr(f"CAST(((f.ts DIV {DAY_MS}) + 3) % 7 AS INT)").alias("weekday"),
        F.col("f.city_id").cast("int").alias("city_id"),
    )


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Build ``training/{retrieval_samples,recall_eval}/ds`` from staged events of [D-k, D] and sessions of [D-k-h, D]."""
    e = cfg.etl
    root = cfg.lake_root
    events = read_days(spark, root, contracts.STAGED_EVENTS, lake.window(ds, e.lookback_days, include_ds=True))
    # Sessions of the example days are required; older history days count when present.
    recent = read_days(spark, root, contracts.SESSIONS, lake.window(ds, e.lookback_days, include_ds=True))
    older_days = lake.window(lake.shift_ds(ds, -e.lookback_days), e.history_days, include_ds=False)
    older, _missing = read_available_days(spark, root, contracts.SESSIONS, older_days)
    sessions = union_all([older, recent])
    users = read_snapshot(spark, root, contracts.RAW_USERS, ds, e.max_snapshot_age_days).cache()
    day_start, _ = lake.day_bounds_ms(ds)
    recall_eval = transform_recall_eval(
        events.where(F.col("ds") == ds), transform_user_clicks(sessions), users, day_start, e.history_max_len
    )
    write_partition(recall_eval, root, contracts.RECALL_EVAL, ds)
    out = transform_retrieval_samples(
        events,
        sessions,
        users,
        read_snapshot(spark, root, contracts.RAW_ITEMS, ds, e.max_snapshot_age_days),
        ds,
        weights=dataclasses.asdict(e.action_weights),
        max_history=e.history_max_len,
        n_hard=e.retrieval_hard_negatives,
        seed=e.seed,
    )
    return write_partition(out, root, contracts.RETRIEVAL_SAMPLES, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
