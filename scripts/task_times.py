"""Print each task's state and wall time for the newest run of a DAG on a logical day (Airflow's metadata DB)."""

from __future__ import annotations

import os
import sqlite3
import sys


def main(dag_id: str, ds: str) -> int:
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if not url.startswith("sqlite:///"):
        print("task_times reads a local sqlite metadata DB only; use the Airflow UI's Gantt view instead", file=sys.stderr)
        return 1
    con = sqlite3.connect(url[len("sqlite:///") :].split("?")[0])
    run = con.execute(
        "SELECT run_id FROM dag_run WHERE dag_id = ? AND substr(logical_date, 1, 10) = ? ORDER BY start_date DESC LIMIT 1",
        (dag_id, ds),
    ).fetchone()
    if run is None:
        print(f"no run of {dag_id} for {ds}", file=sys.stderr)
        return 1
    rows = con.execute(
        "SELECT task_id, state, duration FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY start_date",
        (dag_id, run[0]),
    ).fetchall()
    for task_id, state, duration in rows:
        print(f"{task_id:<24} {state:<8} {duration or 0:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
