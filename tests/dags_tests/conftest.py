"""Fixtures of the DAG tests: the DAGs as Airflow parses them, and Airflow's metadata database for ``dag.test()``."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


def load_dag(dag_id: str):
    """Parse the DAG folder now (with this test's environment: settings are read at parse time); one DAG of it."""
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAGS), known_pools={"default_pool", "gpu"})
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[dag_id]


@pytest.fixture(scope="session")
def airflow_db():
    """The session's Airflow database (``tests/conftest.py`` points Airflow at it), migrated once."""
    from tests.e2e_helpers import airflow

    airflow("db", "migrate")
