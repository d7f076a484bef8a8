"""Data-aware scheduling: the assets ``nightly_retrain`` publishes, and ``index_serving_refresh`` consuming them."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from indexing import artifact, build, release
from orchestration import tasks as task_functions
from tests.dags_tests.conftest import load_dag
from tests.indexing_tests.test_build import _cfg, _inputs
from tests.indexing_tests.test_promote import _release
from training import catalogue

LAKE = "x-recpipe://lake/training"
RELEASE = "x-recpipe://release"


def _uris(objects) -> list[str]:
    return [getattr(o, "uri", None) or f"alias:{o.name}" for o in objects]


def test_each_training_set_job_and_each_recall_promotion_publishes_its_assets():
    dag = load_dag("nightly_retrain")
    outlets = {t.task_id: _uris(t.outlets) for t in dag.tasks if t.outlets}
    assert outlets == {
        "item2vec_samples": [f"{LAKE}/item2vec_pairs", f"{LAKE}/item2vec_cbow", f"{LAKE}/item_popularity"],
        "retrieval_samples": [f"{LAKE}/retrieval_samples", f"{LAKE}/recall_eval"],
        "ranking_samples": [f"{LAKE}/ranking_samples"],
        # Through an alias: the task emits the release event itself, and only when it promoted.
        **{f"promote_{m}": [f"alias:recpipe-release-{m}"] for m in catalogue.RECALL_MODELS},
    }


def test_the_serving_refresh_is_scheduled_on_any_recall_release():
    from airflow.sdk import Asset, AssetAny

    dag = load_dag("index_serving_refresh")
    assert dag.timetable.asset_condition == AssetAny(*[Asset(f"{RELEASE}/{m}") for m in catalogue.RECALL_MODELS])
    assert {t.task_id for t in dag.tasks} == {f"refresh_{m}" for m in catalogue.RECALL_MODELS}
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"


def _asset_events(uri: str, run_id: str) -> list[dict]:
    """``extra`` of the events of one asset that one DAG run emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        query = query.filter(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
        return [event.extra for event in query.order_by(AssetEvent.id)]


def test_a_run_emits_the_day_of_each_training_set_and_only_the_releases_it_promoted(cfg, airflow_db, monkeypatch):
    """The real DAG's tasks under ``dag.test()``, their steps stubbed: two_tower is promoted, youtube_dnn is not."""
    monkeypatch.setenv("RECPIPE_SPARK", "inprocess")
    monkeypatch.setattr(task_functions, "run_spark_job", lambda name, ds: f"lake/{name}/ds={ds}")
    monkeypatch.setattr(task_functions, "train", lambda model, ds, run_id: {"run_id": f"run-{model}"})
    monkeypatch.setattr(task_functions, "build_index", lambda model, ds, trained: {"index_version": 4})
    monkeypatch.setattr(task_functions, "evaluate_champion", lambda model, ds, trained: {})
    monkeypatch.setattr(task_functions, "gate", lambda model, trained: {"passed": model == "two_tower"})
    outcome = {"two_tower": {"promoted": True, "model_version": 7, "index_version": 4}}
    monkeypatch.setattr(task_functions, "promote", lambda model, verdict, run_id: outcome.get(model, {"promoted": False}))
    dag = load_dag("nightly_retrain")
    chains = [f"{step}_{m}" for m in ("two_tower", "youtube_dnn") for step in ("train", "build_index", "evaluate", "gate")]
    tasks = ["ranking_samples", *chains, "promote_two_tower", "promote_youtube_dnn"]
    run = dag.partial_subset(tasks, include_upstream=False).test(logical_date=datetime(2026, 11, 7, tzinfo=UTC))
    assert run.state == "success"

    partition = f"{cfg.lake_root}/training/ranking_samples/ds=2026-11-07"
    day = {"ds": "2026-11-07", "partition": partition, "airflow_run_id": run.run_id}
    assert _asset_events(f"{LAKE}/ranking_samples", run.run_id) == [day]
    assert _asset_events(f"{RELEASE}/two_tower", run.run_id) == [
        {"ds": "2026-11-07", "model": "two_tower", "model_version": 7, "index_version": 4, "airflow_run_id": run.run_id}
    ]
    assert _asset_events(f"{RELEASE}/youtube_dnn", run.run_id) == []  # its gate failed: the champion did not change


def _registered_item2vec_release(cfg, monkeypatch, tower_version: int = 1) -> None:
    """item2vec v1 with a real FAISS index (v1) built from its vectors; the champion is (``tower_version``, index v1)."""
    monkeypatch.setattr(build, "_inputs", lambda *_: _inputs())
    run_id = _release(cfg, "item2vec", "2026-11-05", {"recall_at_50": 0.3}, "none")
    build.build_and_register("item2vec", _cfg(cfg), "2026-11-05", run_id)
    if tower_version != 1:
        _release(cfg, "item2vec", "2026-11-05", {"recall_at_50": 0.3}, "1")
    release.commit(cfg, release.Release("item2vec", tower_version, 1, "2026-11-05"), action="promote")


def test_the_refresh_loads_the_champion_index_and_records_it(cfg, airflow_db, monkeypatch):
    import json

    _registered_item2vec_release(cfg, monkeypatch)
    dag = load_dag("index_serving_refresh")
    run = dag.partial_subset(["refresh_item2vec"], include_upstream=False).test(logical_date=datetime(2026, 11, 8, tzinfo=UTC))
    assert run.state == "success"  # a manual run (no triggering events) refreshes its models
    record = json.loads((Path(cfg.lake_root) / "reports/serving_refresh/ds=2026-11-05/item2vec.json").read_text())
    assert {k: record[k] for k in ("model", "model_version", "index_version", "ds", "airflow_run_id")} == {
        "model": "item2vec",
        "model_version": 1,
        "index_version": 1,
        "ds": "2026-11-05",
        "airflow_run_id": run.run_id,
    }
    assert record["n_items"] == record["ids"] == len(_inputs()[0]) and record["factory"] == "IVF32,Flat"
    assert record["triggered_by"] == []


def test_an_asset_triggered_refresh_names_its_events_and_skips_the_models_that_did_not_change(cfg, monkeypatch):
    from types import SimpleNamespace

    from airflow.sdk import Asset
    from airflow.sdk.exceptions import AirflowSkipException

    _registered_item2vec_release(cfg, monkeypatch)
    refresh = {m: load_dag("index_serving_refresh").get_task(f"refresh_{m}").python_callable for m in ("item2vec", "two_tower")}
    extra = {"ds": "2026-11-05", "model": "item2vec", "model_version": 1, "index_version": 1}
    events = {Asset(f"{RELEASE}/item2vec"): [SimpleNamespace(extra=extra)]}  # the run's triggering_asset_events
    assert refresh["item2vec"]("item2vec", run_id="asset_triggered__1", triggering_asset_events=events)["triggered_by"] == [extra]
    with pytest.raises(AirflowSkipException, match="the release of two_tower did not change"):
        refresh["two_tower"]("two_tower", run_id="asset_triggered__1", triggering_asset_events=events)


def test_the_refresh_refuses_an_index_built_from_another_tower(cfg, monkeypatch):
    _registered_item2vec_release(cfg, monkeypatch, tower_version=2)  # v2 serving with v1's index: a broken release
    with pytest.raises(artifact.IndexVersionMismatch, match="built from item2vec v1 vectors; the serving tower is v2"):
        task_functions.refresh_serving_index("item2vec", "manual__1")
    assert not (Path(cfg.lake_root) / "reports" / "serving_refresh").exists()  # nothing recorded as served
