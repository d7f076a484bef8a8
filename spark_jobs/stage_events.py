"""Stage one day of raw events: every bad row goes to quarantine with its reason, never silently dropped.

Raw lines (JSON, gzip allowed, extra fields tolerated) are classified in order: ``malformed_json``,
``missing_field``, ``bad_type``, ``unknown_event``, ``outside_day`` (before the day, beyond the allowed
lateness), ``future_timestamp`` (after the day, beyond the lateness). Valid rows are then deduplicated by
``event_id`` (extra copies: ``duplicate_event_id``) and crawler-like users are removed (``crawler``: more
than the configured events in one minute). Quarantined lines keep their raw text.

The job fails, writing nothing staged, when the partition is missing, incomplete or empty, when a column's
type drifted (most of its values no longer parse as the contract's type), or when the share of invalid
rows exceeds the configured maximum; the quarantine and its counts are written first so they can be read.
"""

from __future__ import annotations

import json

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recpipe import contracts, lake
from recpipe.config import Config, EtlConfig
from spark_jobs.common import job_main, write_partition

INVALID_REASONS = ("malformed_json", "missing_field", "bad_type", "unknown_event", "outside_day", "future_timestamp")
REMOVED_REASONS = ("duplicate_event_id", "crawler")
REASONS = INVALID_REASONS + REMOVED_REASONS


class StagingFailed(RuntimeError):
    """The raw partition cannot be staged: empty, drifted schema, or too many invalid rows."""


def transform_classify(lines: DataFrame, day_start_ms: int, day_end_ms: int, lateness_ms: int) -> DataFrame:
    """Parse raw lines (column ``value``) and give each a ``reason`` (null when valid) and a ``detail``."""
    cols = contracts.RAW_EVENTS.columns
    parsed = lines.select(
        "value",
        F.from_json("value", "map<string,string>").alias("_m"),
        F.from_json("value", contracts.RAW_EVENTS.spark_ddl()).alias("_t"),
    )
    missing = F.filter(F.array(*[F.lit(c) for c in cols]), lambda c: F.col("_m")[c].isNull())
    mistyped = F.filter(
        F.array(*[F.when(F.col("_m")[c].isNotNull() & F.col(f"_t.{c}").isNull(), F.lit(c)) for c in cols]),
        lambda c: c.isNotNull(),
    )
    ts = F.col("_t.ts")
    rules: list[tuple[str, Column, Column]] = [
        ("malformed_json", F.col("_m").isNull(), F.lit("not a JSON object")),
        ("missing_field", F.size(missing) > 0, F.array_join(missing, ",")),
        ("bad_type", F.size(mistyped) > 0, F.array_join(mistyped, ",")),
        ("unknown_event", ~F.col("_t.event").isin(*contracts.EVENT_TYPES), F.col("_t.event")),
        ("outside_day", ts < day_start_ms - lateness_ms, ts.cast("string")),
        ("future_timestamp", ts >= day_end_ms + lateness_ms, ts.cast("string")),
    ]
    reason, detail = F.lit(None).cast("string"), F.lit(None).cast("string")
    for name, cond, text in reversed(rules):  # the first matching rule wins
        reason = F.when(cond, F.lit(name)).otherwise(reason)
        detail = F.when(cond, text).otherwise(detail)
    return parsed.select("value", *[F.col(f"_t.{c}").alias(c) for c in cols], reason.alias("reason"), detail.alias("detail"))


def schema_drift(classified: DataFrame, min_share: float = 0.5) -> list[str]:
    """Columns whose present values mostly fail to parse as the contract's type, described for an error."""
    cols = contracts.RAW_EVENTS.columns
    parsed_json = classified.where(F.col("reason").isNull() | (F.col("reason") != "malformed_json"))
    aggs = []
    for c in cols:
        present = F.get_json_object("value", f"$.{c}").isNotNull()
        mistyped = present & F.col(c).isNull()
        aggs += [F.sum(present.cast("int")).alias(f"{c}__n"), F.sum(mistyped.cast("int")).alias(f"{c}__bad")]
    row = parsed_json.agg(*aggs).first()
    out = []
    for c in cols:
        n, bad = row[f"{c}__n"] or 0, row[f"{c}__bad"] or 0
        if n and bad / n > min_share:
            out.append(f"{c}: {bad} of {n} values are not {contracts.RAW_EVENTS.column(c).type}")
    return out


def transform_stage_events(classified: DataFrame, max_events_per_minute: int) -> tuple[DataFrame, DataFrame]:
    """(staged events, quarantine) from classified lines: invalid rows, duplicate copies and crawlers go aside."""
    valid = classified.where(F.col("reason").isNull())
    first = Window.partitionBy("event_id").orderBy("ts", "value")
    numbered = valid.withColumn("_n", F.row_number().over(first))
    unique = numbered.where(F.col("_n") == 1).drop("_n")
    duplicates = numbered.where(F.col("_n") > 1).select(
        "value", F.lit("duplicate_event_id").alias("reason"), F.col("event_id").alias("detail")
    )
    per_minute = unique.groupBy("user_id", F.floor(F.col("ts") / 60_000).alias("_minute")).agg(F.count(F.lit(1)).alias("_n"))
    crawlers = per_minute.groupBy("user_id").agg(F.max("_n").alias("_peak")).where(F.col("_peak") > max_events_per_minute)
    flagged = unique.join(F.broadcast(crawlers), on="user_id", how="left")
    crawled = flagged.where(F.col("_peak").isNotNull()).select(
        "value",
        F.lit("crawler").alias("reason"),
        F.concat(F.lit("peak events/min: "), F.col("_peak").cast("string")).alias("detail"),
    )
    kept = flagged.where(F.col("_peak").isNull())
    hour = F.expr("CAST(((ts DIV 1000) % 86400) DIV 3600 AS INT)")
    staged = kept.withColumn("hour", hour).select(*contracts.STAGED_EVENTS.columns)
    invalid = classified.where(F.col("reason").isNotNull()).select("value", "reason", "detail")
    return staged, invalid.unionByName(duplicates).unionByName(crawled)


def quarantine_gate(counts: dict[str, int], total: int, max_invalid_fraction: float) -> str | None:
    """A failure message when invalid rows exceed the allowed share of the partition, else None."""
    invalid = sum(counts.get(r, 0) for r in INVALID_REASONS)
    if total and invalid / total > max_invalid_fraction:
        detail = ", ".join(f"{r}={counts[r]}" for r in INVALID_REASONS if counts.get(r))
        share = f"{invalid} of {total} rows ({invalid / total:.2%})"
        return f"{share} are invalid, above the allowed {max_invalid_fraction:.2%}: {detail}"
    return None


def run(spark: SparkSession, cfg: Config, ds: str) -> str:
    """Read ``raw/events/ds``, quarantine bad rows, gate their share, overwrite ``staged/events/ds``."""
    etl: EtlConfig = cfg.etl
    uri = lake.partition_uri(cfg.lake_root, contracts.RAW_EVENTS, ds)
    lake.require_partitions(cfg.lake_root, contracts.RAW_EVENTS, [ds])
    lines = spark.read.text(uri)
    total = lines.count()
    if total == 0:
        raise StagingFailed(f"{uri}: the partition is empty (its _SUCCESS marker is there, but no event lines)")
    start, end = lake.day_bounds_ms(ds)
    classified = transform_classify(lines, start, end, etl.lateness_minutes * 60_000).cache()
    drift = schema_drift(classified)
    if drift:
        raise StagingFailed(f"{uri}: schema drift against the raw events contract: {'; '.join(drift)}")
    staged, quarantine = transform_stage_events(classified, etl.max_events_per_minute)
    write_partition(quarantine, cfg.lake_root, contracts.QUARANTINE_EVENTS, ds)
    written = spark.read.parquet(lake.partition_uri(cfg.lake_root, contracts.QUARANTINE_EVENTS, ds))
    counts = {r.reason: r["count"] for r in written.groupBy("reason").count().collect()}
    report = {"ds": ds, "raw_rows": total, "counts": {r: counts.get(r, 0) for r in REASONS}}
    lake.write_text(lake.partition_uri(cfg.lake_root, "reports/quarantine", ds), "counts.json", json.dumps(report, indent=2))
    failure = quarantine_gate(counts, total, etl.max_invalid_fraction)
    if failure:
        where = lake.partition_uri(cfg.lake_root, contracts.QUARANTINE_EVENTS, ds)
        raise StagingFailed(f"{uri}: {failure}; the rows and their reasons are in {where}")
    return write_partition(staged, cfg.lake_root, contracts.STAGED_EVENTS, ds)


def main(argv: list[str] | None = None) -> None:
    job_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
