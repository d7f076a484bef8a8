"""Gate and promotion against a real MLflow registry (SQLite, temporary): aliases, refusals, compare-and-swap."""

import mlflow
import pytest

from indexing.promote import decide, promote
from recpipe import tracking


def _release(cfg, model: str, ds: str, metrics: dict, champion_version: str, index: bool = False) -> str:
    """A finished training run with metrics and tags as the pipeline leaves them, and its registered version."""
    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    name = tracking.model_name(cfg, model)
    tracking.ensure_registered_model(name, "test")
    with mlflow.start_run(tags={"model": model, "ds": ds, "stage": "train"}) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_text("weights", "model/weights.txt")
        source = mlflow.get_artifact_uri("model")
    version = client.create_model_version(name, source=source, run_id=run.info.run_id, tags={"ds": ds})
    client.set_tag(run.info.run_id, "model_version", str(version.version))
    client.set_tag(run.info.run_id, "champion_version", champion_version)
    if index:
        index_name = tracking.index_name(cfg, model)
        tracking.ensure_registered_model(index_name, "test")
        iv = client.create_model_version(index_name, source=source, run_id=run.info.run_id)
        client.set_tag(run.info.run_id, "index_version", str(iv.version))
    return run.info.run_id


def _champion(cfg, registered: str):
    version = tracking.alias_version(cfg, registered)
    return None if version is None else str(version.version)


def test_first_run_then_regression_then_improvement(cfg):
    name = tracking.model_name(cfg, "wide_deep")
    first = decide("wide_deep", cfg, _release(cfg, "wide_deep", "2026-11-04", {"auc": 0.70}, "none"))
    assert first["passed"] and first["first_run"]
    assert promote("wide_deep", cfg, first)["promoted"]
    assert _champion(cfg, name) == "1"

    worse = _release(cfg, "wide_deep", "2026-11-05", {"auc": 0.66, "champion_auc": 0.71}, "1")
    verdict = decide("wide_deep", cfg, worse)
    assert not verdict["passed"] and any("exceeds max" in r for r in verdict["reasons"])
    assert promote("wide_deep", cfg, verdict) == {"promoted": False, "model": name, "model_version": 2}
    assert _champion(cfg, name) == "1"
    assert mlflow.MlflowClient().get_run(worse).data.tags["gate_passed"] == "false"

    better = decide("wide_deep", cfg, _release(cfg, "wide_deep", "2026-11-06", {"auc": 0.72, "champion_auc": 0.70}, "1"))
    assert better["passed"] and promote("wide_deep", cfg, better)["promoted"]
    assert _champion(cfg, name) == "3"


def test_an_older_day_never_replaces_a_newer_champion(cfg):
    first = decide("wide_deep", cfg, _release(cfg, "wide_deep", "2026-11-06", {"auc": 0.70}, "none"))
    promote("wide_deep", cfg, first)
    backfilled = decide("wide_deep", cfg, _release(cfg, "wide_deep", "2026-11-04", {"auc": 0.90, "champion_auc": 0.70}, "1"))
    assert not backfilled["passed"]
    assert "trained for ds=2026-11-06, after this run's ds=2026-11-04" in backfilled["reasons"][-1]


def test_promotion_refuses_when_the_champion_moved_after_the_gate(cfg):
    name = tracking.model_name(cfg, "wide_deep")
    promote("wide_deep", cfg, decide("wide_deep", cfg, _release(cfg, "wide_deep", "2026-11-04", {"auc": 0.7}, "none")))
    verdict = decide("wide_deep", cfg, _release(cfg, "wide_deep", "2026-11-05", {"auc": 0.71, "champion_auc": 0.7}, "1"))
    _release(cfg, "wide_deep", "2026-11-05", {"auc": 0.72}, "1")
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "3")  # someone else promoted v3 meanwhile
    with pytest.raises(RuntimeError, match="champion moved from v1 to v3 after the gate ran"):
        promote("wide_deep", cfg, verdict)
    assert _champion(cfg, name) == "3"


def test_recall_release_moves_index_and_model_together_or_not_at_all(cfg, monkeypatch):
    model, index = tracking.model_name(cfg, "item2vec"), tracking.index_name(cfg, "item2vec")
    metrics = {"recall_at_50": 0.3, "index_recall_at_50": 0.95, "index_latency_ms_p99_batch1": 1.0}
    promote("item2vec", cfg, decide("item2vec", cfg, _release(cfg, "item2vec", "2026-11-04", metrics, "none", index=True)))
    assert (_champion(cfg, model), _champion(cfg, index)) == ("1", "1")
    assert mlflow.MlflowClient().get_model_version(model, "1").tags["index_version"] == "1"

    run = _release(cfg, "item2vec", "2026-11-05", {**metrics, "champion_recall_at_50": 0.3}, "1", index=True)
    verdict = decide("item2vec", cfg, run)
    real = mlflow.MlflowClient.set_registered_model_alias

    def fail_on_model(self, name, alias, version):
        if name == model:
            raise mlflow.exceptions.MlflowException("registry unavailable")
        return real(self, name, alias, version)

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", fail_on_model)
    with pytest.raises(mlflow.exceptions.MlflowException, match="registry unavailable"):
        promote("item2vec", cfg, verdict)
    assert (_champion(cfg, model), _champion(cfg, index)) == ("1", "1")  # the index alias was put back


def test_gate_before_evaluate_is_refused(cfg):
    tracking.setup(cfg)
    with mlflow.start_run(tags={"model": "wide_deep", "ds": "2026-11-04"}) as run:
        mlflow.log_metric("auc", 0.7)
    with pytest.raises(RuntimeError, match="run the evaluate step before the gate"):
        decide("wide_deep", cfg, run.info.run_id)


def test_an_incompatible_champion_is_said_and_only_floors_apply(cfg):
    first = decide("wide_deep", cfg, _release(cfg, "wide_deep", "2026-11-04", {"auc": 0.70}, "none"))
    promote("wide_deep", cfg, first)
    run = _release(cfg, "wide_deep", "2026-11-05", {"auc": 0.60}, "1")
    mlflow.MlflowClient().set_tag(run, "champion_incompatible", "it reads features ... no longer have: ['user_clicks_prior']")
    verdict = decide("wide_deep", cfg, run)
    assert verdict["passed"] and not verdict["first_run"]
    assert verdict["reasons"][0] == (
        "champion v1 cannot be compared: it reads features ... no longer have: ['user_clicks_prior'], only absolute floors apply"
    )
    assert promote("wide_deep", cfg, verdict)["promoted"]
