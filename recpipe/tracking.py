"""MLflow conventions: tracking set-up, registered model names, run lookup. MLflow is imported lazily.

Which models exist is the model catalogue's to say (``training.catalogue``); here a model is a key, and its
registered names are made from it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from recpipe.config import Config

# A slice metric is ``<metric>__<slice>`` (``auc__city_3``, ``recall_at_50__category_1``); its size ``rows__<slice>``.
SLICE_SEPARATOR = "__"
CHAMPION = "champion"
CHALLENGER = "challenger"
_MODEL_KEY = re.compile(r"[a-z][a-z0-9_]*")


def model_name(cfg: Config, model: str) -> str:
    """Registered model name of a model key, e.g. ``recpipe-item2vec``."""
    if not isinstance(model, str) or not _MODEL_KEY.fullmatch(model):
        raise ValueError(f"a model key is a lowercase name such as 'two_tower'; received {model!r}")
    return f"{cfg.registry_prefix}-{model}"


def index_name(cfg: Config, model: str) -> str:
    """Registered model name of a model's FAISS index, e.g. ``recpipe-item2vec-index``."""
    return f"{model_name(cfg, model)}-index"


def setup(cfg: Config) -> str:
    """Point MLflow at the configured tracking URI and experiment (created if missing); return its id."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # task logs, not terminals
    import mlflow

    uri = cfg.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    experiment_id = ensure_experiment(cfg, cfg.mlflow_experiment)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def ensure_experiment(cfg: Config, name: str) -> str:
    """The id of experiment ``name``, created with its artifacts under the configured root if missing."""
    import mlflow

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = cfg.mlflow_artifact_root
    if "://" not in location:
        Path(location).mkdir(parents=True, exist_ok=True)
        location = Path(location).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=f"{location}/{name}")
    except mlflow.exceptions.MlflowException:  # created concurrently by another task
        return client.get_experiment_by_name(name).experiment_id


def alias_version(cfg: Config, registered: str, alias: str = CHAMPION) -> Any | None:
    """The model version holding ``alias``, or None when the model or the alias does not exist yet.

    Any other registry error propagates: it must never be mistaken for "no champion".
    """
    import mlflow

    client = mlflow.MlflowClient()
    try:
        model = client.get_registered_model(registered)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if alias not in model.aliases:
        return None
    return client.get_model_version(registered, str(model.aliases[alias]))


def ensure_registered_model(registered: str, description: str) -> None:
    """Create the registered model if it does not exist yet."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        client.get_registered_model(registered)
    except mlflow.exceptions.MlflowException:
        try:
            client.create_registered_model(registered, description=description)
        except mlflow.exceptions.MlflowException:  # created concurrently
            client.get_registered_model(registered)
