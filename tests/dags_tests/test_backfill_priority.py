"""Backfills never starve the nightly run: the cluster policy lowers the priority of backfill task instances.

Airflow's scheduler queues task instances by ``-priority_weight`` and then by logical date, so without the
policy an older backfill day wins every free ``gpu`` slot over tonight's run of the same task.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.deploy import BACKFILL_WEIGHT_DROP, backfill_priority, is_backfill
from tests.dags_tests.conftest import DAGS

SETTINGS = Path(__file__).resolve().parents[2] / "airflow_config"


@pytest.mark.parametrize(
    ("run_type", "run_id", "backfill"),
    [
        ("backfill", "backfill__2026-11-03T00:00:00+00:00", True),
        (None, "backfill__2026-11-03T00:00:00+00:00", True),  # before the task instance is bound to its run
        ("scheduled", "scheduled__2026-11-06T00:00:00+00:00", False),
        ("manual", "backfill__looks_like_one", False),  # the run type, when known, decides
        (None, "manual__2026-11-06T08:00:00+00:00", False),
    ],
)
def test_what_counts_as_a_backfill(run_type, run_id, backfill):
    assert is_backfill(run_type, run_id) is backfill


def test_a_backfill_weight_drops_below_every_other_run_once():
    lowered = backfill_priority(7, "backfill", None)
    assert lowered == 7 - BACKFILL_WEIGHT_DROP < 1  # below the lowest weight of any scheduled task (1)
    assert backfill_priority(lowered, "backfill", None) == lowered  # Airflow may apply the hook twice
    assert backfill_priority(7, "scheduled", None) == 7
    assert backfill_priority(60, "backfill", None) < backfill_priority(2, "backfill", None) + BACKFILL_WEIGHT_DROP


def test_airflow_loads_the_policy_and_lowers_only_backfill_task_instances():
    """A fresh Airflow process with the Makefile's PYTHONPATH: task instances as the scheduler creates them."""
    code = f"""
import json, types, uuid
from airflow import settings
from airflow.models import DagBag, TaskInstance
from airflow.serialization.serialized_objects import DagSerialization
from airflow.utils.types import DagRunType

dag = DagBag(dag_folder={str(DAGS)!r}, known_pools={{"default_pool", "gpu"}}).dags["nightly_retrain"]
task = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).get_task("train_two_tower")
out = {{"hook_loaded": not settings.task_instance_mutation_hook.is_noop}}
for run_type in (DagRunType.SCHEDULED, DagRunType.MANUAL, DagRunType.BACKFILL_JOB):
    ti = TaskInstance(task, run_id=f"{{run_type.value}}__2026-11-05T00:00:00+00:00", dag_version_id=uuid.uuid4())
    created = ti.priority_weight
    ti.refresh_from_task(task, dag_run=types.SimpleNamespace(run_type=run_type))  # e.g. a clear or a retry
    settings.task_instance_mutation_hook(ti, dag_run=types.SimpleNamespace(run_type=run_type))
    out[run_type.value] = [created, ti.priority_weight]
print(json.dumps(out))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SETTINGS), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # train_two_tower's weight is its downstream sum: itself, build_index, evaluate, gate, promote, summary, run_card.
    assert out == {
        "hook_loaded": True,
        "scheduled": [7, 7],
        "manual": [7, 7],
        "backfill": [7 - BACKFILL_WEIGHT_DROP, 7 - BACKFILL_WEIGHT_DROP],
    }


def test_a_backfill_created_as_a_data_engineer_does_queues_behind_a_triggered_run(tmp_path):
    """``airflow backfill create`` and ``airflow dags trigger`` against their own metadata database."""
    import sqlite3

    from tests.e2e_helpers import airflow

    env = {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db?timeout=60",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SETTINGS), os.environ.get("PYTHONPATH")])),
    }
    airflow("db", "migrate", env=env)
    airflow("dags", "reserialize", env=env)
    airflow("backfill", "create", "--dag-id", "nightly_retrain", "--from-date", "2026-11-03", "--to-date", "2026-11-03",
            "--reprocess-behavior", "none", "--max-active-runs", "1", env=env)  # fmt: skip
    airflow("dags", "trigger", "nightly_retrain", env=env)
    with sqlite3.connect(tmp_path / "airflow.db") as db:
        rows = db.execute(
            "SELECT r.run_type, t.task_id, t.priority_weight FROM task_instance t JOIN dag_run r"
            " ON r.dag_id = t.dag_id AND r.run_id = t.run_id WHERE t.task_id IN ('wait_for_raw_events', 'train_two_tower')"
        ).fetchall()
    weights = {(run_type, task): weight for run_type, task, weight in rows}
    assert weights["backfill", "train_two_tower"] == weights["manual", "train_two_tower"] - BACKFILL_WEIGHT_DROP
    assert weights["backfill", "wait_for_raw_events"] == weights["manual", "wait_for_raw_events"] - BACKFILL_WEIGHT_DROP
    # The backfill's most urgent task still queues behind the triggered run's least urgent one.
    assert max(w for (kind, _), w in weights.items() if kind == "backfill") < min(
        w for (kind, _), w in weights.items() if kind == "manual"
    )
