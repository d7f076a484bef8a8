import numpy as np
import pytest

from training.metrics import (
    mean_target_rank,
    ranking_metrics,
    recall_metrics,
    retrieval_metrics,
    sliced_recall,
    target_positions,
    top_k,
)


def test_recall_and_hit_rate_by_hand():
    recs = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    truth = [[1, 9], [6], [10]]
    # user 1: 1 of 2 found; user 2: 1 of 1; user 3: none.
    assert recall_metrics(recs, truth, k=3) == {"recall_at_3": pytest.approx((0.5 + 1 + 0) / 3), "hr_at_3": pytest.approx(2 / 3)}
    assert recall_metrics(recs, truth, k=1) == {"recall_at_1": pytest.approx(0.5 / 3), "hr_at_1": pytest.approx(1 / 3)}


def test_ranking_metrics_by_hand():
    m = ranking_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert m["auc"] == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered correctly
    assert m["ctr"] == 0.5 and m["mean_pred"] == pytest.approx(0.5)
    assert m["logloss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])))


def test_metric_errors_name_the_problem():
    with pytest.raises(ValueError, match="both positive and negative"):
        ranking_metrics(np.array([1, 1]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="one recommendation list per user"):
        recall_metrics([[1]], [[1], [2]], k=1)


def test_top_k_is_exact_with_ties_broken_by_id():
    items = np.array([[1, 0], [0, 1], [1, 0], [0.5, 0.5]], dtype=np.float32)
    users = np.array([[1, 0], [0, 2]], dtype=np.float32)
    assert top_k(users, items, k=3).tolist() == [[0, 2, 3], [1, 3, 0]]


def test_retrieval_metrics_ndcg_coverage_by_hand():
    recs = [[5, 1, 2, 3], [4, 3, 2, 1]]
    truth = [[1, 9], [7]]
    m = retrieval_metrics(recs, truth, ks=[2, 4], n_items=10)
    # User 0 finds item 1 at rank 2 of 2 targets; user 1 finds nothing.
    assert m["recall_at_2"] == pytest.approx(0.25) and m["hr_at_2"] == pytest.approx(0.5)
    ideal = 1 + 1 / np.log2(3)
    assert m["ndcg_at_2"] == pytest.approx(((1 / np.log2(3)) / ideal + 0) / 2)
    assert m["coverage_at_2"] == pytest.approx(4 / 10) and m["coverage_at_4"] == pytest.approx(5 / 10)


def test_target_positions_and_recall_auc_by_hand():
    items = np.array([[5.0], [4.0], [3.0], [2.0], [1.0]])  # 5 vectors; the catalogue has 7 items (5 and 6 are new)
    users = np.array([[1.0], [-1.0], [0.0]])
    targets = {
        "click": [[1, 3, 99], [4], [0]],  # 99 is outside the catalogue: ignored
        "apply": [[6], [], []],  # item 6 has no vector
    }
    found = target_positions(users, items, targets, n_items=7)
    positions, aucs = found["click"]
    # User 0 scores 5, 4, 3, 2, 1: item 1 is 2nd, item 3 is 4th; of the 5 non-targets (0, 2, 4, 5, 6) item 1
    # beats 2, 4, 5, 6 and item 3 beats 4, 5, 6: 7 of 10 pairs. User 1 scores -5..-1: item 4 is 1st and beats the
    # other 4 with vectors and the 2 without. User 2 scores every item 0: ties count against item 0 (5th), which
    # beats only the 2 items without a vector.
    np.testing.assert_array_equal(positions, [2, 4, 1, 5])
    np.testing.assert_allclose(aucs, [0.7, 1.0, 2 / 6])
    positions, aucs = found["apply"]
    np.testing.assert_array_equal(positions, [7])  # no vector: last
    np.testing.assert_allclose(aucs, [0.0])  # only user 0 has an apply target
    assert mean_target_rank(users, items, targets["click"], n_items=7) == pytest.approx(3.0)


def test_mean_target_rank_and_slices():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    users = np.array([[1.0, 0.0], [0.0, 1.0]])
    # User 0 ranks items 0, 2, 1: target 1 is 3rd; user 1 ranks 1, 2, 0: target 1 is 1st.
    assert mean_target_rank(users, items, [[1], [1]]) == pytest.approx(2.0)
    recs = [[0, 2, 1], [1, 2, 0]]
    sliced = sliced_recall(recs, [[1], [1, 0]], k=1, user_group=np.array([3, 4]), item_group=np.array([0, 1, 1]))
    assert sliced == {
        "recall_at_1__city_3": 0.0,
        "recall_at_1__city_4": 0.5,
        "recall_at_1__category_0": 0.0,  # item 0, a target of user 1, not in their top 1
        "recall_at_1__category_1": 0.5,  # item 1: missed by user 0, found by user 1
        "rows__city_3": 1.0,  # one user in each city
        "rows__city_4": 1.0,
        "rows__category_0": 1.0,  # one target of category 0 (item 0), two of category 1 (item 1, twice)
        "rows__category_1": 2.0,
    }


def test_top_k_excludes_seen_items():
    items = np.array([[3.0], [2.0], [1.0]])
    assert top_k(np.array([[1.0]]), items, 2, exclude=[[0]]).tolist() == [[1, 2]]
