import gzip
import json

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from recpipe import contracts, lake
from spark_jobs.sessions import transform_sessions
from spark_jobs.stage_events import (
    StagingFailed,
    quarantine_gate,
    run,
    schema_drift,
    transform_classify,
    transform_stage_events,
)

DS = "2026-11-04"
DAY_START, DAY_END = lake.day_bounds_ms(DS)
MIN = 60_000
HOUR = 60 * MIN


def event(**overrides) -> dict:
    base = {
        "event_id": "e",
        "ts": DAY_START + HOUR,
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
    return {**base, **overrides}


def _lines(spark, rows):
    return spark.createDataFrame([(r if isinstance(r, str) else json.dumps(r),) for r in rows], "value string")


def _stage(spark, rows, lateness=HOUR, per_minute=100):
    classified = transform_classify(_lines(spark, rows), DAY_START, DAY_END, lateness)
    return transform_stage_events(classified, per_minute)


BAD_ROWS = [
    ("malformed_json", '{"event_id": "x1", "ts": '),
    ("malformed_json", "[1, 2, 3]"),
    ("missing_field", {k: v for k, v in event(event_id="x3").items() if k != "device"}),
    ("missing_field", event(event_id="x4", user_id=None)),
    ("bad_type", event(event_id="x5", ts="yesterday")),
    ("unknown_event", event(event_id="x6", event="purchase")),
    ("outside_day", event(event_id="x7", ts=DAY_START - HOUR - 1)),
    ("future_timestamp", event(event_id="x8", ts=DAY_END + HOUR)),
]


def test_each_kind_of_bad_row_is_quarantined_with_its_reason(spark):
    good = [
        event(event_id="a", ts=DAY_START + HOUR),
        event(event_id="a", ts=DAY_START + HOUR),  # duplicate copy
        event(event_id="late", ts=DAY_START - HOUR + 1),  # within the lateness: kept
        event(event_id="extra", ts=DAY_END - 1, referrer="push"),  # extra fields are tolerated
    ]
    staged, quarantine = _stage(spark, [r for _, r in BAD_ROWS] + good)
    assert staged.columns == contracts.STAGED_EVENTS.columns
    assert sorted((r.event_id, r.hour) for r in staged.collect()) == [("a", 1), ("extra", 23), ("late", 23)]
    got = sorted((r.reason, r.detail) for r in quarantine.collect())
    assert [reason for reason, _ in got] == sorted([reason for reason, _ in BAD_ROWS] + ["duplicate_event_id"])
    details = dict(got)
    assert details["bad_type"] == "ts" and details["unknown_event"] == "purchase"
    assert ("missing_field", "device") in got and ("missing_field", "user_id") in got
    assert quarantine.where("value LIKE '%x5%'").first().value == json.dumps(BAD_ROWS[4][1])  # raw text kept


def test_crawlers_are_removed_and_counted(spark):
    bot = [event(event_id=f"b{i}", user_id=2, ts=DAY_START + HOUR + i * 100) for i in range(5)]  # 5 in a minute
    human = [event(event_id=f"h{i}", user_id=3, ts=DAY_START + HOUR + i * MIN) for i in range(5)]
    staged, quarantine = _stage(spark, bot + human, per_minute=4)
    assert {r.user_id for r in staged.collect()} == {3}
    assert [(r.reason, r.detail) for r in quarantine.collect()] == [("crawler", "peak events/min: 5")] * 5


def test_schema_drift_names_the_column(spark):
    def drift(rows):
        return schema_drift(transform_classify(_lines(spark, rows), DAY_START, DAY_END, HOUR))

    # One row with a mistyped value is that row's problem (bad_type); most rows mistyped is a drifted schema.
    assert drift([event(event_id="0", user_id="u0")] + [event(event_id=str(i)) for i in range(1, 4)]) == []
    assert drift([event(event_id=str(i), user_id=f"u{i}") for i in range(3)] + [event(event_id="ok")]) == [
        "user_id: 3 of 4 values are not int64"
    ]
    assert drift([event(event_id=str(i), ts=str(DAY_START + i)) for i in range(4)]) == ["ts: 4 of 4 values are not int64"]


def test_gate_on_the_share_of_invalid_rows():
    assert quarantine_gate({"malformed_json": 1, "duplicate_event_id": 50}, 200, 0.01) is None
    message = quarantine_gate({"malformed_json": 2, "unknown_event": 1}, 200, 0.01)
    assert message == "3 of 200 rows (1.50%) are invalid, above the allowed 1.00%: malformed_json=2, unknown_event=1"


def _write_raw(root, lines, gz=False, marker=True):
    part = root / "raw/events" / f"ds={DS}"
    part.mkdir(parents=True)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + ("\n" if lines else "")
    if gz:
        with gzip.open(part / "part-0.jsonl.gz", "wt") as fh:
            fh.write(text)
    else:
        (part / "part-0.jsonl").write_text(text)
    if marker:
        (part / "_SUCCESS").touch()


def test_run_stages_gzip_and_writes_quarantine_and_counts(spark, cfg, tmp_path):
    root = tmp_path / "lake"
    good = [event(event_id=f"g{i}", ts=DAY_START + i * MIN) for i in range(300)]
    _write_raw(root, [*good, "not json"], gz=True)
    out = run(spark, cfg, DS)
    assert out.endswith(f"staged/events/ds={DS}")
    assert spark.read.parquet(out).count() == 300
    counts = json.loads((root / f"reports/quarantine/ds={DS}/counts.json").read_text())
    assert counts["raw_rows"] == 301 and counts["counts"]["malformed_json"] == 1 and counts["counts"]["crawler"] == 0


def test_run_fails_above_the_allowed_share_writing_quarantine_but_not_staged(spark, cfg, tmp_path):
    root = tmp_path / "lake"
    _write_raw(root, [event(event_id=f"g{i}") for i in range(10)] + ["oops"] * 2)
    with pytest.raises(StagingFailed, match=r"2 of 12 rows \(16.67%\) are invalid, above the allowed 1.00%: malformed_json=2"):
        run(spark, cfg, DS)
    assert lake.partition_ready(str(root), contracts.QUARANTINE_EVENTS, DS)
    assert not (root / "staged/events").exists()


def test_run_refuses_empty_incomplete_and_drifted_partitions(spark, cfg, tmp_path):
    root = tmp_path / "lake"
    _write_raw(root, [], marker=True)
    with pytest.raises(StagingFailed, match=f"raw/events/ds={DS}: the partition is empty"):
        run(spark, cfg, DS)
    (root / f"raw/events/ds={DS}/_SUCCESS").unlink()
    with pytest.raises(lake.LakeError, match=f"partitions missing or without _SUCCESS: ds={DS}"):
        run(spark, cfg, DS)
    import shutil

    shutil.rmtree(root / "raw")
    _write_raw(root, [event(event_id=str(i), ts=f"2026-11-04T0{i}:00") for i in range(5)])
    with pytest.raises(StagingFailed, match="schema drift against the raw events contract: ts: 5 of 5 values are not int64"):
        run(spark, cfg, DS)
    assert not (root / "staged").exists() and not (root / "quarantine").exists()


def _staged(spark, rows):
    staged, _ = _stage(spark, [event(**r) for r in rows])
    return staged


def test_sessions_split_on_idle_gap_and_keep_click_order(spark):
    t = DAY_START + HOUR
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
        Row(user_id=1, start_ts=t, end_ts=t + 2 * MIN, n_events=3, click_items=[5, 7], click_ts=[t + MIN, t + 2 * MIN]),
        Row(user_id=1, start_ts=t + 40 * MIN, end_ts=t + 40 * MIN, n_events=1, click_items=[9], click_ts=[t + 40 * MIN]),
        Row(user_id=2, start_ts=t, end_ts=t, n_events=1, click_items=[3], click_ts=[t]),
    ]
    assertDataFrameEqual(out, spark.createDataFrame(expected, out.schema))


def test_sessions_cap_length_and_ids_are_stable(spark):
    t = DAY_START
    events = _staged(spark, [{"event_id": str(i), "ts": t + i * 20 * MIN, "item_id": i} for i in range(7)])
    first = transform_sessions(events, gap_ms=30 * MIN, max_ms=60 * MIN)
    got = sorted((r.start_ts, r.click_items) for r in first.collect())
    assert got == [(t, [0, 1, 2]), (t + 60 * MIN, [3, 4, 5]), (t + 120 * MIN, [6])]
    again = transform_sessions(events, gap_ms=30 * MIN, max_ms=60 * MIN)
    assert sorted(r.session_id for r in first.collect()) == sorted(r.session_id for r in again.collect())
    assert len({r.session_id for r in first.collect()}) == 3
