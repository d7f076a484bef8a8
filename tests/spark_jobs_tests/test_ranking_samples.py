from recpipe import contracts, lake
from spark_jobs.ranking_samples import transform_ranking_samples


def _events(spark, rows):
    ddl = contracts.STAGED_EVENTS.spark_ddl() + ", ds string"
    full = []
    for i, r in enumerate(rows):
        ds = r["ds"]
        start, _ = lake.day_bounds_ms(ds)
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


def test_labels_features_split_and_fixed_prior_window(spark):
    users = spark.createDataFrame([(1, 0, "C", "ios", 0)], contracts.RAW_USERS.spark_ddl())
    items = spark.createDataFrame([(10, 0, 2, 1000.0, 0, ""), (11, 1, 3, 10.0, 0, "")], contracts.RAW_ITEMS.spark_ddl())
    events = _events(
        spark,
        [
            {"ds": "2026-10-31", "request_id": "r0", "event_id": "x0"},  # feature-only day
            {"ds": "2026-10-31", "request_id": "r0", "event": "click", "event_id": "x0c"},
            {"ds": "2026-11-01", "request_id": "r1", "event_id": "x1"},
            {"ds": "2026-11-01", "request_id": "r1", "event": "click", "event_id": "x2"},
            {"ds": "2026-11-02", "request_id": "r2", "event_id": "x3"},  # not clicked
            {"ds": "2026-11-02", "request_id": "r3", "event_id": "x4", "item_id": 11, "position": 40},
            {"ds": "2026-11-02", "request_id": "r3", "event": "click", "event_id": "x5", "item_id": 11},
        ],
    )
    out = transform_ranking_samples(
        events, users, items, "2026-11-02", lookback_days=1, feature_window_days=1, smooth_clicks=1.0, smooth_exposures=20.0
    )
    assert out.columns == contracts.RANKING_SAMPLES.columns
    rows = {r.event_id: r for r in out.collect()}
    assert set(rows) == {"x1", "x3", "x4"}  # day 10-31 feeds features only, it makes no examples
    assert (rows["x1"].split, rows["x1"].label) == ("train", 1.0)
    assert (rows["x3"].split, rows["x3"].label) == ("eval", 0.0)
    assert rows["x4"].label == 1.0
    # Every example sees exactly the one day before it: train and eval windows have the same width.
    assert (rows["x1"].user_clicks_prior, rows["x1"].user_exposures_prior) == (1.0, 1.0)  # from 10-31
    assert (rows["x3"].user_clicks_prior, rows["x3"].user_exposures_prior) == (1.0, 1.0)  # from 11-01 only
    assert rows["x3"].user_cat_clicks_prior == 1.0  # one click in category 2 the day before
    assert rows["x4"].user_cat_clicks_prior == 0.0  # never clicked category 3 before; its own day's click is not seen
    assert abs(rows["x3"].item_ctr_prior - (1 + 1) / (1 + 20)) < 1e-6
    assert abs(rows["x4"].item_ctr_prior - 1 / 20) < 1e-6  # item 11 was never shown before 11-02
    assert (rows["x3"].city_match, rows["x4"].city_match, rows["x4"].position) == (1, 0, contracts.MAX_POSITION - 1)
    assert (rows["x1"].user_type, rows["x1"].device) == (1, 1)
