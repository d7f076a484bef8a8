from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from recpipe import contracts, lake
from spark_jobs.sessions import transform_sessions
from spark_jobs.stage_events import transform_stage_events

DAY_START, DAY_END = lake.day_bounds_ms("2026-11-04")
MIN = 60_000


def _raw(spark, rows):
    full = []
    for r in rows:
        base = {
            "event_id": None,
            "ts": None,
            "user_id": 1,
            "item_id": 10,
            "event": "click",
            "city_id": 0,
            "category_id": 0,
            "page": "home",
            "position": 0,
            "device": "ios",
            "request_id": "r1",
        }
        full.append({**base, **r})
    return spark.createDataFrame(full, contracts.RAW_EVENTS.spark_ddl())


def test_stage_keeps_valid_in_day_rows_once(spark):
    raw = _raw(
        spark,
        [
            {"event_id": "a", "ts": DAY_START + 3_600_000},  # kept, hour 1
            {"event_id": "a", "ts": DAY_START + 3_600_000},  # duplicate id: dropped
            {"event_id": "b", "ts": DAY_START - 1},  # previous day: dropped
            {"event_id": "c", "ts": DAY_END},  # next day: dropped
            {"event_id": "d", "ts": DAY_START + 5, "event": "buy"},  # unknown event type: dropped
            {"event_id": "e", "ts": DAY_START + 5, "user_id": None},  # missing field: dropped
            {"event_id": "f", "ts": DAY_END - 1},  # last millisecond: kept, hour 23
        ],
    )
    out = transform_stage_events(raw, DAY_START, DAY_END)
    assert out.columns == contracts.STAGED_EVENTS.columns
    assert sorted((r.event_id, r.hour) for r in out.collect()) == [("a", 1), ("f", 23)]


def _staged(spark, rows):
    return transform_stage_events(_raw(spark, rows), DAY_START, DAY_END)


def test_sessions_split_on_idle_gap_and_keep_click_order(spark):
    t = DAY_START + 3_600_000
    events = _staged(
        spark,
        [
            {"event_id": "1", "ts": t, "item_id": 5, "event": "expose"},
            {"event_id": "2", "ts": t + 1 * MIN, "item_id": 5},
            {"event_id": "3", "ts": t + 2 * MIN, "item_id": 7},
            {"event_id": "4", "ts": t + 40 * MIN, "item_id": 9},  # 38 min idle: new session
            {"event_id": "5", "ts": t, "user_id": 2, "item_id": 3},
        ],
    )
    out = transform_sessions(events, gap_ms=30 * MIN, max_ms=24 * 60 * MIN).drop("session_id")
    expected = [
        Row(user_id=1, start_ts=t, end_ts=t + 2 * MIN, n_events=3, click_items=[5, 7]),
        Row(user_id=1, start_ts=t + 40 * MIN, end_ts=t + 40 * MIN, n_events=1, click_items=[9]),
        Row(user_id=2, start_ts=t, end_ts=t, n_events=1, click_items=[3]),
    ]
    assertDataFrameEqual(out, spark.createDataFrame(expected, out.schema))


def test_sessions_cap_length_and_ids_are_stable(spark):
    t = DAY_START
    rows = [{"event_id": str(i), "ts": t + i * 20 * MIN, "item_id": i} for i in range(7)]  # never idle 30 min
    events = _staged(spark, rows)
    first = transform_sessions(events, gap_ms=30 * MIN, max_ms=60 * MIN)
    got = sorted((r.start_ts, r.click_items) for r in first.collect())
    assert got == [(t, [0, 1, 2]), (t + 60 * MIN, [3, 4, 5]), (t + 120 * MIN, [6])]
    again = transform_sessions(events, gap_ms=30 * MIN, max_ms=60 * MIN)
    assert sorted(r.session_id for r in first.collect()) == sorted(r.session_id for r in again.collect())
    assert len({r.session_id for r in first.collect()}) == 3
