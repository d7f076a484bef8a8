from spark_jobs.item2vec_samples import (
    popularity_table,
    transform_negatives,
    transform_positive_pairs,
    transform_recall_eval,
)

SESSIONS_DDL = "session_id string, user_id bigint, start_ts bigint, click_items array<bigint>"


def test_positive_pairs_within_window(spark):
    sessions = spark.createDataFrame([("s1", 1, 0, [1, 2, 3, 4]), ("s2", 2, 0, [5])], SESSIONS_DDL)
    pairs = transform_positive_pairs(sessions, window=1)
    got = sorted((r.target, r.context) for r in pairs.collect())
    assert got == [(1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3)]


def test_negatives_are_in_the_target_city_and_never_in_the_session(spark):
    # City 0 has items 1..6, city 1 has items 7..9.
    items = spark.createDataFrame([(i, 0 if i <= 6 else 1) for i in range(1, 10)], "item_id bigint, city_id int")
    sessions = spark.createDataFrame([("s1", 1, 0, [1, 2, 3])], SESSIONS_DDL)
    positives = transform_positive_pairs(sessions, window=2)
    pop = spark.createDataFrame(popularity_table({7: 100}, list(range(1, 10)), size=1000), "bucket int, item_id bigint")
    neg = transform_negatives(positives, items, pop, n_city=20, n_global=20, seed=1).collect()
    city = [r.context for r in neg if r.kind == "city"]
    glob = [r.context for r in neg if r.kind == "global"]
    assert city and set(city) <= {4, 5, 6}  # same city as the target, not clicked in the session
    assert glob and not set(glob) & {1, 2, 3}
    assert all(r.label == 0.0 for r in neg)
    assert glob.count(7) > len(glob) / 3  # popularity^0.75 favours the popular item


def test_popularity_table_follows_clicks_to_the_three_quarters():
    table = popularity_table({1: 15, 2: 0}, [1, 2], size=10_000)
    share_1 = sum(1 for _, item in table if item == 1) / len(table)
    assert abs(share_1 - 16**0.75 / (16**0.75 + 1)) < 0.001


def test_recall_eval_uses_only_history_before_the_eval_day(spark):
    train = spark.createDataFrame([("a", 1, 100, [1, 2]), ("b", 1, 50, [9]), ("c", 2, 10, [4])], SESSIONS_DDL)
    evals = spark.createDataFrame([("d", 1, 500, [3, 1, 3]), ("e", 3, 500, [8])], SESSIONS_DDL)
    out = transform_recall_eval(train, evals, max_history=2).orderBy("user_id").collect()
    # User 1: sessions in time order give [9, 1, 2], capped to the last two; user 3 has no history.
    # User 2 has history but no eval click, user 3 an eval click but no history: neither is in the set.
    assert [(r.user_id, r.history, r.targets) for r in out] == [(1, [1, 2], [1, 3])]
