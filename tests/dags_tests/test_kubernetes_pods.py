"""``RECPIPE_TRAINING=kubernetes``: the GPU steps become pods of the GPU image; the rest of the DAG is unchanged.

The pod is the one ``KubernetesPodOperator`` would submit: its templates rendered with a run's context, then
``build_pod_request_obj(context, dry_run=True)`` (no cluster needed).
"""

import json

import pytest

from orchestration import deploy, tasks
from recpipe import runner
from tests.dags_tests.conftest import load_dag
from training import catalogue

GPU_STEPS = {
    **{f"{step}_{m}": step for m in catalogue.MODELS for step in ("train", "evaluate")},
    **{f"build_index_{m}": "build_index" for m in catalogue.RECALL_MODELS},
}
POD_SETTINGS = {
    "RECPIPE_TRAINING": "kubernetes",
    "RECPIPE_TRAIN_IMAGE": "registry.example/recpipe/train-gpu:1.4.0",
    "RECPIPE_K8S_NAMESPACE": "ml-training",
    "RECPIPE_K8S_SECRET": "recpipe-prod-env",
    "RECPIPE_POD_STARTUP_TIMEOUT": "900",
}
RUN_ID = "scheduled__2026-11-05T00:00:00+00:00"


class _TaskInstance:
    """What the pod's templates and labels read from the task instance: ids, and the trained run's XCom."""

    dag_id, map_index, try_number = "nightly_retrain", -1, 1

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id

    def xcom_pull(self, task_ids: str, **_) -> dict:
        return {"run_id": f"mlflow-run-of-{task_ids}"}


@pytest.fixture
def pod_dag(monkeypatch):
    for name, value in POD_SETTINGS.items():
        monkeypatch.setenv(name, value)
    return load_dag("nightly_retrain")


def _pod(dag, task_id: str):
    task = dag.get_task(task_id)
    context = {"ds": "2026-11-05", "run_id": RUN_ID, "ti": _TaskInstance(task_id), "dag": dag}
    task.render_template_fields(context)
    return task.build_pod_request_obj(context, dry_run=True)


def test_gpu_steps_are_pods_in_the_gpu_pool_and_the_dag_keeps_its_shape(monkeypatch, pod_dag):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    pods = {t.task_id for t in pod_dag.tasks if isinstance(t, KubernetesPodOperator)}
    assert pods == set(GPU_STEPS)
    for task_id in pods:
        task = pod_dag.get_task(task_id)
        assert task.pool == "gpu" and task.do_xcom_push and task.get_logs, task_id
        assert str(task.on_finish_action.value) == "delete_pod" and task.startup_timeout_seconds == 900, task_id
        assert task.schedule_timeout_seconds == 900, task_id  # Pending for a GPU node: fails after 15 min
    monkeypatch.delenv("RECPIPE_TRAINING")
    local = load_dag("nightly_retrain")
    assert not any(isinstance(t, KubernetesPodOperator) for t in local.tasks)  # local is the default
    assert {t.task_id: t.upstream_task_ids for t in pod_dag.tasks} == {t.task_id: t.upstream_task_ids for t in local.tasks}


def test_the_rendered_pod_runs_the_step_on_one_gpu_with_secrets_from_a_kubernetes_secret(pod_dag):
    pod = _pod(pod_dag, "train_two_tower")
    assert pod.metadata.namespace == "ml-training" and pod.spec.restart_policy == "Never"
    base, sidecar = pod.spec.containers  # the sidecar pushes /airflow/xcom/return.json as the task's XCom
    assert base.image == "registry.example/recpipe/train-gpu:1.4.0"
    assert base.command == [
        "python", "-m", "training.train", "--model", "two_tower", "--ds", "2026-11-05", "--airflow-run-id", RUN_ID
    ]  # fmt: skip
    assert base.resources.limits == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert base.resources.requests == {"cpu": "4", "memory": "16Gi"}
    assert [t.key for t in pod.spec.tolerations] == ["nvidia.com/gpu"]
    assert [(e.secret_ref.name, e.config_map_ref) for e in base.env_from] == [("recpipe-prod-env", None)]
    # The only literal environment: where the config is in the image and where the XCom goes. No secret values.
    assert {e.name: e.value for e in base.env} == {
        "RECPIPE_CONFIG": "/opt/recpipe/recpipe/conf/production.yaml",
        "RECPIPE_RESULT_FILE": "/airflow/xcom/return.json",
    }
    assert sidecar.name == "airflow-xcom-sidecar" and "/airflow/xcom" in [m.mount_path for m in base.volume_mounts]
    assert pod.metadata.labels["dag_id"] == "nightly_retrain" and pod.metadata.labels["task_id"] == "train_two_tower"


def test_after_training_a_pod_names_the_trained_mlflow_run(pod_dag):
    pod = _pod(pod_dag, "build_index_two_tower")
    command = ["python", "-m", "indexing.build", "--model", "two_tower", "--ds", "2026-11-05"]
    assert pod.spec.containers[0].command == [*command, "--run-id", "mlflow-run-of-train_two_tower"]
    assert pod_dag.get_task("evaluate_deepfm").upstream_task_ids == {"train_deepfm"}


@pytest.mark.parametrize(
    ("step", "call"),
    [
        ("train", lambda: tasks.train("two_tower", "2026-11-05", RUN_ID)),
        ("build_index", lambda: tasks.build_index("two_tower", "2026-11-05", {"run_id": "mlflow-run-of-train_two_tower"})),
        ("evaluate", lambda: tasks.evaluate_champion("two_tower", "2026-11-05", {"run_id": "mlflow-run-of-train_two_tower"})),
    ],
)
def test_a_pod_runs_exactly_the_command_of_the_local_step(pod_dag, monkeypatch, step, call):
    calls = []
    monkeypatch.setattr(tasks, "run_step", lambda module, args: calls.append(["python", "-m", module, *args]) or {})
    call()
    pod = _pod(pod_dag, f"{step}_two_tower")
    assert calls == [pod.spec.containers[0].command]


def test_a_step_leaves_its_result_where_the_pod_xcom_sidecar_reads_it(tmp_path, monkeypatch, capsys):
    result_file = tmp_path / "airflow" / "xcom" / "return.json"
    monkeypatch.setenv(runner.RESULT_FILE_ENV, str(result_file))
    result = runner.step_main(
        "a step",
        lambda args: {"run_id": "r1", "model": args.model},
        ["two_tower"],
        ["--model", "two_tower", "--ds", "2026-11-05"],
    )
    assert json.loads(result_file.read_text()) == result == {"run_id": "r1", "model": "two_tower"}
    assert capsys.readouterr().out.strip().endswith('RECPIPE_RESULT {"run_id": "r1", "model": "two_tower"}')
    assert [p.name for p in result_file.parent.iterdir()] == ["return.json"]  # no temporary left behind


def test_without_the_setting_no_result_file_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(runner.RESULT_FILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    runner.step_main("a step", lambda args: {"run_id": "r1"}, ["fnn"], ["--model", "fnn", "--ds", "2026-11-05"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RECPIPE_TRAINING", "slurm", "RECPIPE_TRAINING must be one of local, kubernetes; received 'slurm'"),
        (
            "RECPIPE_POD_STARTUP_TIMEOUT",
            "soon",
            "RECPIPE_POD_STARTUP_TIMEOUT must be a positive number of seconds; received 'soon'",
        ),
        (
            "RECPIPE_POD_MEMORY",
            "16 GB",
            "RECPIPE_POD_MEMORY must be a Kubernetes quantity such as 4, 500m or 16Gi; received '16 GB'",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_it(name, value, message):
    with pytest.raises(ValueError, match=message):
        deploy.training({"RECPIPE_TRAINING": "kubernetes", name: value})


def test_the_defaults():
    settings = deploy.training({})
    assert settings.mode == "local" and settings.image.startswith("recpipe-train-gpu:")
    assert (settings.namespace, settings.secret, settings.startup_timeout) == ("recpipe", "recpipe-training-env", 1800)
    assert deploy.raw_wait({}) == deploy.RawWait(timeout=21600, poke_interval=300)
    assert deploy.raw_wait({"RECPIPE_RAW_WAIT_TIMEOUT": "7200"}).timeout == 7200
    with pytest.raises(ValueError, match="RECPIPE_RAW_POKE_INTERVAL must be a positive number of seconds; received '0'"):
        deploy.raw_wait({"RECPIPE_RAW_POKE_INTERVAL": "0"})
