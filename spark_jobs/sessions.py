"""Sessions: each user's staged events of one day, ordered, split on an idle gap and a maximum length."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recpipe import contracts
from recpipe.config import Config
from spark_jobs.common import job_main, read_partition, write_partition


def transform_sessions(events: DataFrame, gap_ms: int, max_ms: int) -> DataFrame:
    """One row per session with its ordered clicked items and their timestamps.

    A new session starts at a user's first event, after more than ``gap_ms`` of inactivity, or when
    the session would exceed ``max_ms``. Session ids hash the user and the start time, so they are
    stable across reruns.
    """
    by_user = Window.partitionBy("user_id").orderBy("ts", "event_id")
    marked = events.withColumn("_prev", F.lag("ts").over(by_user)).withColumn(
        "_new", (F.col("_prev").isNull() | (F.col("ts") - F.col("_prev") > gap_ms)).cast("int")
    )
    gap_sessions = marked.withColumn("_gap_no", F.sum("_new").over(by_user))
    by_gap = Window.partitionBy("user_id", "_gap_no")
    capped = gap_sessions.withColumn("_slot", F.floor((F.col("ts") - F.min("ts").over(by_gap)) / max_ms))
    clicks = F.filter(
        F.sort_array(F.collect_list(F.struct("ts", "event_id", "event", "item_id"))),
        lambda e: e["event"] == "click",
    )
    sessions = capped.groupBy("user_id", "_gap_no", "_slot").agg(
        F.min("ts").alias("start_ts"),
        F.max("ts").alias("end_ts"),
        F.count(F.lit(1)).alias("n_events"),
        F.transform(clicks, lambda e: e["item_id"]).alias("click_items"),
        F.transform(clicks, lambda e: e["ts"]).alias("click_ts"),
    )
    session_id = F.substring(F.sha2(F.concat_ws(":", "user_id", "start_ts"), 256), 1, 16)
    return sessions.withColumn("session_id", session_id).select(*contracts.SESSIONS.columns)


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Read ``staged/events/ds``, sessionize, overwrite ``sessions/ds``."""
    events = read_partition(spark, cfg.lake_root, contracts.STAGED_EVENTS, ds)
    out = transform_sessions(events, cfg.etl.session_gap_minutes * 60_000, cfg.etl.max_session_minutes * 60_000)
    return write_partition(out, cfg.lake_root, contracts.SESSIONS, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
