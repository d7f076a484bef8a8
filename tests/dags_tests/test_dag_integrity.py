"""Every DAG parses without import errors and follows the house rules (tags, retries, pools, no parse-time work)."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from airflow.models import DagBag

from training.catalogue import INDEXED_MODELS, MODELS, RANKING_MODELS

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(DAGS), known_pools={"default_pool", "gpu"})


def test_no_import_errors_or_warnings(dagbag):
    assert dagbag.import_errors == {}
    assert not dagbag.dag_warnings
    assert set(dagbag.dags) == {"nightly_retrain", "index_serving_refresh"}


def test_every_dag_has_tags_retries_and_one_active_run(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.default_args.get("retries", 0) >= 1, dag_id
        assert dag.max_active_runs == 1 and not dag.catchup, dag_id


def test_nightly_retrain_shape(dagbag):
    dag = dagbag.dags["nightly_retrain"]
    tasks = {t.task_id: t for t in dag.tasks}
    for model in ("item2vec", *RANKING_MODELS):  # each catalogue model is its own task chain in the gpu pool
        assert tasks[f"train_{model}"].upstream_task_ids == {"validate_features"}
        for step in ("train", "evaluate"):
            assert tasks[f"{step}_{model}"].pool == "gpu"
        assert tasks[f"gate_{model}"].upstream_task_ids >= {f"evaluate_{model}"}
        assert tasks[f"promote_{model}"].upstream_task_ids == {f"gate_{model}"}
    assert tasks["build_index_item2vec"].pool == "gpu"
    assert tasks["train_item2vec"].upstream_task_ids == {"validate_features"}
    assert tasks["train_two_tower"].upstream_task_ids == {"validate_features", "promote_item2vec"}
    assert tasks["validate_features"].upstream_task_ids == {"item2vec_samples", "ranking_samples", "retrieval_samples"}
    assert tasks["ranking_samples"].upstream_task_ids == {"daily_aggregates"}
    assert tasks["retrieval_samples"].upstream_task_ids == {"sessions"}
    assert tasks["daily_aggregates"].upstream_task_ids == {"validate_events"}
    assert tasks["stage_events"].upstream_task_ids == {"wait_for_raw_events"}
    assert tasks["validate_events"].upstream_task_ids == {"stage_events"}
    assert tasks["sessions"].upstream_task_ids == {"validate_events"}
    sensor = tasks["wait_for_raw_events"]  # reschedule mode: no worker slot held while the logs are late
    assert (sensor.mode, sensor.timeout, sensor.poke_interval) == ("reschedule", 6 * 3600, 300)
    assert tasks["validate_events"].retries == 0  # a failed data check is not retried
    promotions = {f"promote_{model}" for model in MODELS}
    assert tasks["summary"].upstream_task_ids == promotions == tasks["run_card"].upstream_task_ids
    # The card is written whatever failed; the summary, also a leaf, still fails the run when a model failed.
    assert tasks["run_card"].trigger_rule == "all_done" and tasks["summary"].trigger_rule == "all_success"
    assert {t.task_id for t in dag.tasks if not t.downstream_task_ids} == {"summary", "run_card"}


def test_only_the_gpu_steps_take_a_gpu_slot(dagbag):
    tasks = dagbag.dags["nightly_retrain"].tasks
    gpu = {t.task_id for t in tasks if t.pool == "gpu"}
    steps = {f"{step}_{model}" for step in ("train", "evaluate") for model in MODELS}
    assert gpu == steps | {f"build_index_{model}" for model in INDEXED_MODELS}
    assert {t.pool for t in tasks if t.task_id not in gpu} == {"default_pool"}


@pytest.mark.parametrize("training", ["local", "kubernetes"])
def test_parsing_touches_no_connection_or_variable(monkeypatch, training):
    from airflow.sdk import BaseHook, Variable

    def refuse(*args, **kwargs):
        raise AssertionError("connection or Variable accessed at parse time")

    monkeypatch.setattr(BaseHook, "get_connection", refuse)
    monkeypatch.setattr(Variable, "get", refuse)
    monkeypatch.setenv("RECPIPE_TRAINING", training)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}


@pytest.mark.parametrize("training", ["local", "kubernetes"])
def test_parsing_imports_no_heavy_library(training):
    """DAG parsing happens often: it must not import Spark, TensorFlow, MLflow, GX, FAISS, or the step code.

    The model catalogue (``training.catalogue``, stdlib only) is the one module of ``training`` it reads.
    (The Kubernetes client is imported either way: the Spark provider imports it when it is installed.)
    """
    code = (
        "import sys; from airflow.models import DagBag; "
        f"bag = DagBag(dag_folder={str(DAGS)!r}); assert not bag.import_errors, bag.import_errors; "
        "heavy = {'pyspark', 'tensorflow', 'keras', 'mlflow', 'great_expectations', 'faiss', 'xgboost', "
        "'indexing', 'validation', 'reporting'}; "
        "steps = {m for m in sys.modules if m.startswith('training.') and m != 'training.catalogue'}; "
        "print(sorted((heavy & {m.split('.')[0] for m in sys.modules}) | steps))"
    )
    env = {**os.environ, "RECPIPE_TRAINING": training}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_each_run_processes_the_day_that_has_ended(dagbag):
    from airflow.timetables.base import TimeRestriction

    dag = dagbag.dags["nightly_retrain"]
    start = datetime(2026, 11, 21, tzinfo=UTC)
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=start, latest=None, catchup=True)
    )
    # The run for ds=2026-11-21 covers that whole calendar day and starts only after it is over,
    # so a backfill's --from-date/--to-date days are exactly the days processed.
    assert info.logical_date == datetime(2026, 11, 21, tzinfo=UTC)
    assert info.data_interval.end == datetime(2026, 11, 22, tzinfo=UTC)
    assert info.run_after >= datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize("mode", ["submit", "inprocess"])
def test_spark_mode_picks_the_operator_and_keeps_the_shape(mode):
    """RECPIPE_SPARK chooses spark-submit applications or in-process jobs; the tasks and their order stay."""
    code = (
        "from airflow.models import DagBag; "
        f"bag = DagBag(dag_folder={str(DAGS)!r}, known_pools={{'default_pool', 'gpu'}}); "
        "assert not bag.import_errors, bag.import_errors; d = bag.dags['nightly_retrain']; "
        "t = {x.task_id: x for x in d.tasks}; "
        "print(type(t['stage_events']).__name__, sorted(t['validate_features'].upstream_task_ids), len(t))"
    )
    env = {**os.environ, "RECPIPE_SPARK": mode}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    operator, upstream = out.strip().splitlines()[-1].split(" ", 1)
    assert operator == ("SparkSubmitOperator" if mode == "submit" else "_PythonDecoratedOperator")
    assert "['item2vec_samples', 'ranking_samples', 'retrieval_samples']" in upstream


def test_unknown_spark_mode_is_an_import_error_naming_it():
    code = f"from airflow.models import DagBag; print(list(DagBag(dag_folder={str(DAGS)!r}).import_errors.values()))"
    env = {**os.environ, "RECPIPE_SPARK": "yarn"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "RECPIPE_SPARK must be one of submit, inprocess; received 'yarn'" in out


def test_a_deployment_can_train_a_subset_of_the_catalogue():
    """RECPIPE_MODELS names the models a deployment trains (the backfill tests train one of each kind)."""
    code = (
        "from airflow.models import DagBag; "
        f"bag = DagBag(dag_folder={str(DAGS)!r}, known_pools={{'default_pool', 'gpu'}}); "
        "assert not bag.import_errors, bag.import_errors; d = bag.dags['nightly_retrain']; "
        "print(sorted(t.task_id for t in d.tasks if t.pool == 'gpu'), sorted(d.get_task('summary').upstream_task_ids))"
    )
    env = {**os.environ, "RECPIPE_MODELS": "deepfm, two_tower"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    gpu = "['build_index_two_tower', 'evaluate_deepfm', 'evaluate_two_tower', 'train_deepfm', 'train_two_tower']"
    assert out.strip().splitlines()[-1] == f"{gpu} ['promote_deepfm', 'promote_two_tower']"
    code = f"from airflow.models import DagBag; print(list(DagBag(dag_folder={str(DAGS)!r}).import_errors.values()))"
    env = {**os.environ, "RECPIPE_MODELS": "deepfm,dfm"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "RECPIPE_MODELS names unknown models ['dfm']; expected some of ['item2vec'" in out
