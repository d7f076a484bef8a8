"""Late upstream data: ``wait_for_raw_events`` waits in reschedule mode, then fails naming the missing marker.

The sensor task of the real DAG runs under ``dag.test()`` (the scheduler's reschedule loop, in process) with
a 2 s timeout and a 1 s poke interval, set the way a deployment sets them: in the environment.
"""

from datetime import UTC, datetime
from pathlib import Path

from orchestration import deploy
from tests.dags_tests.conftest import load_dag


def _run_sensor(monkeypatch, ds: str):
    from airflow.models import TaskInstance, TaskReschedule
    from airflow.utils.session import create_session

    monkeypatch.setenv(deploy.RAW_WAIT_TIMEOUT_ENV, "2")
    monkeypatch.setenv(deploy.RAW_POKE_INTERVAL_ENV, "1")
    dag = load_dag("nightly_retrain")
    sensor = dag.get_task("wait_for_raw_events")
    assert (sensor.mode, sensor.timeout, sensor.poke_interval) == ("reschedule", 2, 1)
    run = dag.partial_subset(["wait_for_raw_events"], include_upstream=False).test(
        logical_date=datetime.fromisoformat(ds).replace(tzinfo=UTC)
    )
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run.run_id, task_id=sensor.task_id).one()
        reschedules = session.query(TaskReschedule).filter_by(ti_id=ti.id).count()
        return run.state, ti.state, ti.try_number, reschedules


def test_logs_that_never_arrive_fail_the_run_naming_the_missing_marker(cfg, airflow_db, monkeypatch, capfd):
    run_state, ti_state, tries, reschedules = _run_sensor(monkeypatch, "2026-11-05")
    out, err = capfd.readouterr()
    marker = f"{cfg.lake_root}/raw/events/ds=2026-11-05/_SUCCESS"
    assert f"AirflowSensorTimeout: raw events for ds=2026-11-05 not ready after 2 s: {marker} is missing" in out + err
    assert (run_state, ti_state) == ("failed", "failed")
    assert tries == 1  # a timed-out wait is not retried (the DAG's retries=2 would wait 6 h more, twice)
    assert reschedules >= 1  # it gave its slot back between pokes


def test_the_wait_ends_when_the_marker_lands(cfg, airflow_db, monkeypatch):
    day = Path(cfg.lake_root) / "raw" / "events" / "ds=2026-11-06"
    day.mkdir(parents=True)
    (day / "_SUCCESS").write_text("")
    run_state, ti_state, tries, reschedules = _run_sensor(monkeypatch, "2026-11-06")
    assert (run_state, ti_state, tries, reschedules) == ("success", "success", 1, 0)
