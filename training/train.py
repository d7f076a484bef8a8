"""The one training entry point: fit a model on day D's training set, evaluate it, log and register it.

Run as ``python -m training.train --model item2vec --ds 2026-11-04``. The last line printed is
``RECPIPE_RESULT {json}`` with the MLflow run id, the registered version and the metrics.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow.models import infer_signature

from recpipe import lake, tracking
from recpipe.config import Config, load_config
from recpipe.runner import step_main
from recpipe.tables import load_item_vectors
from training import baseline, catalogue, compute, export, ranking, recall, towers
from training.artifacts import log_item_vectors, log_query_vectors
from training.metrics import roc_points

log = logging.getLogger(__name__)
PIP_REQUIREMENTS = [f"keras=={keras.__version__}", f"tensorflow-cpu=={tf.__version__}"]


def _log_history(history: dict[str, list[float]]) -> None:
    for name, values in history.items():
        for epoch, value in enumerate(values):
            mlflow.log_metric(f"train_{name}", float(value), step=epoch)


def _register(cfg: Config, model_key: str, model: keras.Model, sample: dict[str, np.ndarray], ds: str, run_id: str) -> int:
    registered = tracking.model_name(cfg, model_key)
    tracking.ensure_registered_model(registered, f"recpipe {model_key} model, retrained nightly")
    preds = np.asarray(model.predict(sample, verbose=0))
    info = mlflow.keras.log_model(
        model,
        name="model",
        registered_model_name=registered,
        pip_requirements=PIP_REQUIREMENTS,
        signature=infer_signature(sample, preds),
    )
    version = int(info.registered_model_version)
    options = {}
    if catalogue.entry(model_key).scoring == "item_vectors":  # history queries: how they pool the item vectors
        options = {"user_vector": cfg.item2vec.user_vector, "recency_half_life": cfg.item2vec.recency_half_life}
    export.log_serving(model_key, model, **options)
    client = mlflow.MlflowClient()
    for key, value in {"ds": ds, "run_id": run_id, "model": model_key}.items():
        client.set_model_version_tag(registered, str(version), key, value)
    return version


def _train_recall(cfg: Config, key: str, ds: str, run_id: str, fit, vectors, more_metrics=None) -> tuple[int, dict[str, float]]:
    """Fit a recall model, evaluate its (query, item) vectors, register it, log both vector tables.

    ``vectors(model, eval_set)`` returns the eval users' query vectors, the item vectors and a small
    input sample for the model's MLflow signature; ``more_metrics(metrics, items, eval_set)``, when
    given, returns the final metrics from the vector-search ones.
    """
    start = time.perf_counter()
    model, history = fit()
    seconds = time.perf_counter() - start
    _log_history(history)
    eval_set = recall.load_eval_set(cfg, ds)
    queries, items, sample = vectors(model, eval_set)
    metrics = {
        **recall.evaluate_queries(cfg, queries, items, eval_set),
        **recall.reference_metrics(cfg, eval_set, ds),
        "eval_users": float(len(eval_set.user_ids)),
        "train_seconds": seconds,
    }
    if more_metrics is not None:
        metrics = more_metrics(metrics, items, eval_set)
    version = _register(cfg, key, model, sample, ds, run_id)
    log_item_vectors(items, version)
    log_query_vectors(eval_set.user_ids, queries, eval_set.features["user_city"])
    return version, metrics


def _item2vec_vectors(cfg: Config, model, eval_set):
    items = model.item_vectors()
    if cfg.item2vec.mode == "cbow":  # the CBOW model maps context lists (-1 pads) to their mean vector
        sample = {"context": np.array([[1, 2, -1], [3, -1, -1], [0, 1, 2], [4, 5, 6]], dtype=np.int64)}
    else:
        sample = {"target": np.arange(4, dtype=np.int64), "context": np.arange(1, 5, dtype=np.int64)}
    return recall.item2vec_queries(cfg, items, eval_set.histories), items, sample


def _tower_vectors(model, eval_set):
    sample = {name: values[:4] for name, values in eval_set.features.items()}
    return model.user_vectors(eval_set.features), model.item_vectors(), sample


def train_item2vec(cfg: Config, ds: str, run_id: str) -> tuple[int, dict[str, float]]:
    """Item2Vec in its configured mode. With ``item2vec.multi_line`` the list metrics are the merged business-line
    lists' (the names the champion is compared on) and the single user vector's are kept as ``single_<name>``;
    the logged query vectors stay the single ones (the FAISS index recall is measured with them)."""

    def multi_line(metrics: dict[str, float], items: np.ndarray, eval_set) -> dict[str, float]:
        if not cfg.item2vec.multi_line:
            return metrics
        merged = recall.multi_line_metrics(cfg, items, eval_set)
        return {**metrics, **{f"single_{name}": metrics[name] for name in merged}, **merged}

    vectors = functools.partial(_item2vec_vectors, cfg)
    return _train_recall(cfg, "item2vec", ds, run_id, lambda: recall.fit_item2vec(cfg, ds), vectors, multi_line)


def train_youtube_dnn(cfg: Config, ds: str, run_id: str) -> tuple[int, dict[str, float]]:
    return _train_recall(cfg, "youtube_dnn", ds, run_id, lambda: towers.fit_youtube_dnn(cfg, ds), _tower_vectors)


def train_two_tower(cfg: Config, ds: str, run_id: str) -> tuple[int, dict[str, float]]:
    pretrained = None
    if cfg.two_tower.pretrained_item2vec:
        champion = tracking.alias_version(cfg, tracking.model_name(cfg, "item2vec"), tracking.CHAMPION)
        if champion is not None:
            pretrained = load_item_vectors(champion.run_id)
            mlflow.set_tag("pretrained_item2vec_version", champion.version)
    return _train_recall(cfg, "two_tower", ds, run_id, lambda: towers.fit_two_tower(cfg, ds, pretrained), _tower_vectors)


def _warm_start_champion(cfg: Config, key: str, ds: str):
    """The champion to warm-start from with ``ranking.incremental``, or None (tagged with the reason)."""
    if not cfg.ranking.incremental:
        return None
    champion = tracking.alias_version(cfg, tracking.model_name(cfg, key), tracking.CHAMPION)
    if champion is None:
        mlflow.set_tag("warm_start", "none: no champion yet")
        return None
    model = mlflow.keras.load_model(f"models:/{champion.name}/{champion.version}")
    reason = ranking.compatible(model, ranking.feature_specs(cfg, ds))
    if reason is not None:
        mlflow.set_tag("warm_start", f"none: champion v{champion.version} {reason}"[:5000])
        return None
    mlflow.set_tag("warm_start", f"champion v{champion.version}")
    # The warm-started model keeps the champion's pre-trained parts (e.g. the GBDT's trees): log them again.
    for artifact in catalogue.entry(key).side_artifacts:
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(run_id=champion.run_id, artifact_path=artifact, dst_path=tmp)
            mlflow.log_artifacts(path, artifact_path=artifact)
    return model


def train_ranking(key: str, cfg: Config, ds: str, run_id: str) -> tuple[int, dict[str, float]]:
    """Fit ranking model ``key`` (from scratch, or warm from its champion), evaluate it beside the LR baseline
    and the oracle, register it; side models (the GBDT) are logged in their own format."""
    train_split = ranking.load_split(cfg, ds, "train")
    eval_split = ranking.load_split(cfg, ds, "eval")
    champion = _warm_start_champion(cfg, key, ds)
    start = time.perf_counter()
    fitted = ranking.fit(key, cfg, ds, train_split, eval_split, champion)
    seconds = time.perf_counter() - start
    _log_history(fitted.history)
    mlflow.set_tags(fitted.tags)
    for name, booster in fitted.side_models.items():
        with tempfile.TemporaryDirectory() as tmp:
            booster.save_model(f"{tmp}/model.json")
            mlflow.log_artifact(f"{tmp}/model.json", artifact_path=name)
    eval_probs = ranking.predict(fitted.model, eval_split)
    metrics = {
        **ranking.evaluate_model(fitted.model, eval_split, probs=eval_probs),
        **ranking.oracle_auc(cfg, ds, eval_split),
        **fitted.metrics,
        "eval_examples": float(len(eval_split.labels)),
        "train_seconds": seconds,
    }
    mlflow.log_dict(roc_points(eval_split.labels, eval_probs), "eval/roc.json")
    if cfg.ranking.lr_baseline:  # fitted by the night's first ranking run, read back by the others
        specs = ranking.feature_specs(cfg, ds)
        lr, reused = baseline.shared_baseline_metrics(
            cfg.lake_root, ds, specs, train_split.features, train_split.labels, eval_split.features, eval_split.labels
        )
        metrics.update(lr)
        mlflow.set_tag("lr_baseline", "read back" if reused else "fitted")
    metrics.update(ranking.bayes_gap_closed(metrics))
    sample = {f["name"]: eval_split.features[f["name"]][:4] for f in fitted.model.features}
    return _register(cfg, key, fitted.model, sample, ds, run_id), metrics


def _trainer(model_key: str):
    """The catalogue's trainer of a model: ``fn(cfg, ds, run_id) -> (version, metrics)``."""
    entry = catalogue.entry(model_key)
    trainer = catalogue.load(entry.trainer)
    return functools.partial(trainer, model_key) if entry.kind == "ranking" else trainer


def train(model_key: str, cfg: Config, ds: str, *, airflow_run_id: str | None = None) -> dict:
    """Fit, evaluate, log and register one model for day ``ds``; returns run id, version and metrics."""
    trainer = _trainer(model_key)
    lake.parse_ds(ds)
    keras.backend.clear_session()  # steps may share a process (RECPIPE_STEPS=inprocess): start from a fresh graph
    tracking.setup(cfg)
    tags = {"model": model_key, "ds": ds, "stage": "train", "airflow_run_id": airflow_run_id or "manual"}
    with mlflow.start_run(run_name=f"{model_key} ds={ds}", tags=tags) as run:
        mlflow.log_params(cfg.flat())
        mlflow.log_dict(json.loads(json.dumps(cfg.flat())), "config/resolved.json")
        with compute.scope(cfg.compute) as plan:
            mlflow.log_params(plan.as_params())
            version, metrics = trainer(cfg, ds, run.info.run_id)
        mlflow.log_metrics(metrics)
        mlflow.set_tag("model_version", str(version))
        return {"model": model_key, "ds": ds, "run_id": run.info.run_id, "version": version, "metrics": metrics}


def _step(args) -> dict:
    return train(args.model, load_config(args.config), args.ds, airflow_run_id=args.airflow_run_id)


def main(argv: list[str] | None = None) -> dict:
    return step_main(__doc__, _step, catalogue.MODELS, argv)


if __name__ == "__main__":
    main()
