import datetime as dt

import numpy as np
import pytest
from pyspark.sql import functions as F

from recpipe import contracts, lake
from spark_jobs import daily_aggregates
from spark_jobs.ranking_samples import transform_ranking_samples

EVAL_DS = "2026-11-10"
WINDOWS = contracts.FEATURE_WINDOWS


def _events(spark, rows):
    ddl = contracts.STAGED_EVENTS.spark_ddl() + ", ds string"
    full = []
    for i, r in enumerate(rows):
        start, _ = lake.day_bounds_ms(r["ds"])
        base = {
            "event_id": f"e{i}",
            "ts": start + 1000 * i,
            "user_id": 1,
            "item_id": 10,
            "event": "expose",
            "city_id": 0,
            "category_id": 2,
            "page": "list",
            "position": 0,
            "device": "ios",
            "request_id": f"r{i}",
            "hour": 0,
        }
        full.append({**base, **r})
    return spark.createDataFrame(full, ddl)


def _samples(spark, events, users, items, lookback_days=1):
    """Daily aggregates of every day of ``events``, then the samples of [EVAL_DS - lookback, EVAL_DS]."""
    example_days = lake.window(EVAL_DS, lookback_days, include_ds=True)
    return transform_ranking_samples(
        events.where(F.col("ds").isin(example_days)),
        users,
        items,
        daily_aggregates.transform_user_daily(events, by=["ds"]),
        daily_aggregates.transform_item_daily(events, by=["ds"]),
        daily_aggregates.transform_user_cross_daily(events, items, by=["ds"]),
        EVAL_DS,
        smooth_clicks=1.0,
        smooth_exposures=20.0,
    )


@pytest.fixture(scope="module")
def snapshots(spark):
    users = spark.createDataFrame([(1, 0, "C", "ios", 0), (2, 1, "B", "pc", 0)], contracts.RAW_USERS.spark_ddl())
    items = spark.createDataFrame(
        [(10, 0, 2, 1000.0, 0, ""), (11, 1, 3, 10.0, 0, ""), (12, 0, 3, 5.0, 0, "")], contracts.RAW_ITEMS.spark_ddl()
    )
    return users, items


def test_labels_split_and_windowed_features(spark, snapshots):
    d = lambda k: lake.shift_ds(EVAL_DS, -k)  # noqa: E731
    events = _events(
        spark,
        [
            {"ds": d(20), "event": "click", "event_id": "c20"},  # inside 30 days only
            {"ds": d(4), "event": "click", "event_id": "c4"},  # inside 5, 7, 15, 30 (for EVAL_DS)
            {"ds": d(4), "event": "collect", "event_id": "k4"},
            {"ds": d(2), "event": "expose", "event_id": "x2", "item_id": 12},  # item 12 shown, not clicked
            {"ds": d(1), "request_id": "r1", "event_id": "x1"},  # train example, clicked
            {"ds": d(1), "request_id": "r1", "event": "click", "event_id": "x1c", "category_id": 2, "city_id": 0},
            {"ds": d(0), "request_id": "r3", "event_id": "x3"},  # eval example, not clicked
            {"ds": d(0), "request_id": "r4", "event_id": "x4", "item_id": 11, "position": 40},
            {"ds": d(0), "request_id": "r4", "event": "click", "event_id": "x4c", "item_id": 11, "category_id": 3},
        ],
    )
    out = _samples(spark, events, *snapshots)
    assert out.columns == contracts.RANKING_SAMPLES.columns
    rows = {r.event_id: r.asDict() for r in out.collect()}
    assert set(rows) == {"x1", "x3", "x4"}  # d(2) and older feed features only
    assert (rows["x1"]["split"], rows["x1"]["label"]) == ("train", 1.0)
    assert (rows["x3"]["split"], rows["x3"]["label"]) == ("eval", 0.0)
    assert rows["x4"]["label"] == 1.0
    # User 1's clicks before EVAL_DS: d(1) (1 day back), d(4) (4 days), d(20) (20 days).
    x3 = rows["x3"]
    assert [x3[f"user_click_{w}d"] for w in WINDOWS] == [1, 1, 2, 2, 2, 3]
    assert [x3[f"user_collect_{w}d"] for w in WINDOWS] == [0, 0, 1, 1, 1, 1]
    assert [x3[f"user_expose_{w}d"] for w in WINDOWS] == [1, 2, 2, 2, 2, 2]
    # The train example on d(1) sees the days before d(1) only: d(4) is 3 days back, d(20) 19 days.
    x1 = rows["x1"]
    assert [x1[f"user_click_{w}d"] for w in WINDOWS] == [0, 1, 1, 1, 1, 2]
    # Category 2 / city 0 clicks (the item's category and city) for item 10; none in category 3 before EVAL_DS.
    assert [x3[f"user_cat_clicks_{w}d"] for w in WINDOWS] == [1, 1, 2, 2, 2, 3]
    assert [x3[f"user_city_clicks_{w}d"] for w in WINDOWS] == [1, 1, 2, 2, 2, 3]
    assert [rows["x4"][f"user_cat_clicks_{w}d"] for w in WINDOWS] == [0] * 6  # its own day's click is not seen
    assert rows["x4"]["user_city_clicks_30d"] == 0  # item 11 is in city 1, never clicked there before
    # Item 10: on d(1) one exposure and one click (x1, x1c); the 20- and 4-day clicks had no exposure rows.
    assert rows["x3"]["item_ctr_1d"] == pytest.approx((1 + 1) / (1 + 20))
    assert rows["x3"]["item_ctr_30d"] == pytest.approx((3 + 1) / (1 + 20))
    assert rows["x4"]["item_ctr_30d"] == pytest.approx(1 / 20)  # item 11 never shown before
    assert (rows["x3"]["city_match"], rows["x4"]["city_match"], rows["x4"]["position"]) == (1, 0, contracts.MAX_POSITION - 1)
    assert (rows["x1"]["user_type"], rows["x1"]["device"]) == (1, 1)


def _random_events(seed: int, days: list[str], n: int, first_id: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(first_id, first_id + n):
        ds = days[int(rng.integers(len(days)))]
        start, _ = lake.day_bounds_ms(ds)
        item = int(rng.integers(10, 13))
        rows.append(
            {
                "ds": ds,
                "event_id": f"e{i}",
                "ts": start + int(rng.integers(0, 86_400_000)),
                "user_id": int(rng.integers(1, 3)),
                "item_id": item,
                "event": str(rng.choice(contracts.EVENT_TYPES)),
                "city_id": 0 if item != 11 else 1,
                "category_id": 2 if item == 10 else 3,
                "request_id": f"r{int(rng.integers(0, n // 3))}",
            }
        )
    return rows


def test_no_feature_uses_data_at_or_after_the_example(spark, snapshots):
    """Leakage: every feature equals a brute-force sum over events strictly before the example's day
    (hence before its timestamp), and adding events at or after each example's time changes nothing."""
    days = lake.window(EVAL_DS, 35, include_ds=True)
    base_rows = _random_events(3, days, 300) + _random_events(4, days[-2:], 200, first_id=300)
    base = {r.event_id: r.asDict() for r in _samples(spark, _events(spark, base_rows), *snapshots, lookback_days=1).collect()}
    assert len(base) > 20

    # Brute force for the user-count features, from the raw rows.
    for ex in base.values():
        ex_start, _ = lake.day_bounds_ms(_day_of(ex["ts"]))
        assert ex_start <= ex["ts"]
        for w in WINDOWS:
            lo = ex_start - w * 86_400_000
            seen = [r for r in base_rows if r["user_id"] == ex["user_id"] and lo <= r["ts"] < ex_start]
            assert ex[f"user_click_{w}d"] == sum(r["event"] == "click" for r in seen), (ex["event_id"], w)
            assert ex[f"user_expose_{w}d"] == sum(r["event"] == "expose" for r in seen), (ex["event_id"], w)

    # Future data, per example day d: a burst after the last example of d (same user and item as each
    # example, so it would hit its features) and on the day after. Examples of d must not change.
    features = contracts.window_features()
    for ds in lake.window(EVAL_DS, 1, include_ds=True):
        examples = [ex for ex in base.values() if _day_of(ex["ts"]) == ds]
        cutoff = max(ex["ts"] for ex in examples) + 1
        future = [
            {"ds": day, "event_id": f"f{i}-{j}-{day}", "ts": ts, "event": event, "request_id": f"future{i}"}
            | {"user_id": ex["user_id"], "item_id": ex["item_id"], "category_id": ex["category_id"], "city_id": ex["item_city"]}
            for i, ex in enumerate(examples)
            for j, event in enumerate(("click", "expose", "apply"))
            for day, ts in ((ds, cutoff + j), (lake.shift_ds(ds, 1), lake.day_bounds_ms(lake.shift_ds(ds, 1))[0] + j))
        ]
        perturbed = _samples(spark, _events(spark, base_rows + future), *snapshots, lookback_days=1)
        got = {r.event_id: r.asDict() for r in perturbed.collect()}
        for ex in examples:
            assert {f: got[ex["event_id"]][f] for f in features} == {f: ex[f] for f in features}, ex["event_id"]


def _day_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000, tz=dt.UTC).strftime("%Y-%m-%d")
