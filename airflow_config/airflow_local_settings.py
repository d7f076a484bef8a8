"""Airflow cluster policy of the recpipe deployment: backfill runs never starve the nightly run.

Airflow imports this module by name (``airflow_local_settings``) from its Python path when it starts; the
Makefile puts this folder on ``PYTHONPATH``, and a production image copies the file to
``$AIRFLOW_HOME/config/``. The scheduler queues task instances by ``-priority_weight``, then by logical
date, so without this an older backfill day would take every free slot of the ``gpu`` pool before
tonight's run. The rule itself is ``orchestration.deploy.backfill_priority``.
"""

from __future__ import annotations

from orchestration.deploy import backfill_priority


def task_instance_mutation_hook(task_instance, dag_run=None) -> None:
    """Lower the priority weight of a backfill run's task instance (idempotent: Airflow may call it twice)."""
    if task_instance.priority_weight is None:  # not computed yet: Airflow calls the hook again once it is
        return
    run_type = getattr(dag_run, "run_type", None)
    task_instance.priority_weight = backfill_priority(task_instance.priority_weight, run_type, task_instance.run_id)
