"""nightly_retrain: one day's retrain of every recall and ranking model, gated, then promoted.

wait for raw/events/ds=D/_SUCCESS -> Spark: stage events (bad rows quarantined with a reason, their share
gated) -> validate staged events (GX; quarantine counts to MLflow) -> Spark: sessions and daily aggregates
-> item2vec and retrieval samples (from sessions), ranking samples (from 30 days of daily aggregates)
-> validate features (GX) -> per model, in the ``gpu`` pool:
train -> (index: build, tune, validate, register) -> evaluate champion on the same eval set -> gate -> promote
-> summary, and the run card (HTML, in MLflow), written even when a model failed.
Every task reads its own day's partitions and overwrites its own, so reruns and backfills are idempotent.
The run for day D starts at 00:00 UTC on D+1 and waits for D's logs.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import PokeReturnValue, chain, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from recpipe.pipeline import SPARK_CONF, spark_mode
from recpipe.tracking import RANKING_MODELS, RECALL_MODELS

GPU_STEP_TIMEOUT = timedelta(hours=3)
SPARK_MODE = spark_mode()  # RECPIPE_SPARK: a deployment setting, like the connection (see recpipe.pipeline)


@task
def _spark_in_process(name: str, ds: str | None = None) -> str:
    from recpipe.pipeline import run_spark_job

    return run_spark_job(name, ds)


def _spark_job(name: str):
    spec = importlib.util.find_spec(f"spark_jobs.{name}")
    if spec is None or spec.origin is None:
        raise ImportError(f"spark job module spark_jobs.{name} is not installed")
    if SPARK_MODE == "inprocess":
        return _spark_in_process.override(task_id=name)(name)
    return SparkSubmitOperator(
        task_id=name,
        application=spec.origin,
        application_args=["--ds", "{{ ds }}"],
        conn_id="spark_default",
        name=f"recpipe-{name}-{{{{ ds }}}}",
        conf=SPARK_CONF,
    )


@dag(
    dag_id="nightly_retrain",
    # One run per day D, after D has ended: ds is the data interval's start, the day whose logs to use.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "recpipe", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["recpipe", "nightly", "training"],
    doc_md=__doc__,
)
def nightly_retrain():
    @task.sensor(mode="reschedule", poke_interval=300, timeout=6 * 3600)
    def wait_for_raw_events(ds: str | None = None) -> PokeReturnValue:
        from recpipe.pipeline import raw_ready

        return PokeReturnValue(is_done=raw_ready(ds))

    @task(retries=0)
    def validate_events(ds: str | None = None, run_id: str | None = None) -> dict:
        from recpipe.pipeline import validate_events as check_events

        return check_events(ds, run_id)

    @task(retries=0)
    def validate_features(ds: str | None = None, run_id: str | None = None) -> list[dict]:
        from recpipe.pipeline import validate_features as check_features

        return check_features(ds, run_id)

    @task(pool="gpu", execution_timeout=GPU_STEP_TIMEOUT)
    def train(model: str, ds: str | None = None, run_id: str | None = None) -> dict:
        from recpipe.pipeline import train as do_train

        return do_train(model, ds, run_id)

    @task(pool="gpu", execution_timeout=GPU_STEP_TIMEOUT)
    def build_index(model: str, trained: dict, ds: str | None = None) -> dict:
        from recpipe.pipeline import build_index as do_build

        return do_build(model, ds, trained)

    @task(pool="gpu", execution_timeout=GPU_STEP_TIMEOUT)
    def evaluate(model: str, trained: dict, ds: str | None = None) -> dict:
        from recpipe.pipeline import evaluate_champion

        return evaluate_champion(model, ds, trained)

    @task
    def gate(model: str, trained: dict) -> dict:
        from recpipe.pipeline import gate as do_gate

        return do_gate(model, trained)

    @task
    def promote(model: str, verdict: dict, run_id: str | None = None) -> dict:
        from recpipe.pipeline import promote as do_promote

        return do_promote(model, verdict, run_id)

    # Every model's chain ends here, whatever happened to it: the card explains failures too. It is a
    # leaf beside ``summary``, which still needs every promotion, so a failed model still fails the run.
    @task(trigger_rule="all_done")
    def run_card(ds: str | None = None, run_id: str | None = None) -> dict:
        from recpipe.pipeline import write_run_card

        return write_run_card(ds, run_id)

    @task
    def summary(ds: str | None = None, run_id: str | None = None) -> str:
        from recpipe.pipeline import write_summary

        return write_summary(ds, run_id)

    features = validate_features()
    sessions, daily = _spark_job("sessions"), _spark_job("daily_aggregates")
    chain(wait_for_raw_events(), _spark_job("stage_events"), validate_events(), [sessions, daily])
    sessions >> [_spark_job("item2vec_samples"), _spark_job("retrieval_samples")] >> features
    daily >> _spark_job("ranking_samples") >> features
    outcomes, promoted = [], {}
    for model in RECALL_MODELS + RANKING_MODELS:
        trained = train.override(task_id=f"train_{model}")(model)
        features >> trained
        if model == "two_tower":  # its item tower reads the Item2Vec champion: after tonight's promotion decision
            promoted["item2vec"] >> trained
        ready = [trained]
        if model in RECALL_MODELS:
            ready.append(build_index.override(task_id=f"build_index_{model}")(model, trained))
        evaluated = evaluate.override(task_id=f"evaluate_{model}")(model, trained)
        verdict = gate.override(task_id=f"gate_{model}")(model, trained)
        chain(ready, evaluated, verdict)
        promoted[model] = promote.override(task_id=f"promote_{model}")(model, verdict)
        outcomes.append(promoted[model])
    chain(outcomes, summary())
    chain(outcomes, run_card())


nightly_retrain()
