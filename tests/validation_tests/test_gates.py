import pytest

from recpipe.config import GateConfig
from validation.gates import Threshold, evaluate_gate, thresholds_for

AUC = [Threshold("auc", min_value=0.6, max_regression=0.01)]


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
    gates = GateConfig(min_auc=0.6, min_recall_at_k=0.1, min_index_recall_at_k=0.9)
    assert [t.metric for t in thresholds_for("recall", gates, 20)] == ["recall_at_20", "index_recall_at_20"]
    assert thresholds_for("ranking", gates, 20)[0] == Threshold("auc", 0.6, gates.max_auc_regression)
    with pytest.raises(ValueError, match="received 'retrieval'"):
        thresholds_for("retrieval", gates, 20)


def test_a_champion_without_the_metric_fails_the_gate():
    result = evaluate_gate({"auc": 0.7}, {"logloss": 0.3}, AUC)
    assert not result.passed
    assert "auc: the champion has no value to compare with (champion metrics: ['logloss'])" in result.reasons
