from recpipe import contracts, lake
from spark_jobs.retrieval_samples import transform_recall_eval, transform_retrieval_samples, transform_user_clicks

EVAL_DS = "2026-11-10"
WEIGHTS = {"click": 1.0, "collect": 2.0, "call": 3.0, "im": 3.0, "apply": 4.0}
SESSIONS_DDL = "session_id string, user_id bigint, start_ts bigint, click_items array<bigint>, click_ts array<bigint>"
T0, _ = lake.day_bounds_ms(EVAL_DS)
T_PREV, _ = lake.day_bounds_ms(lake.shift_ds(EVAL_DS, -1))


def _events(spark, rows):
    base = {"user_id": 1, "event": "click", "city_id": 0, "category_id": 0, "page": "list", "position": 0}
    base |= {"device": "ios", "hour": 0}
    full = [{**base, "event_id": f"e{i}", "request_id": f"r{i}", **r} for i, r in enumerate(rows)]
    return spark.createDataFrame(full, contracts.STAGED_EVENTS.spark_ddl() + ", ds string")


def _snapshots(spark):
    users = spark.createDataFrame([(1, 5, "B", "pc", 0)], contracts.RAW_USERS.spark_ddl())
    # City 0: items 1-3 in category 0, items 4-5 in category 1; city 1: item 9 alone.
    items = [(1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 0, 1), (5, 0, 1), (9, 1, 0)]
    items = spark.createDataFrame([(i, c, g, 1.0, 0, "") for i, c, g in items], contracts.RAW_ITEMS.spark_ddl())
    return users, items


def _run(spark, events, sessions, max_history=2, n_hard=8):
    users, items = _snapshots(spark)
    return transform_retrieval_samples(
        events, sessions, users, items, EVAL_DS, weights=WEIGHTS, max_history=max_history, n_hard=n_hard, seed=3
    )


def test_history_is_strictly_before_each_action_and_capped(spark):
    # The user's clicks: items 1, 2 on the day before, 3 and 4 on the eval day (a session spans both times).
    sessions = spark.createDataFrame(
        [("a", 1, T_PREV, [1, 2], [T_PREV + 10, T_PREV + 20]), ("b", 1, T0, [3, 4], [T0 + 100, T0 + 200])], SESSIONS_DDL
    )
    events = _events(
        spark,
        [
            {"ds": lake.shift_ds(EVAL_DS, -1), "ts": T_PREV + 20, "item_id": 2},  # train click: sees item 1 only
            {"ds": EVAL_DS, "ts": T0 + 100, "item_id": 3, "request_id": "q"},  # eval click at the same ms as its own click
            # A follow-up of that click, in the same request: its history ends where the request began.
            {"ds": EVAL_DS, "ts": T0 + 150, "item_id": 3, "event": "apply", "city_id": 7, "request_id": "q"},
            {"ds": EVAL_DS, "ts": T0 + 300, "item_id": 4, "event": "expose"},  # not a positive action
            {"ds": EVAL_DS, "ts": T0 + 86_399_000, "item_id": 5, "event": "im", "hour": 23},
        ],
    )
    out = _run(spark, events, sessions)
    assert out.columns == contracts.RETRIEVAL_SAMPLES.columns
    rows = {r.event_id: r for r in out.collect()}
    assert set(rows) == {"e0", "e1", "e2", "e4"}
    assert (rows["e0"].split, rows["e0"].history, rows["e0"].weight) == ("train", [1], 1.0)
    assert (rows["e1"].split, rows["e1"].history) == ("eval", [1, 2])  # its own click (same ts) is not history
    assert (rows["e2"].history, rows["e2"].weight, rows["e2"].event, rows["e2"].city_id) == ([1, 2], 4.0, "apply", 7)
    assert (rows["e4"].history, rows["e4"].weight, rows["e4"].hour) == ([3, 4], 3.0, 23)  # capped to the last two
    # Profile and context: user 1 is a B user (0) on pc (2) in city 5; 2026-11-10 is a Tuesday (1), the 9th a Monday.
    assert {(r.user_city, r.user_type, r.device) for r in rows.values()} == {(5, 0, 2)}
    assert (rows["e0"].weekday, rows["e1"].weekday, rows["e4"].weekday) == (0, 1, 1)
    assert (rows["e4"].item_city, rows["e4"].category_id) == (0, 1)


def test_hard_negatives_same_city_other_category_never_history(spark):
    sessions = spark.createDataFrame([("a", 1, T_PREV, [4], [T_PREV + 10])], SESSIONS_DDL)
    events = _events(
        spark,
        [
            {"ds": EVAL_DS, "ts": T0 + 1, "item_id": 1},  # city 0, category 0: other category is {4, 5}; 4 is history
            {"ds": EVAL_DS, "ts": T0 + 2, "item_id": 5, "event": "collect"},  # category 1: {1, 2, 3}
            {"ds": EVAL_DS, "ts": T0 + 3, "item_id": 9},  # city 1 has no other category: no hard negatives
        ],
    )
    rows = {r.item_id: r for r in _run(spark, events, sessions).collect()}
    assert set(rows[1].hard_negatives) == {5} and abs(rows[1].hard_negative_prob - 1 / 2) < 1e-6
    assert (
        len(rows[5].hard_negatives) == 8
        and set(rows[5].hard_negatives) <= {1, 2, 3}
        and abs(rows[5].hard_negative_prob - 1 / 3) < 1e-6
    )
    assert (rows[9].hard_negatives, rows[9].hard_negative_prob) == ([], 0.0)
    again = {r.item_id: r.hard_negatives for r in _run(spark, events, sessions).collect()}
    assert again == {k: r.hard_negatives for k, r in rows.items()}  # deterministic for a seed


def test_future_clicks_never_enter_the_history(spark):
    """Leakage: clicks at or after an action's time, the same day or later, leave its history unchanged."""
    past = ("a", 1, T_PREV, [1, 2], [T_PREV + 10, T_PREV + 20])
    events = _events(spark, [{"ds": EVAL_DS, "ts": T0 + 500, "item_id": 3}, {"ds": EVAL_DS, "ts": T0 + 900, "item_id": 5}])
    base = {r.event_id: r.history for r in _run(spark, events, spark.createDataFrame([past], SESSIONS_DDL)).collect()}
    future = ("b", 1, T0 + 500, [4, 9, 4], [T0 + 500, T0 + 900, T0 + 86_000_000])
    later = ("c", 1, T0 + 86_400_000, [9], [T0 + 86_400_000])
    with_future = _run(spark, events, spark.createDataFrame([past, future, later], SESSIONS_DDL), max_history=10)
    got = {r.event_id: r.history for r in with_future.collect()}
    assert base == {"e0": [1, 2], "e1": [1, 2]}
    assert got == {"e0": [1, 2], "e1": [1, 2, 4]}  # e1 (at +900) sees the click at +500, not the one at +900


def test_recall_eval_users_history_before_the_day_and_first_click_context(spark):
    sessions = spark.createDataFrame(
        [
            ("a", 1, T_PREV, [1, 2, 3], [T_PREV + 1, T_PREV + 2, T_PREV + 3]),
            ("b", 1, T0, [7, 8, 7], [T0 + 5_000, T0 + 3_600_000 * 5, T0 + 3_600_000 * 6]),  # the eval day's clicks
            ("c", 2, T_PREV, [4], [T_PREV + 9]),  # user 2: history, but no click on the eval day
        ],
        SESSIONS_DDL,
    )
    events = _events(
        spark,
        [
            {"ds": EVAL_DS, "ts": T0 + 3_600_000 * 5, "item_id": 8, "hour": 5, "city_id": 3},
            {"ds": EVAL_DS, "ts": T0 + 5_000, "item_id": 7, "hour": 0, "city_id": 2},  # the first click
            {"ds": EVAL_DS, "ts": T0 + 3_600_000 * 6, "item_id": 7, "hour": 6},
            {"ds": EVAL_DS, "ts": T0 + 1, "item_id": 9, "event": "collect", "hour": 0, "city_id": 9},  # not a click
            {"ds": EVAL_DS, "ts": T0 + 3_600_000 * 5 + 9, "item_id": 8, "event": "apply"},  # deeper actions
            {"ds": EVAL_DS, "ts": T0 + 3_600_000 * 5 + 19, "item_id": 8, "event": "apply"},  # the same again
            {"ds": EVAL_DS, "ts": T0 + 3_600_000 * 5 + 29, "item_id": 8, "event": "call"},
            {"ds": EVAL_DS, "ts": T0 - 50_000, "item_id": 3, "event": "im"},  # before the day: not a target
            {"ds": EVAL_DS, "ts": T0 + 3_600_000 * 5 + 9, "item_id": 8, "event": "apply", "user_id": 2},  # no click
            {"ds": EVAL_DS, "ts": T0 + 7, "item_id": 9, "user_id": 3},  # user 3: a click but no history
            {"ds": EVAL_DS, "ts": T0 - 60_000, "item_id": 3},  # late event of the day before: history, not a target
        ],
    )
    profiles = [(1, 5, "B", "pc", 0), (2, 1, "C", "ios", 0), (3, 1, "C", "ios", 0)]
    users = spark.createDataFrame(profiles, contracts.RAW_USERS.spark_ddl())
    out = transform_recall_eval(events, transform_user_clicks(sessions), users, T0, max_history=2)
    assert out.columns == contracts.RECALL_EVAL.columns
    assert [r.asDict() for r in out.collect()] == [
        {"user_id": 1, "history": [2, 3], "targets": [7, 8], "user_city": 5, "user_type": 0, "device": 2}
        | {"action_items": [8, 8, 9], "action_events": ["apply", "call", "collect"]}
        | {"hour": 0, "weekday": 1, "city_id": 2}
    ]
