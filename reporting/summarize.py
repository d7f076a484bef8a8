"""What a nightly run did, per model: the newest training run of the day, its metrics, verdict and promotion.

Read by the run card (``reporting.collect``), the nightly summary (``orchestration.tasks.write_summary``) and
``recpipe summary``.
"""

from __future__ import annotations

import logging

from recpipe import lake, tracking
from recpipe.config import Config, load_config
from training import catalogue

log = logging.getLogger(__name__)


def summarize(ds: str, airflow_run_id: str | None = None, cfg: Config | None = None, verdicts: bool = True) -> list[dict]:
    """Per model, the newest training run of day ``ds`` (of one Airflow run, if given): metrics, verdict, promotion.

    ``verdicts=False`` leaves ``gate`` None (no artifact download): for callers that read the verdict themselves.
    """
    import mlflow

    lake.parse_ds(ds)  # goes into a filter string
    cfg = cfg or load_config()
    tracking.setup(cfg)
    out = []
    for model in catalogue.MODELS:
        query = f"tags.ds = '{ds}' and tags.model = '{model}' and tags.stage = 'train'"
        if airflow_run_id:
            query += f" and tags.airflow_run_id = '{airflow_run_id}'"
        runs = mlflow.search_runs(
            filter_string=query,
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
        if not runs:
            continue
        run = runs[0]
        out.append(
            {
                "model": model,
                "run_id": run.info.run_id,
                "version": run.data.tags.get("model_version"),
                "index_version": run.data.tags.get("index_version"),
                "champion_version": run.data.tags.get("champion_version"),
                "gate_passed": run.data.tags.get("gate_passed"),
                "gate_reasons": run.data.tags.get("gate_reasons"),
                "gate_failed": run.data.tags.get("gate_failed"),
                "promoted": run.data.tags.get("promoted"),
                "gate": _verdict(run.info.run_id) if verdicts and "gate_passed" in run.data.tags else None,
                "metrics": dict(sorted(run.data.metrics.items())),
            }
        )
    return out


def _verdict(run_id: str) -> dict | None:
    """The run's gate verdict (``gate/verdict.json``, with its structured checks), None when it is gone."""
    import mlflow

    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/gate/verdict.json")
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        log.warning("run %s has gate tags but no readable gate/verdict.json: %s", run_id, exc)
        return None
