"""End to end: the nightly DAG on tiny generated data with ``dag.test()``, two days in a row."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pytest

from indexing import release
from recpipe import lake, tracking
from tests.e2e_helpers import OUTPUTS, airflow, fingerprint, make_lake
from training import catalogue

pytestmark = pytest.mark.slow
DAGS = Path(__file__).resolve().parents[1] / "dags"


def _run_day(ds: str):
    from airflow.models import DagBag

    dag = DagBag(dag_folder=str(DAGS), known_pools={"default_pool", "gpu"}).get_dag("nightly_retrain")
    return dag.test(logical_date=datetime.fromisoformat(ds).replace(tzinfo=UTC))


def test_two_nightly_runs_write_log_register_and_promote(cfg, spark, tmp_path, monkeypatch):
    DAY1, DAY2 = make_lake(cfg, days=5, history=3, spark=spark)[3:]
    airflow("db", "migrate")

    first = _run_day(DAY1)
    assert first.state == "success"
    for contract in OUTPUTS:
        assert lake.partition_ready(cfg.lake_root, contract, DAY1), contract.name
    summary = f"{lake.partition_uri(cfg.lake_root, 'reports/nightly', DAY1)}/summary.json"
    assert {m["model"] for m in json.load(open(summary))["models"]} == set(catalogue.MODELS)
    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    data_runs = mlflow.search_runs(filter_string=f"tags.stage = 'data' and tags.ds = '{DAY1}'", output_format="list")
    assert len(data_runs) == 1 and data_runs[0].data.metrics["quarantine_malformed_json"] == 0
    assert data_runs[0].data.metrics["raw_rows"] > 0
    for model in catalogue.MODELS:
        champion = client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion")
        run = client.get_run(champion.run_id)
        assert run.data.tags["ds"] == DAY1 and run.data.tags["champion_version"] == "none"
        assert run.data.tags["gate_passed"] == "true" and run.data.tags["promoted"] == "true"
        assert run.data.params["etl.lookback_days"] == "2"
    index = client.get_model_version_by_alias(tracking.index_name(cfg, "item2vec"), "champion")
    assert index.tags["model_version"] == "1"
    for model in catalogue.RECALL_MODELS:  # each index was tuned, validated and logged under the same names
        run = client.get_run(client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion").run_id)
        for name in ("index_recall_at_50", "index_latency_ms_p99_batch1", "index_city_recall_at_50", "index_qps_batch256"):
            assert name in run.data.metrics, (model, name)
        assert run.data.tags["index_factory"] == cfg.index.factory and "index_error" not in run.data.tags
    assert [e["action"] for e in release.history(cfg, "two_tower")] == ["promote"]
    card = f"{lake.partition_uri(cfg.lake_root, 'reports/nightly', DAY1)}/run_card.html"
    page = open(card, encoding="utf-8").read()
    assert all(f'id="model-{model}"' in page for model in catalogue.MODELS) and "<svg" in page
    reports = mlflow.search_runs(filter_string=f"tags.stage = 'report' and tags.ds = '{DAY1}'", output_format="list")
    assert len(reports) == 1 and reports[0].info.run_name == f"run card ds={DAY1}"
    i2v = client.get_run(client.get_model_version_by_alias(tracking.model_name(cfg, "item2vec"), "champion").run_id)
    assert i2v.data.metrics["recall_at_50"] > i2v.data.metrics["popularity_recall_at_50"]
    assert 0 < i2v.data.metrics["recall_at_50"] <= i2v.data.metrics["oracle_recall_at_50"] + 0.1
    for model in catalogue.RECALL_MODELS:  # the same metric names across recall models, for MLflow's compare view
        run = client.get_run(client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion").run_id)
        names = {
            "recall_at_10",
            "hr_at_100",
            "ndcg_at_50",
            "coverage_at_50",
            "mean_target_rank",
            "popularity_recall_at_50",
            "itemknn_recall_at_50",
        }
        assert names <= set(run.data.metrics), model
        assert any(name.startswith("recall_at_50__city_") for name in run.data.metrics), model

    before = {c.name: fingerprint(cfg, c.name, DAY1) for c in OUTPUTS}
    # Day 2 with a ranking floor no model can reach: every ranking model must fail its gate and stay at v1.
    strict = tmp_path / "strict.yaml"
    strict.write_text(open(os.environ["RECPIPE_CONFIG"]).read().replace("min_auc: 0.5", "min_auc: 0.99"))
    monkeypatch.setenv("RECPIPE_CONFIG", str(strict))
    second = _run_day(DAY2)
    assert second.state == "success"
    expected = {"item2vec": ("true", "2"), **{model: ("false", "1") for model in catalogue.RANKING_MODELS}}
    for model in catalogue.MODELS:
        runs = mlflow.search_runs(filter_string=f"tags.ds = '{DAY2}' and tags.model = '{model}'", output_format="list")
        assert len(runs) == 1
        tags, metrics = runs[0].data.tags, runs[0].data.metrics
        assert tags["champion_version"] == "1"  # day 1's release was the champion to beat
        key = "auc" if model in catalogue.RANKING_MODELS else "recall_at_50"
        assert f"champion_{key}" in metrics
        # The tower models may pass or fail their regression gate on this tiny lake; they must act on it.
        passed, champion = expected.get(model, (tags["gate_passed"], "2" if tags["gate_passed"] == "true" else "1"))
        assert (tags["gate_passed"], tags["promoted"]) == (passed, passed), tags.get("gate_reasons")
        assert str(client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion").version) == champion
    assert "auc=" in runs[0].data.tags["gate_reasons"] and "< floor 0.9900" in runs[0].data.tags["gate_reasons"]
    for model in catalogue.RANKING_MODELS:  # the same metric names across ranking models, for MLflow's compare view
        run = client.get_run(client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion").run_id)
        names = {"auc", "logloss", "gauc", "calibration", "lr_auc", "oracle_auc", "auc__user_type_C", "train_examples_per_second"}
        assert names <= set(run.data.metrics), (model, names - set(run.data.metrics))
    assert client.get_model_version_by_alias(tracking.index_name(cfg, "item2vec"), "champion").tags["model_version"] == "2"
    events = release.history(cfg, "item2vec")
    assert [(e["from_model_version"], e["to_model_version"], e["status"]) for e in events] == [
        ("none", "1", "completed"),
        ("1", "2", "completed"),
    ]
    assert events[1]["actor"].startswith("airflow nightly_retrain ") and events[1]["to_ds"] == DAY2
    assert [e["to_model_version"] for e in release.history(cfg, "wide_deep")] == ["1"]  # its failed gate released nothing
    # Day 2's run wrote day 2's partitions and left day 1's untouched.
    assert {c.name: fingerprint(cfg, c.name, DAY1) for c in OUTPUTS} == before
