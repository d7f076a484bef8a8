"""End to end: the nightly DAG on tiny generated data with ``dag.test()``, two days in a row."""

import json
from datetime import UTC, datetime

import mlflow
import pytest

from recpipe import contracts, lake, tracking
from tests.e2e_helpers import airflow, fingerprint, make_lake

pytestmark = pytest.mark.slow

OUTPUTS = [
    contracts.STAGED_EVENTS,
    contracts.SESSIONS,
    contracts.ITEM2VEC_PAIRS,
    contracts.RECALL_EVAL,
    contracts.RANKING_SAMPLES,
]


def _run_day(ds: str):
    from airflow.models import DagBag

    dag = DagBag(dag_folder="dags", known_pools={"default_pool", "gpu"}).get_dag("nightly_retrain")
    return dag.test(logical_date=datetime.fromisoformat(ds).replace(tzinfo=UTC))


def test_two_nightly_runs_write_log_register_and_promote(cfg, spark):
    days = make_lake(cfg, days=4, history=2, spark=spark)
    airflow("db", "migrate")

    first = _run_day(days[2])
    assert first.state == "success"
    for contract in OUTPUTS:
        assert lake.partition_ready(cfg.lake_root, contract, days[2]), contract.name
    summary = f"{lake.partition_uri(cfg.lake_root, 'reports/nightly', days[2])}/summary.json"
    assert {m["model"] for m in json.load(open(summary))["models"]} == set(tracking.MODELS)
    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    for model in tracking.MODELS:
        champion = client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion")
        run = client.get_run(champion.run_id)
        assert run.data.tags["ds"] == days[2] and run.data.tags["champion_version"] == "none"
        assert run.data.tags["gate_passed"] == "true" and run.data.tags["promoted"] == "true"
        assert run.data.params["etl.lookback_days"] == "2"
    index = client.get_model_version_by_alias(tracking.index_name(cfg, "item2vec"), "champion")
    assert index.tags["model_version"] == "1"
    i2v = client.get_run(client.get_model_version_by_alias(tracking.model_name(cfg, "item2vec"), "champion").run_id)
    assert i2v.data.metrics["recall_at_50"] > i2v.data.metrics["popularity_recall_at_50"]
    assert 0 < i2v.data.metrics["recall_at_50"] <= i2v.data.metrics["oracle_recall_at_50"] + 0.1

    before = {c.name: fingerprint(cfg, c.name, days[2]) for c in OUTPUTS}
    second = _run_day(days[3])
    assert second.state == "success"
    for model in tracking.MODELS:
        runs = mlflow.search_runs(filter_string=f"tags.ds = '{days[3]}' and tags.model = '{model}'", output_format="list")
        assert len(runs) == 1
        tags, metrics = runs[0].data.tags, runs[0].data.metrics
        assert tags["champion_version"] == "1"  # the day-3 release was the champion to beat
        key = "auc" if model == "wide_deep" else "recall_at_50"
        assert f"champion_{key}" in metrics
        promoted = tags["promoted"] == "true"
        assert promoted == (tags["gate_passed"] == "true")
        champion = client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion")
        assert str(champion.version) == ("2" if promoted else "1")
    # Day 4's run wrote day 4's partitions and left day 3's untouched.
    assert {c.name: fingerprint(cfg, c.name, days[2]) for c in OUTPUTS} == before
