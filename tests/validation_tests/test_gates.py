import pytest

from recpipe.config import GateConfig
from validation.gates import Threshold, evaluate_gate, older_day_check, thresholds_for

AUC = [Threshold("auc", min_value=0.6, max_regression=0.01)]
LATENCY = [Threshold("index_latency_ms_p99_batch1", max_value=5.0)]


def test_first_run_is_explicit_and_only_floors_apply():
    result = evaluate_gate({"auc": 0.7}, None, AUC)
    assert result.passed and result.first_run
    assert result.reasons[0].startswith("first run: no champion")


def test_floor_fails():
    result = evaluate_gate({"auc": 0.55}, None, AUC)
    assert not result.passed
    assert "auc=0.5500 < floor 0.6000" in result.reasons


def test_regression_against_champion():
    assert evaluate_gate({"auc": 0.705}, {"auc": 0.71}, AUC).passed  # drop 0.005 <= 0.01
    failed = evaluate_gate({"auc": 0.69}, {"auc": 0.71}, AUC)  # drop 0.02 > 0.01
    assert not failed.passed and not failed.first_run
    assert any("drop +0.0200 exceeds max 0.0100" in r for r in failed.reasons)
    assert evaluate_gate({"auc": 0.80}, {"auc": 0.71}, AUC).passed  # improvement


def test_missing_metric_fails_and_names_what_exists():
    result = evaluate_gate({"logloss": 0.3}, None, AUC)
    assert not result.passed
    assert "auc: missing from the candidate's metrics ['logloss']" in result.reasons


def test_configured_thresholds():
    gates = GateConfig(min_auc=0.6, min_recall_at_k=0.1, min_index_recall_at_k=0.9, max_index_latency_ms_p99=20.0)
    recall, skipped = thresholds_for("recall", gates, 20)
    assert [t.metric for t in recall] == ["recall_at_20", "index_recall_at_20", "index_latency_ms_p99_batch1"]
    assert recall[2] == Threshold("index_latency_ms_p99_batch1", max_value=20.0) and skipped == []
    assert thresholds_for("ranking", gates, 20)[0][0] == Threshold("auc", 0.6, gates.max_auc_regression)
    assert len(thresholds_for("recall", GateConfig(max_index_latency_ms_p99=None), 20)[0]) == 2
    with pytest.raises(ValueError, match="received 'retrieval'"):
        thresholds_for("retrieval", gates, 20)


def test_latency_ceiling():
    latency = [Threshold("index_latency_ms_p99_batch1", max_value=5.0)]
    assert evaluate_gate({"index_latency_ms_p99_batch1": 4.0}, None, latency).passed
    slow = evaluate_gate({"index_latency_ms_p99_batch1": 7.5}, None, latency)
    assert not slow.passed and "index_latency_ms_p99_batch1=7.5000 > ceiling 5.0000" in slow.reasons


RANKED = {"auc": 0.75, "auc__city_1": 0.74, "rows__city_1": 900.0, "auc__city_2": 0.60, "rows__city_2": 50.0}


def test_slices_get_their_own_thresholds_and_small_slices_are_skipped():
    gates = GateConfig(min_slice_auc=0.55, max_slice_auc_regression=0.03, min_slice_rows=200)
    thresholds, skipped = thresholds_for("ranking", gates, 50, RANKED)
    assert [t.metric for t in thresholds] == ["auc", "auc__city_1"]
    assert thresholds[1] == Threshold("auc__city_1", 0.55, 0.03, new_slice_ok=True)
    assert skipped == ["auc__city_2 (50 rows)"]  # "rows__city_2" itself is a count, never a gated slice


def test_a_slice_regression_fails_the_gate_though_the_headline_passes():
    gates = GateConfig(min_auc=0.5, max_auc_regression=0.01, min_slice_auc=0.5, max_slice_auc_regression=0.03)
    thresholds, _ = thresholds_for("ranking", gates, 50, RANKED)
    champion = {"auc": 0.75, "auc__city_1": 0.80, "auc__city_2": 0.61}
    result = evaluate_gate(RANKED, champion, thresholds)
    assert not result.passed
    assert "auc__city_1=0.7400 vs champion 0.8000: drop +0.0600 exceeds max 0.0300" in result.reasons
    assert "auc=0.7500 vs champion 0.7500: drop +0.0000 within max 0.0100" in result.reasons
    assert evaluate_gate(RANKED, {**champion, "auc__city_1": 0.76}, thresholds).passed


def test_a_new_slice_is_not_a_failure_but_a_missing_headline_is():
    gates = GateConfig(min_auc=0.5, min_slice_auc=0.5, min_slice_rows=1)
    thresholds, _ = thresholds_for("ranking", gates, 50, RANKED)
    result = evaluate_gate(RANKED, {"auc": 0.75, "auc__city_1": 0.74}, thresholds)  # the champion never saw city 2
    assert result.passed
    assert "auc__city_2: new slice, the champion has no value: regression not checked" in result.reasons
    floor = evaluate_gate(
        RANKED, None, thresholds_for("ranking", GateConfig(min_slice_auc=0.65, min_slice_rows=1), 50, RANKED)[0]
    )
    assert not floor.passed and "auc__city_2=0.6000 < floor 0.6500" in floor.reasons


def test_recall_slices():
    candidate = {"recall_at_50": 0.3, "recall_at_50__category_3": 0.1, "rows__category_3": 400.0, "recall_at_50__city_1": 0.3}
    thresholds, skipped = thresholds_for(
        "recall", GateConfig(min_slice_rows=100, max_slice_recall_regression=0.05), 50, candidate
    )
    names = [t.metric for t in thresholds]
    assert names[-2:] == ["recall_at_50__category_3", "recall_at_50__city_1"] and skipped == []
    result = evaluate_gate(candidate, {"recall_at_50": 0.3, "recall_at_50__category_3": 0.2}, thresholds[:1] + thresholds[-2:])
    assert not result.passed and any("recall_at_50__category_3=0.1000 vs champion 0.2000" in r for r in result.reasons)


def test_a_champion_without_the_metric_fails_the_gate():
    result = evaluate_gate({"auc": 0.7}, {"logloss": 0.3}, AUC)
    assert not result.passed
    assert "auc: the champion has no value to compare with (champion metrics: ['logloss'])" in result.reasons


def test_a_verdict_is_a_list_of_structured_checks():
    result = evaluate_gate({"auc": 0.69, "index_latency_ms_p99_batch1": 7.5}, {"auc": 0.71}, [*AUC, *LATENCY])
    assert [(c.metric, c.kind, c.value, c.threshold, c.champion, c.passed) for c in result.checks] == [
        ("auc", "floor", 0.69, 0.6, None, True),
        ("auc", "regression", 0.69, 0.01, 0.71, False),
        ("index_latency_ms_p99_batch1", "ceiling", 7.5, 5.0, None, False),
    ]
    assert not result.passed and [c.kind for c in result.failed] == ["regression", "ceiling"]
    verdict = result.to_dict()
    assert [c["passed"] for c in verdict["checks"]] == [True, False, False]
    assert verdict["checks"][1]["message"] == "auc=0.6900 vs champion 0.7100: drop +0.0200 exceeds max 0.0100"
    assert verdict["reasons"] == [c["message"] for c in verdict["checks"]] and verdict["champion_note"] is None


def test_notes_are_not_checks_and_a_new_slice_passes_its_regression_check():
    t = [Threshold("auc__city_9", 0.5, 0.03, new_slice_ok=True)]
    result = evaluate_gate({"auc__city_9": 0.6}, {"auc": 0.7}, t).with_notes("slices under 200 rows, not gated: x")
    assert [(c.kind, c.passed, c.new_slice) for c in result.checks] == [("floor", True, False), ("regression", True, True)]
    assert result.reasons[1] == "auc__city_9: new slice, the champion has no value: regression not checked"
    assert result.reasons[-1] == "slices under 200 rows, not gated: x" and result.passed
    first = evaluate_gate({"auc": 0.7}, None, AUC)
    assert first.champion_note == "first run: no champion to compare with, only absolute floors apply"
    assert [c.kind for c in first.checks] == ["floor"]


def test_the_older_day_check():
    older = older_day_check("2026-11-02", "2026-11-03", "4")
    assert older.kind == "older_day" and not older.passed
    assert older.message == (
        "champion v4 was trained for ds=2026-11-03, after this run's ds=2026-11-02: an older day never replaces a newer champion"
    )
    assert older_day_check("2026-11-03", "2026-11-03", "4").passed
    result = evaluate_gate({"auc": 0.9}, {"auc": 0.7}, AUC).with_checks(older)
    assert not result.passed and result.reasons[-1] == older.message


def test_a_recall_model_can_be_required_to_beat_item_knn():
    gates = GateConfig(min_recall_at_k=0.0, min_lift_over_itemknn=1.3, max_index_latency_ms_p99=None)
    candidate = {"recall_at_50": 0.27, "itemknn_recall_at_50": 0.2, "index_recall_at_50": 0.99}
    thresholds, _ = thresholds_for("recall", gates, 50, candidate)
    assert thresholds[-1] == Threshold("recall_at_50", reference="itemknn_recall_at_50", min_ratio=1.3)
    passed = evaluate_gate(candidate, None, thresholds)
    (check,) = [c for c in passed.checks if c.kind == "reference"]
    assert passed.passed and check.threshold == pytest.approx(0.26)
    assert check.message == "recall_at_50=0.2700 >= 1.3 x itemknn_recall_at_50 = 0.2600"
    failed = evaluate_gate({**candidate, "recall_at_50": 0.25}, None, thresholds)
    assert not failed.passed and [c.kind for c in failed.failed] == ["reference"]
    missing = evaluate_gate({"recall_at_50": 0.3, "index_recall_at_50": 0.99}, None, thresholds)
    assert not missing.passed and "reference itemknn_recall_at_50 missing" in missing.failed[0].message
    assert len(thresholds_for("recall", GateConfig(), 50, candidate)[0]) == 3  # not gated by default
