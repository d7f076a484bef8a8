"""Evaluate the current champion on the challenger's eval set and log its metrics beside the challenger's.

Run as ``python -m training.evaluate --model wide_deep --ds D --run-id R``. Champion metrics go into the
challenger's run as ``champion_<metric>``, so MLflow shows both side by side. The first run, with no
champion, is tagged ``champion_version=none``.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import mlflow

from recpipe import tracking
from recpipe.config import Config, load_config
from recpipe.runner import step_main
from recpipe.tables import load_item_vectors
from training import catalogue

log = logging.getLogger(__name__)


class IncompatibleChampion(ValueError):
    """The champion cannot score today's eval set (its input schema differs); the gate uses floors only."""


def champion_metrics(model_key: str, cfg: Config, ds: str) -> tuple[int | None, dict[str, float] | None]:
    """(champion version, its metrics on day ``ds``'s eval set), or (None, None) without a champion."""
    entry = catalogue.entry(model_key)
    registered = tracking.model_name(cfg, model_key)
    version = tracking.alias_version(cfg, registered, tracking.CHAMPION)
    if version is None:
        return None, None
    # Imported only with a champion to score: TensorFlow's start-up is most of a first run's evaluate task.
    # Importing the model's classes registers them with Keras, which needs them to load the champion.
    entry.classes()
    from training import ranking, recall

    # By number, not alias: a promotion between the two calls must not mix two versions.
    uri = f"models:/{registered}/{version.version}"
    if entry.scoring == "item_vectors":
        eval_set = recall.load_eval_set(cfg, ds)
        return int(version.version), recall.evaluate_vectors(cfg, load_item_vectors(version.run_id), eval_set)
    if entry.scoring == "user_tower":  # today's eval users through the champion's tower
        eval_set = recall.load_eval_set(cfg, ds)
        queries = mlflow.keras.load_model(uri).user_vectors(eval_set.features)
        return int(version.version), recall.evaluate_queries(cfg, queries, load_item_vectors(version.run_id), eval_set)
    try:
        model = mlflow.keras.load_model(uri)
    except Exception as exc:  # e.g. saved by an older version of the model class: gate on floors, do not crash
        raise IncompatibleChampion(f"it cannot be loaded by this code: {type(exc).__name__}: {exc}") from exc
    split = ranking.load_split(cfg, ds, "eval")
    missing = sorted({f["name"] for f in model.features} - set(split.features))
    if missing:
        raise IncompatibleChampion(f"it reads features today's ranking samples no longer have: {missing}")
    return int(version.version), ranking.evaluate_model(model, split)


def evaluate(model_key: str, cfg: Config, ds: str, run_id: str) -> dict:
    """Evaluate the champion on ``ds`` and log the result into the challenger run ``run_id``."""
    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    try:
        version, metrics = champion_metrics(model_key, cfg, ds)
    except IncompatibleChampion as exc:
        registered = tracking.model_name(cfg, model_key)
        version, metrics = int(tracking.alias_version(cfg, registered, tracking.CHAMPION).version), None
        client.set_tag(run_id, "champion_incompatible", str(exc)[:5000])
        log.warning("champion v%s of %s is incompatible: %s", version, model_key, exc)
    client.set_tag(run_id, "champion_version", "none" if version is None else str(version))
    for name, value in (metrics or {}).items():
        client.log_metric(run_id, f"champion_{name}", value)
    return {"model": model_key, "ds": ds, "run_id": run_id, "champion_version": version, "champion_metrics": metrics}


def _step(args) -> dict:
    if not args.run_id:
        raise SystemExit("--run-id (the challenger's MLflow run) is required")
    return evaluate(args.model, load_config(args.config), args.ds, args.run_id)


def main(argv: list[str] | None = None) -> dict:
    return step_main(__doc__, _step, catalogue.MODELS, argv)


if __name__ == "__main__":
    main()
