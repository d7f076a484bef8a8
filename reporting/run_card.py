"""One run card per nightly run: a single HTML page that tells a reviewer what the night did and why.

``collect`` reads MLflow into a plain, JSON-serialisable dict: the day's data checks, then per model (recall
models first) its versions, its metrics beside the champion's, slices, index measurements, the gate verdict,
the config diff against the champion's training run, and the data of its plots. ``render`` turns that dict
into one self-contained HTML document (inline CSS, plots as inline SVG, no scripts, no external URLs).
``write_run_card`` does both and logs the page into a ``stage=report`` MLflow run and into the lake.

``collect`` lives in ``reporting.collect`` and ``render`` in ``reporting.render``; this module re-exports
them, so callers import everything from here.

MLflow and matplotlib are imported inside the functions, like everywhere else in the package.
"""

from __future__ import annotations

from recpipe import lake, tracking
from recpipe.config import Config
from reporting.collect import _without_credentials, collect
from reporting.render import render

__all__ = ["collect", "render", "ui_url", "write_run_card"]


def ui_url(tracking_uri: str, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of a run's artifacts, when the tracking URI is a server (http or https); else None."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    base = _without_credentials(tracking_uri).rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts"


def write_run_card(cfg: Config, ds: str, airflow_run_id: str | None) -> dict:
    """Collect and render day ``ds``'s run card; log it to a new ``stage=report`` MLflow run and into the lake.

    Returns:
        ``mlflow_run_id``, ``artifact_uri`` (of ``run_card.html``), ``lake_uri`` and ``ui_url`` (the MLflow UI
        page of the run's artifacts when the tracking URI is an http(s) server, else None).
    """
    import mlflow

    card = collect(cfg, ds, airflow_run_id)
    page = render(card)
    experiment_id = tracking.setup(cfg)
    tags = {"stage": "report", "ds": ds, "airflow_run_id": airflow_run_id or "manual"}
    with mlflow.start_run(run_name=f"run card ds={ds}", tags=tags) as run:
        mlflow.log_text(page, "run_card.html")
        mlflow.log_dict(card, "run_card.json")
        artifact_uri = mlflow.get_artifact_uri("run_card.html")
    lake_uri = lake.write_text(lake.partition_uri(cfg.lake_root, "reports/nightly", ds), "run_card.html", page)
    return {
        "mlflow_run_id": run.info.run_id,
        "artifact_uri": artifact_uri,
        "lake_uri": lake_uri,
        "ui_url": ui_url(mlflow.get_tracking_uri(), experiment_id, run.info.run_id),
    }
