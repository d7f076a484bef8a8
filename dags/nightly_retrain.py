"""nightly_retrain: one day's retrain of every recall and ranking model, gated, then promoted.

wait for raw/events/ds=D/_SUCCESS -> Spark: stage events (bad rows quarantined with a reason, their share
gated) -> validate staged events (GX; quarantine counts to MLflow) -> Spark: sessions and daily aggregates
-> item2vec and retrieval samples (from sessions), ranking samples (from 30 days of daily aggregates)
-> validate features (GX) -> per model, in the ``gpu`` pool:
train -> (index: build, tune, validate, register) -> evaluate champion on the same eval set -> gate -> promote
-> summary, and the run card (HTML, in MLflow), written even when a model failed.
Every task reads its own day's partitions and overwrites its own, so reruns and backfills are idempotent.
The run for day D starts at 00:00 UTC on D+1 and waits for D's logs (``RECPIPE_RAW_WAIT_TIMEOUT``, 6 h by
default); past that it fails naming the missing ``_SUCCESS`` marker.

Assets: each training-set job publishes the datasets it wrote (``x-recpipe://lake/training/...``, the day in
the event's ``extra``); ``promote_<recall model>`` publishes ``x-recpipe://release/<model>`` only when it
promoted a release (through an asset alias, so an unchanged champion emits nothing), which
``index_serving_refresh`` is scheduled on. GPU steps run locally or as Kubernetes pods (``RECPIPE_TRAINING``,
``orchestration.deploy``). The Spark chain and its assets come from the dataset registry
(``orchestration.tasks.spark_chain``), the model chains from the model catalogue.
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, AssetAlias, BaseSensorOperator, Context, chain, dag, task
from airflow.sdk.exceptions import AirflowSensorTimeout
from airflow.timetables.interval import CronDataIntervalTimetable

from orchestration import deploy
from orchestration.deploy import SPARK_CONF
from orchestration.tasks import (
    CHECK_TASKS,
    INDEXED_MODELS,
    TRAINING_SET_OUTPUTS,
    WAIT_FOR_RAW,
    dataset_asset_uri,
    release_asset_uri,
    selected_models,
    spark_chain,
)

GPU_STEP_TIMEOUT = timedelta(hours=3)
# Deployment settings, like the connections: read when the DAG is parsed (orchestration.deploy).
SPARK_MODE = deploy.spark_mode()  # RECPIPE_SPARK
RAW_WAIT = deploy.raw_wait()  # RECPIPE_RAW_WAIT_TIMEOUT, RECPIPE_RAW_POKE_INTERVAL
TRAINING = deploy.training()  # RECPIPE_TRAINING and the pod settings
MODELS = selected_models()  # RECPIPE_MODELS: every catalogue model unless the deployment names a subset
TRAINING_SETS = {job: [Asset(dataset_asset_uri(d)) for d in datasets] for job, datasets in TRAINING_SET_OUTPUTS.items()}
RELEASES = {model: Asset(release_asset_uri(model)) for model in INDEXED_MODELS}
# Promotion emits a release event only when it promoted: through an alias, which emits what the task adds.
RELEASE_ALIASES = {model: AssetAlias(f"recpipe-release-{model}") for model in INDEXED_MODELS}


class RawEventsSensor(BaseSensorOperator):
    """Waits for ``raw/events/ds=D/_SUCCESS``; on timeout, fails naming the day, the wait and the missing marker.

    Airflow's own timeout (measured from the first poke, across reschedules) raises a message without the
    path; it is re-raised with one, still as ``AirflowSensorTimeout``, so the task fails without retrying.
    """

    def poke(self, context: Context) -> bool:
        from orchestration.tasks import raw_ready

        return raw_ready(context["ds"])

    def execute(self, context: Context) -> None:
        try:
            super().execute(context)
        except AirflowSensorTimeout as exc:
            from orchestration.tasks import raw_not_ready

            raise AirflowSensorTimeout(raw_not_ready(context["ds"], self.timeout)) from exc


def _publish_partitions(job: str):
    """``post_execute`` of a training-set job: its assets' events carry the day and the partition written."""

    def publish(context: Context, result=None) -> None:
        from orchestration.tasks import partition_event

        for dataset, asset in zip(TRAINING_SET_OUTPUTS[job], TRAINING_SETS[job], strict=True):
            context["outlet_events"][asset].extra = partition_event(dataset, context["ds"], context["run_id"])

    return publish


@task
def _spark_in_process(name: str, ds: str | None = None) -> str:
    from orchestration.tasks import run_spark_job

    return run_spark_job(name, ds)


def _spark_job(name: str):
    spec = importlib.util.find_spec(f"spark_jobs.{name}")
    if spec is None or spec.origin is None:
        raise ImportError(f"spark job module spark_jobs.{name} is not installed")
    publishes = {}
    if name in TRAINING_SETS:
        publishes = {"outlets": TRAINING_SETS[name], "post_execute": _publish_partitions(name)}
    if SPARK_MODE == "inprocess":
        return _spark_in_process.override(task_id=name, **publishes)(name)
    return SparkSubmitOperator(
        task_id=name,
        application=spec.origin,
        application_args=["--ds", "{{ ds }}"],
        conn_id="spark_default",
        name=f"recpipe-{name}-{{{{ ds }}}}",
        conf=SPARK_CONF,
        **publishes,
    )


def _gpu_pod(step: str, model: str):
    """A GPU step as a pod of the GPU image (``RECPIPE_TRAINING=kubernetes``): its result is the pod's XCom."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    quantities = {"cpu": TRAINING.cpu, "memory": TRAINING.memory}
    return KubernetesPodOperator(
        task_id=f"{step}_{model}",
        name=f"recpipe-{step}-{model}".replace("_", "-"),
        namespace=TRAINING.namespace,
        image=TRAINING.image,
        cmds=deploy.pod_command(step, model),
        env_vars=deploy.pod_env(TRAINING),
        # Every secret (MLflow, object store) comes from the Kubernetes Secret, never from the DAG.
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=TRAINING.secret))],
        container_resources=k8s.V1ResourceRequirements(requests=quantities, limits={**quantities, "nvidia.com/gpu": "1"}),
        tolerations=[k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        # A pod Pending for a GPU node (or pulling the image) fails the task after this, instead of hanging.
        schedule_timeout_seconds=TRAINING.startup_timeout,
        startup_timeout_seconds=TRAINING.startup_timeout,
        get_logs=True,
        on_finish_action="delete_pod",
        do_xcom_push=True,
        pool="gpu",
        execution_timeout=GPU_STEP_TIMEOUT,
    )


@dag(
    dag_id="nightly_retrain",
    # One run per day D, after D has ended: ds is the data interval's start, the day whose logs to use.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    tags=["recpipe", "nightly", "training"],
    **deploy.DAG_DEFAULTS,
    doc_md=__doc__,
)
def nightly_retrain():
    @task(retries=0)
    def validate_events(ds: str | None = None, run_id: str | None = None) -> list[dict]:
        from orchestration.tasks import validate_events as check_events

        return check_events(ds, run_id)

    @task(retries=0)
    def validate_features(ds: str | None = None, run_id: str | None = None) -> list[dict]:
        from orchestration.tasks import validate_features as check_features

        return check_features(ds, run_id)

    @task(pool="gpu", execution_timeout=GPU_STEP_TIMEOUT)
    def train(model: str, ds: str | None = None, run_id: str | None = None) -> dict:
        from orchestration.tasks import train as do_train

        return do_train(model, ds, run_id)

    @task(pool="gpu", execution_timeout=GPU_STEP_TIMEOUT)
    def build_index(model: str, trained: dict, ds: str | None = None) -> dict:
        from orchestration.tasks import build_index as do_build

        return do_build(model, ds, trained)

    @task(pool="gpu", execution_timeout=GPU_STEP_TIMEOUT)
    def evaluate(model: str, trained: dict, ds: str | None = None) -> dict:
        from orchestration.tasks import evaluate_champion

        return evaluate_champion(model, ds, trained)

    @task
    def gate(model: str, trained: dict) -> dict:
        from orchestration.tasks import gate as do_gate

        return do_gate(model, trained)

    @task
    def promote(model: str, verdict: dict, ds: str | None = None, run_id: str | None = None, outlet_events=None) -> dict:
        from orchestration.tasks import promote as do_promote
        from orchestration.tasks import release_event

        outcome = do_promote(model, verdict, run_id)
        if (event := release_event(model, ds, run_id, outcome)) is not None:
            outlet_events[RELEASE_ALIASES[model]].add(RELEASES[model], extra=event)
        return outcome

    # Every model's chain ends here, whatever happened to it: the card explains failures too. It is a
    # leaf beside ``summary``, which still needs every promotion, so a failed model still fails the run.
    @task(trigger_rule="all_done")
    def run_card(ds: str | None = None, run_id: str | None = None) -> dict:
        from orchestration.tasks import write_run_card

        return write_run_card(ds, run_id)

    @task
    def summary(ds: str | None = None, run_id: str | None = None) -> str:
        from orchestration.tasks import write_summary

        return write_summary(ds, run_id)

    def gpu_step(step: str, model: str, trained=None):
        """One GPU step of a model's chain, local task or pod; its result (``XComArg``) either way."""
        if TRAINING.mode == "kubernetes":
            pod = _gpu_pod(step, model)
            if trained is not None:
                trained >> pod
            return pod.output
        local = {"train": train, "build_index": build_index, "evaluate": evaluate}[step].override(task_id=f"{step}_{model}")
        return local(model) if trained is None else local(model, trained)

    data_tasks = {
        WAIT_FOR_RAW: RawEventsSensor(
            task_id=WAIT_FOR_RAW, mode="reschedule", timeout=RAW_WAIT.timeout, poke_interval=RAW_WAIT.poke_interval
        ),
        CHECK_TASKS["events"]: validate_events(),
        CHECK_TASKS["features"]: validate_features(),
    }
    graph = spark_chain()
    for task_id in graph:
        if task_id not in data_tasks:
            data_tasks[task_id] = _spark_job(task_id)
    for task_id, upstream in graph.items():
        for up in upstream:
            data_tasks[up] >> data_tasks[task_id]
    features = data_tasks[CHECK_TASKS["features"]]
    outcomes, promoted = [], {}
    for entry in MODELS:
        model = entry.name
        trained = gpu_step("train", model)
        features >> trained
        if model == "two_tower" and "item2vec" in promoted:
            promoted["item2vec"] >> trained  # its item tower reads the Item2Vec champion: after tonight's promotion
        ready = [trained]
        if entry.has_index:
            ready.append(gpu_step("build_index", model, trained))
        evaluated = gpu_step("evaluate", model, trained)
        verdict = gate.override(task_id=f"gate_{model}")(model, trained)
        chain(ready, evaluated, verdict)
        releases = [RELEASE_ALIASES[model]] if model in RELEASE_ALIASES else []
        promoted[model] = promote.override(task_id=f"promote_{model}", outlets=releases)(model, verdict)
        outcomes.append(promoted[model])
    chain(outcomes, summary())
    chain(outcomes, run_card())


nightly_retrain()
