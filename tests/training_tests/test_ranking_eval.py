from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.baseline import baseline_metrics, logistic_regression
from training.metrics import calibration, gauc, ranking_report, sliced_ranking_metrics

# Eight rows shared by the sliced and report tests.
LABELS = np.array([1, 0, 1, 0, 0, 0, 1, 0])
PROBS = np.array([0.9, 0.2, 0.4, 0.6, 0.3, 0.1, 0.5, 0.5])
CITY = np.array([3, 3, 3, 3, 5, 5, 7, 7])
USER_TYPE = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_gauc_by_hand_weights_groups_by_rows_and_skips_single_class_groups():
    # Rows of the three users are interleaved, so the result cannot depend on the input order.
    groups = np.array(["a", "c", "b", "a", "c", "a", "b", "c", "a"])
    labels = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0])
    probs = np.array([0.9, 0.5, 0.5, 0.1, 0.7, 0.8, 0.5, 0.2, 0.2])
    # a: 4 rows, positives 0.9 and 0.8 above negatives 0.1 and 0.2 -> AUC 1.0.
    # b: 2 rows, one positive and one negative both at 0.5 -> a tie, AUC 0.5.
    # c: 3 rows, all negative -> no AUC, left out.
    assert gauc(labels, probs, groups) == {
        "gauc": pytest.approx((1.0 * 4 + 0.5 * 2) / 6),
        "gauc_coverage": pytest.approx(6 / 9),
    }


def test_gauc_gives_ties_half_credit():
    # Positives 0.7 and 0.4 against the negative 0.4: one pair won, one pair tied -> (1 + 0.5) / 2.
    assert gauc(np.array([1, 1, 0]), np.array([0.7, 0.4, 0.4]), np.array([1, 1, 1]))["gauc"] == pytest.approx(0.75)


def test_gauc_matches_a_per_group_sklearn_loop():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 15, 300)
    labels = (rng.random(300) < 0.3).astype(int)
    probs = np.round(rng.random(300) * 0.5 + 0.3 * labels, 1)  # rounded, so there are many ties
    total, weight = 0.0, 0
    for g in np.unique(groups):
        y, p = labels[groups == g], probs[groups == g]
        if 0 < y.sum() < y.size:
            total += roc_auc_score(y, p) * y.size
            weight += y.size
    out = gauc(labels, probs, groups)
    assert out["gauc"] == pytest.approx(total / weight)
    assert out["gauc_coverage"] == pytest.approx(weight / 300)


def test_gauc_errors_say_what_was_received():
    with pytest.raises(ValueError, match=r"no group has both.*2 groups over 3 rows"):
        gauc(np.array([1, 1, 0]), np.array([0.5, 0.6, 0.7]), np.array([1, 1, 2]))
    with pytest.raises(ValueError, match=r"groups need the shape of labels \(3,\), received \(2,\)"):
        gauc(np.array([1, 0, 1]), np.array([0.5, 0.6, 0.7]), np.array([1, 1]))
    with pytest.raises(ValueError, match="same non-empty 1-d shape"):
        gauc(np.array([1, 0, 1]), np.array([0.5, 0.6]), np.array([1, 1, 1]))


def test_calibration_by_hand():
    labels = np.array([1, 0, 0, 0])  # observed CTR 0.25
    assert calibration(labels, np.array([0.8, 0.4, 0.4, 0.4])) == pytest.approx(2.0)  # mean prediction 0.5
    assert calibration(labels, np.array([0.4, 0.2, 0.2, 0.2])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"at least one positive.*0 of 2 rows"):
        calibration(np.array([0, 0]), np.array([0.1, 0.2]))


def test_sliced_ranking_metrics_by_hand():
    out = sliced_ranking_metrics(LABELS, PROBS, {"city": CITY, "user_type": USER_TYPE}, value_names={"user_type": ["B", "C"]})
    assert out == {
        # city 3: positives 0.9, 0.4 vs negatives 0.2, 0.6 -> 3 of 4 pairs; mean prediction 0.525 over CTR 0.5.
        "auc__city_3": pytest.approx(0.75),
        "calibration__city_3": pytest.approx(1.05),
        "rows__city_3": 4.0,
        # city 5: negatives only -> neither AUC nor calibration.
        "rows__city_5": 2.0,
        # city 7: one tie -> AUC 0.5; mean prediction 0.5 over CTR 0.5.
        "auc__city_7": pytest.approx(0.5),
        "calibration__city_7": pytest.approx(1.0),
        "rows__city_7": 2.0,
        # user type 0 ("B") holds the rows of city 3.
        "auc__user_type_B": pytest.approx(0.75),
        "calibration__user_type_B": pytest.approx(1.05),
        "rows__user_type_B": 4.0,
        # user type 1 ("C"): positive 0.5 beats 0.3 and 0.1 and ties 0.5 -> 2.5 / 3; 0.35 over CTR 0.25.
        "auc__user_type_C": pytest.approx(2.5 / 3),
        "calibration__user_type_C": pytest.approx(1.4),
        "rows__user_type_C": 4.0,
    }


def test_sliced_ranking_metrics_skips_small_slices_and_checks_value_names():
    out = sliced_ranking_metrics(LABELS, PROBS, {"city": CITY}, min_rows=3)
    assert sorted(out) == ["auc__city_3", "calibration__city_3", "rows__city_3"]
    with pytest.raises(ValueError, match="value 1 has no entry in value_names\\['user_type'\\]"):
        sliced_ranking_metrics(LABELS, PROBS, {"user_type": USER_TYPE}, value_names={"user_type": ["B"]})
    with pytest.raises(ValueError, match="slice 'city' needs the shape"):
        sliced_ranking_metrics(LABELS, PROBS, {"city": CITY[:3]})


def test_ranking_report_combines_everything():
    out = ranking_report(LABELS, PROBS, groups=CITY, slices={"city": CITY})
    # Positives 0.9, 0.4, 0.5 against 5 negatives: 0.9 wins 5, 0.4 wins 3, 0.5 wins 3 and ties 1 -> 11.5 / 15.
    assert out["auc"] == pytest.approx(11.5 / 15)
    assert out["calibration"] == pytest.approx((3.5 / 8) / (3 / 8))
    # Groups = cities: city 3 (AUC 0.75, 4 rows) and city 7 (AUC 0.5, 2 rows) count; city 5 does not.
    assert out["gauc"] == pytest.approx((0.75 * 4 + 0.5 * 2) / 6)
    assert out["gauc_coverage"] == pytest.approx(6 / 8)
    assert out["rows__city_5"] == 2.0
    assert {"logloss", "mean_pred", "ctr"} <= set(out)
    assert "gauc" not in ranking_report(LABELS, PROBS)


FEATURES = [
    {"name": "color", "kind": "categorical", "vocab_size": 10},
    {"name": "price", "kind": "numeric", "vocab_size": 0},
    {"name": "noise", "kind": "numeric", "vocab_size": 0},
]


def _clicks(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows whose click depends on the colour (0 and 1 are liked) and on the price (cheap is liked)."""
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 5, n)
    price = rng.lognormal(3.0, 1.0, n)
    logit = -1.0 + 2.5 * (color < 2) - 1.5 * (np.log1p(price) - 3.0)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return {"color": color, "price": price, "noise": rng.normal(size=n)}, labels


def test_lr_baseline_learns_a_categorical_and_a_numeric_signal():
    train, train_labels = _clicks(2000, seed=1)
    eval_, eval_labels = _clicks(1000, seed=2)
    out = baseline_metrics(FEATURES, train, train_labels, eval_, eval_labels)
    assert set(out) == {"lr_auc", "lr_logloss"}
    assert out["lr_auc"] > 0.75
    assert out["lr_logloss"] < np.log(2)


def test_lr_baseline_handles_unseen_categories_and_clips_negative_numerics():
    train, train_labels = _clicks(500, seed=1)
    # Colour 9 never appears in training; prices -3 and 0 both become log1p(0) = 0.
    eval_ = {"color": np.array([9, 0, 0]), "price": np.array([10.0, -3.0, 0.0]), "noise": np.zeros(3)}
    probs = logistic_regression(FEATURES, train, train_labels, eval_)
    assert probs.shape == (3,)
    assert np.all((probs > 0) & (probs < 1))
    assert probs[1] == pytest.approx(probs[2])


def test_lr_baseline_names_missing_features():
    train, train_labels = _clicks(50, seed=1)
    eval_ = {"color": train["color"], "noise": train["noise"]}
    with pytest.raises(ValueError, match=r"eval lacks features named in the specs: \['price'\]"):
        logistic_regression(FEATURES, train, train_labels, eval_)
    with pytest.raises(ValueError, match=r"train lacks .*\['color'\]"):
        logistic_regression(FEATURES, {"price": train["price"], "noise": train["noise"]}, train_labels, train)
    with pytest.raises(ValueError, match="one train label per train row, received 3 labels for 50 rows"):
        logistic_regression(FEATURES, train, train_labels[:3], train)


def test_the_nights_lr_baseline_is_fitted_once_per_version_of_the_samples(tmp_path, monkeypatch):
    from recpipe import contracts, lake
    from training import baseline

    root, ds = str(tmp_path), "2026-11-04"
    part = Path(lake.local_path(lake.partition_uri(root, contracts.RANKING_SAMPLES, ds)))
    part.mkdir(parents=True)
    (part / "part-00000-a.parquet").write_bytes(b"x" * 10)
    train, train_labels = _clicks(500, seed=1)
    eval_, eval_labels = _clicks(300, seed=2)
    args = (root, ds, FEATURES, train, train_labels, eval_, eval_labels)
    first, reused = baseline.shared_baseline_metrics(*args)
    assert not reused and first == baseline_metrics(FEATURES, train, train_labels, eval_, eval_labels)

    def refit(*_args, **_kwargs):
        raise AssertionError("the stored baseline should have been read back")

    with monkeypatch.context() as patch:
        patch.setattr(baseline, "baseline_metrics", refit)
        assert baseline.shared_baseline_metrics(*args) == (first, True)
    (part / "part-00000-a.parquet").unlink()  # the Spark job ran again: new part files
    (part / "part-00000-b.parquet").write_bytes(b"x" * 10)
    assert baseline.shared_baseline_metrics(*args) == (first, False)
