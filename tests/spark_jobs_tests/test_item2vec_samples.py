from spark_jobs.item2vec_samples import (
    popularity_table,
    transform_cbow,
    transform_negatives,
    transform_positive_pairs,
)

SESSIONS_DDL = "session_id string, user_id bigint, start_ts bigint, click_items array<bigint>"


def test_positive_pairs_within_window(spark):
    sessions = spark.createDataFrame([("s1", 1, 0, [1, 2, 3, 4]), ("s2", 2, 0, [5])], SESSIONS_DDL)
    pairs = transform_positive_pairs(sessions, window=1)
    got = sorted((r.target, r.context) for r in pairs.collect())
    assert got == [(1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3)]


def test_negatives_by_kind_with_their_sampling_probabilities(spark):
    # City 0: items 1..6 (1-3 in category 0, 4-5 in category 1, 6 in category 2); city 1: items 7..9.
    cats = {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 2, 7: 0, 8: 0, 9: 1}
    items = spark.createDataFrame(
        [(i, 0 if i <= 6 else 1, cats[i]) for i in range(1, 10)], "item_id bigint, city_id int, category_id int"
    )
    sessions = spark.createDataFrame([("s1", 1, 0, [1, 2, 3]), ("s2", 2, 0, [4, 8])], SESSIONS_DDL)
    positives = transform_positive_pairs(sessions, window=2)
    pop = spark.createDataFrame(popularity_table({7: 100}, list(range(1, 10)), size=1000), "bucket int, item_id bigint")
    neg = transform_negatives(positives, items, pop, n_city=6, n_global=8, n_hard=6, seed=1, table_size=1000).collect()
    by_kind = {k: [r for r in neg if r.kind == k] for k in ("city", "hard", "global")}
    from_s1 = lambda rows: {r.context for r in rows if r.target in (1, 2, 3)}  # noqa: E731
    # Targets 1-3 are in city 0, category 0: city negatives come from {4, 5, 6} (1-3 were clicked in the session),
    # hard negatives from city 0 outside category 0, so also {4, 5, 6}, drawn uniformly among those 3.
    assert from_s1(by_kind["city"]) <= {4, 5, 6} and from_s1(by_kind["hard"]) == {4, 5, 6}
    probs = lambda rows: {round(r.prob, 5) for r in rows if r.target in (1, 2, 3)}  # noqa: E731
    assert probs(by_kind["city"]) == {round(1 / 6, 5)} and probs(by_kind["hard"]) == {round(1 / 3, 5)}
    # Target 4 (city 0, category 1): hard negatives are the city-0 items of categories 0 and 2, never 5 (its category).
    assert {r.context for r in by_kind["hard"] if r.target == 4} <= {1, 2, 3, 6}
    # Target 8 (city 1, category 0): hard negatives are item 9 only, with probability 1.
    assert {(r.context, r.prob) for r in by_kind["hard"] if r.target == 8} == {(9, 1.0)}
    glob = [r for r in by_kind["global"] if r.target in (1, 2, 3)]
    assert glob and not {r.context for r in glob} & {1, 2, 3}
    assert sum(r.context == 7 for r in glob) > len(glob) / 3  # popularity^0.75 favours the popular item
    share_7 = sum(1 for _, item in popularity_table({7: 100}, list(range(1, 10)), size=1000) if item == 7) / 1000
    assert {round(r.prob, 5) for r in glob if r.context == 7} == {round(share_7, 5)}
    assert all(r.label == 0.0 for r in neg)
    again = transform_negatives(positives, items, pop, n_city=6, n_global=8, n_hard=6, seed=1, table_size=1000).collect()
    assert sorted(again) == sorted(neg)  # deterministic for a seed


def test_cbow_contexts_within_window(spark):
    sessions = spark.createDataFrame([("s1", 1, 0, [1, 2, 3, 4]), ("s2", 2, 0, [5]), ("s3", 3, 0, [6, 6, 7])], SESSIONS_DDL)
    got = sorted((r.session_id, r.target, r.context) for r in transform_cbow(sessions, window=1).collect())
    assert got == [
        ("s1", 1, [2]),
        ("s1", 2, [1, 3]),
        ("s1", 3, [2, 4]),
        ("s1", 4, [3]),
        ("s3", 6, [7]),  # the repeated 6 is not its own context; position 0 sees only the other 6: dropped
        ("s3", 7, [6]),
    ]


def test_popularity_table_follows_clicks_to_the_three_quarters():
    table = popularity_table({1: 15, 2: 0}, [1, 2], size=10_000)
    share_1 = sum(1 for _, item in table if item == 1) / len(table)
    assert abs(share_1 - 16**0.75 / (16**0.75 + 1)) < 0.001
