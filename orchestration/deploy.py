"""Deployment settings of the nightly DAG: how long it waits for the logs, where GPU steps run, who goes first.

Each setting is an environment variable of the Airflow deployment, read when the DAG is parsed; an invalid
value is an import error of the DAG that names the variable, the value received and what was expected.
Stdlib only: parsing the DAG stays cheap.

- ``RECPIPE_SPARK``: ``submit`` (default) runs each Spark job as a spark-submit application through the
  ``spark_default`` connection; ``inprocess`` runs its ``run()`` on a SparkSession of the task's process.
  ``SPARK_CONF`` are the jobs' Spark settings in either mode.
- ``RECPIPE_RAW_WAIT_TIMEOUT`` (seconds, default 21600 = 6 h) and ``RECPIPE_RAW_POKE_INTERVAL`` (seconds,
  default 300): how long ``wait_for_raw_events`` waits, in reschedule mode, for ``raw/events/ds=D/_SUCCESS``.
- ``RECPIPE_TRAINING``: ``local`` (default) runs train, build_index and evaluate as Python tasks (a subprocess,
  or in process under ``RECPIPE_STEPS=inprocess``; ``recpipe.runner``); ``kubernetes`` runs each as a pod of
  the GPU image through ``KubernetesPodOperator``, with these settings:

  ``RECPIPE_TRAIN_IMAGE`` (default ``recpipe-train-gpu:<recpipe version>``), ``RECPIPE_K8S_NAMESPACE``
  (``recpipe``), ``RECPIPE_K8S_SECRET`` (``recpipe-training-env``: the Kubernetes Secret whose keys become the
  pod's environment, e.g. ``MLFLOW_TRACKING_URI``, ``MLFLOW_ARTIFACT_ROOT``, object-store credentials; no
  secret value is ever in the DAG), ``RECPIPE_K8S_CONFIG`` (the config YAML inside the image,
  ``/opt/recpipe/recpipe/conf/production.yaml``), ``RECPIPE_POD_STARTUP_TIMEOUT`` (seconds a pod may stay
  Pending, waiting for a GPU node or pulling the image, before the task fails: 1800), ``RECPIPE_POD_CPU``
  (``4``) and ``RECPIPE_POD_MEMORY`` (``16Gi``), requested and limited, beside ``nvidia.com/gpu: 1``.
- Backfills queue behind the nightly run: ``backfill_priority`` is the rule that the Airflow cluster policy
  ``airflow_config/airflow_local_settings.py`` applies to every task instance.
- ``DAG_DEFAULTS``: what every recpipe DAG shares (first day, owner, retries, one run at a time).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from importlib import metadata

from recpipe.runner import RESULT_FILE_ENV

# The @dag arguments every recpipe DAG shares: no run before the project's first day and no catch-up of missed
# days on unpause (backfills are explicit), one run at a time (a day's window reads the days before it; releases
# are served in order), and two retries five minutes apart for transient failures (a lost executor, a registry
# write timing out). Airflow copies default_args into each DAG, so sharing the dict is safe.
DAG_DEFAULTS = {
    "start_date": datetime(2026, 11, 1),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": {"owner": "recpipe", "retries": 2, "retry_delay": timedelta(minutes=5)},
}


# How the DAG runs its Spark jobs (a deployment setting, read when the DAG is parsed): "submit", one
# spark-submit application per job through the ``spark_default`` connection (any cluster); "inprocess",
# the job's ``run()`` on a SparkSession of the task's own process, kept for the process's next jobs. Under
# ``airflow dags test`` (``make demo``), which runs a whole DAG run in one process, the six jobs then share
# one warmed-up JVM instead of starting six: most of a small day's Spark time.
SPARK_ENV = "RECPIPE_SPARK"
SPARK_MODES = ("submit", "inprocess")
# Spark settings of the nightly jobs, in either mode.
SPARK_CONF = {"spark.sql.shuffle.partitions": "8", "spark.ui.showConsoleProgress": "false"}


def spark_mode() -> str:
    """The configured ``RECPIPE_SPARK`` mode ("submit" when unset)."""
    mode = os.environ.get(SPARK_ENV) or "submit"
    if mode not in SPARK_MODES:
        raise ValueError(f"{SPARK_ENV} must be one of {', '.join(SPARK_MODES)}; received {mode!r}")
    return mode


RAW_WAIT_TIMEOUT_ENV = "RECPIPE_RAW_WAIT_TIMEOUT"
RAW_POKE_INTERVAL_ENV = "RECPIPE_RAW_POKE_INTERVAL"
TRAINING_ENV = "RECPIPE_TRAINING"
TRAINING_MODES = ("local", "kubernetes")
# Where KubernetesPodOperator reads a pod's XCom from (its sidecar mounts /airflow/xcom).
POD_XCOM_FILE = "/airflow/xcom/return.json"
# The GPU steps a training chain runs, and their modules (``python -m MODULE``); orchestration.tasks runs the
# same modules with the same arguments in ``local`` mode (a test compares the two).
GPU_STEP_MODULES = {"train": "training.train", "build_index": "indexing.build", "evaluate": "training.evaluate"}
# Backfill runs' task instances lose this much priority weight: more than any DAG's whole downstream sum, so
# each of them queues behind every task instance of a scheduled or manual run competing for a slot.
BACKFILL_WEIGHT_DROP = 100_000
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RawWait:
    """How ``wait_for_raw_events`` waits for the day's raw events (seconds)."""

    timeout: float = 6 * 3600
    poke_interval: float = 300


@dataclasses.dataclass(frozen=True, kw_only=True)
class Training:
    """Where the GPU steps (train, build_index, evaluate) run, and the pod they run in on Kubernetes."""

    mode: str = "local"
    image: str = ""
    namespace: str = "recpipe"
    secret: str = "recpipe-training-env"
    config_path: str = "/opt/recpipe/recpipe/conf/production.yaml"
    startup_timeout: int = 1800
    cpu: str = "4"
    memory: str = "16Gi"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds; received {raw!r}")
    return value


def _quantity(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    if not _QUANTITY.fullmatch(value):
        raise ValueError(f"{name} must be a Kubernetes quantity such as 4, 500m or 16Gi; received {value!r}")
    return value


def raw_wait(env: Mapping[str, str] | None = None) -> RawWait:
    """The configured wait for ``raw/events/ds=D/_SUCCESS`` (6 h, checked every 5 min, by default)."""
    env = os.environ if env is None else env
    default = RawWait()
    return RawWait(
        timeout=_seconds(env, RAW_WAIT_TIMEOUT_ENV, default.timeout),
        poke_interval=_seconds(env, RAW_POKE_INTERVAL_ENV, default.poke_interval),
    )


def default_image() -> str:
    """``recpipe-train-gpu:<installed recpipe version>``: the name ``docker/train-gpu/Dockerfile`` is built under."""
    try:
        version = metadata.version("recpipe")
    except metadata.PackageNotFoundError:
        version = "latest"
    return f"recpipe-train-gpu:{version}"


def training(env: Mapping[str, str] | None = None) -> Training:
    """The configured ``RECPIPE_TRAINING`` mode ("local" when unset) and its pod settings."""
    env = os.environ if env is None else env
    mode = env.get(TRAINING_ENV) or "local"
    if mode not in TRAINING_MODES:
        raise ValueError(f"{TRAINING_ENV} must be one of {', '.join(TRAINING_MODES)}; received {mode!r}")
    default = Training()
    return Training(
        mode=mode,
        image=env.get("RECPIPE_TRAIN_IMAGE") or default_image(),
        namespace=env.get("RECPIPE_K8S_NAMESPACE") or default.namespace,
        secret=env.get("RECPIPE_K8S_SECRET") or default.secret,
        config_path=env.get("RECPIPE_K8S_CONFIG") or default.config_path,
        startup_timeout=int(_seconds(env, "RECPIPE_POD_STARTUP_TIMEOUT", default.startup_timeout)),
        cpu=_quantity(env, "RECPIPE_POD_CPU", default.cpu),
        memory=_quantity(env, "RECPIPE_POD_MEMORY", default.memory),
    )


def pod_command(step: str, model: str) -> list[str]:
    """``python -m MODULE ARGS`` of a GPU step as a pod runs it, templated with the run's ``ds`` and ``run_id``.

    After training, the steps name the challenger's MLflow run: the ``run_id`` of the ``train_<model>``
    task's result (its XCom).
    """
    if step not in GPU_STEP_MODULES:
        raise ValueError(f"unknown GPU step {step!r}; expected one of {list(GPU_STEP_MODULES)}")
    args = ["--model", model, "--ds", "{{ ds }}"]
    if step == "train":
        args += ["--airflow-run-id", "{{ run_id }}"]
    else:
        args += ["--run-id", f"{{{{ ti.xcom_pull(task_ids='train_{model}')['run_id'] }}}}"]
    return ["python", "-m", GPU_STEP_MODULES[step], *args]


def pod_env(settings: Training) -> dict[str, str]:
    """Plain (non-secret) environment of a GPU pod: the config to load and where to leave the result for XCom."""
    return {"RECPIPE_CONFIG": settings.config_path, RESULT_FILE_ENV: POD_XCOM_FILE}


def is_backfill(run_type: str | None, run_id: str | None) -> bool:
    """Whether a DAG run is a backfill: by its run type, else by its run id (``backfill__<date>``)."""
    if run_type:
        return str(getattr(run_type, "value", run_type)) == "backfill"
    return bool(run_id) and run_id.startswith("backfill__")


def backfill_priority(weight: int, run_type: str | None, run_id: str | None) -> int:
    """The priority weight a task instance should have: ``weight``, less ``BACKFILL_WEIGHT_DROP`` in a backfill.

    Idempotent (Airflow may apply its mutation hook more than once to one task instance): a weight that is
    already negative has been lowered. The DAGs here only have positive weights.
    """
    if weight > 0 and is_backfill(run_type, run_id):
        return weight - BACKFILL_WEIGHT_DROP
    return weight
