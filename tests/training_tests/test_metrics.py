import numpy as np
import pytest

from training.metrics import ranking_metrics, recall_metrics, top_k


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
