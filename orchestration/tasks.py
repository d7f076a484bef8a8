"""What each task of the nightly DAG does, one function per task, so DAG files stay wiring only.

Heavy libraries are imported inside the functions: importing this module costs nothing at DAG parse
time. GPU-pool steps (train, evaluate, index) run as subprocesses through ``recpipe.runner``. The Spark
chain, its assets and the data checks are derived from the dataset registry (``recpipe.contracts.DATASETS``
and ``JOBS``); the per-model chains from the model catalogue (``training.catalogue``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os

from orchestration.deploy import SPARK_CONF
from recpipe import contracts, lake, tracking
from recpipe.config import Config, load_config
from recpipe.runner import run_step
from training import catalogue

log = logging.getLogger(__name__)
# The models of the nightly run (one train/evaluate/gate/promote chain each) and those with an index release,
# from the model catalogue, for the DAG files (which import nothing of the project but this package).
INDEXED_MODELS = catalogue.INDEXED_MODELS
# A deployment may train a subset of the catalogue (``RECPIPE_MODELS=item2vec,deepfm``; default: every model),
# read when the DAG is parsed, like the other deployment settings.
MODELS_ENV = "RECPIPE_MODELS"


def selected_models(env: dict[str, str] | None = None) -> tuple[catalogue.ModelEntry, ...]:
    """The catalogue entries this deployment trains, in catalogue order: all, or those ``RECPIPE_MODELS`` names."""
    raw = (os.environ if env is None else env).get(MODELS_ENV) or ""
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        return catalogue.ENTRIES
    unknown = sorted(set(names) - set(catalogue.MODELS))
    if unknown:
        raise ValueError(f"{MODELS_ENV} names unknown models {unknown}; expected some of {list(catalogue.MODELS)}")
    return tuple(e for e in catalogue.ENTRIES if e.name in names)


# Task ids of the checks and of the raw-data sensor in the nightly DAG's chain.
WAIT_FOR_RAW = "wait_for_raw_events"
CHECK_TASKS = {"events": "validate_events", "features": "validate_features"}


def spark_chain() -> dict[str, tuple[str, ...]]:
    """The nightly DAG's data chain as task id -> the task ids it runs after, derived from the dataset registry.

    A job runs after the jobs whose datasets it reads, or after ``validate_events`` for a dataset checked at
    that stage; ``validate_events`` and ``validate_features`` run after the jobs writing the datasets they check;
    ``stage_events`` runs after the sensor on the raw events. Edges implied by others are dropped, so each
    task lists only its nearest upstreams.
    """
    upstream: dict[str, set[str]] = {}
    for stage, task_id in CHECK_TASKS.items():
        upstream[task_id] = {d.job for d in contracts.checked(stage)}
    for job in contracts.JOBS:
        ups = set()
        for read in map(contracts.dataset, job.reads):
            if read.name == contracts.RAW_EVENTS.name:
                ups.add(WAIT_FOR_RAW)
            elif read.job is not None:
                ups.add(CHECK_TASKS[read.check] if read.check == "events" else read.job)
        upstream[job.name] = ups

    def ancestors(task_id: str) -> set[str]:
        found: set[str] = set()
        for up in upstream.get(task_id, ()):
            found |= {up, *ancestors(up)}
        return found

    return {
        task_id: tuple(sorted(u for u in ups if not any(u in ancestors(v) for v in ups if v != u)))
        for task_id, ups in upstream.items()
    }


# The training sets each Spark job writes, published as assets when the job succeeds (registry order).
TRAINING_SET_OUTPUTS: dict[str, tuple[str, ...]] = {
    job.name: tuple(d.name for d in contracts.written_by(job.name) if d.asset)
    for job in contracts.JOBS
    if any(d.asset for d in contracts.written_by(job.name))
}
# The suites ``validate_features`` runs, and the jobs ``recpipe etl`` runs for past days (in order).
FEATURE_SUITES: tuple[str, ...] = tuple(d.suite for d in contracts.checked("features"))
HISTORY_JOBS: tuple[str, ...] = tuple(
    job.name for job in contracts.JOBS if any(d.history for d in contracts.written_by(job.name))
)


def run_spark_job(name: str, ds: str) -> str:
    """Run ``spark_jobs.<name>.run`` for day ``ds`` in this process (``RECPIPE_SPARK=inprocess``); its output URI."""
    from spark_jobs.common import spark_session

    lake.parse_ds(ds)
    job = importlib.import_module(f"spark_jobs.{name}")
    spark = spark_session("recpipe-nightly")  # getOrCreate: the session of this process's earlier jobs, if any
    for key, value in SPARK_CONF.items():
        if key.startswith("spark.sql."):  # runtime settings; the rest are fixed when the session starts
            spark.conf.set(key, value)
    spark.sparkContext.setJobDescription(f"recpipe-{name}-{ds}")
    return job.run(spark, load_config(), ds)


def run_history_jobs(spark, cfg: Config, ds: str) -> list[str]:
    """Run the jobs that write history datasets (``HISTORY_JOBS``, in order) for day ``ds``; their output URIs."""
    lake.parse_ds(ds)
    return [importlib.import_module(f"spark_jobs.{name}").run(spark, cfg, ds) for name in HISTORY_JOBS]


def raw_marker(ds: str, cfg: Config | None = None) -> str:
    """URI of the ``_SUCCESS`` marker that says day ``ds``'s raw events are complete."""
    cfg = cfg or load_config()
    return f"{lake.partition_uri(cfg.lake_root, contracts.RAW_EVENTS, ds)}/{lake.SUCCESS}"


def raw_ready(ds: str) -> bool:
    """Whether day ``ds``'s raw events partition is complete (its ``_SUCCESS`` marker exists)."""
    cfg = load_config()
    ready = lake.partition_ready(cfg.lake_root, contracts.RAW_EVENTS, ds)
    if not ready:
        log.info("waiting for %s", raw_marker(ds, cfg))
    return ready


def raw_not_ready(ds: str, waited_seconds: float) -> str:
    """Why the wait for day ``ds``'s raw events failed: the day, how long it waited, the missing marker."""
    return f"raw events for ds={ds} not ready after {_duration(waited_seconds)}: {raw_marker(ds)} is missing"


def _duration(seconds: float) -> str:
    """``6 h``, ``90 min``, ``2 s``: a wait as its operator wrote it."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


# Airflow assets (data-aware scheduling). The URIs are logical names, the same in every deployment: the
# ``x-`` scheme is Airflow's user-defined one, with no semantics checked. An asset event carries the day and
# where its data is in its ``extra``.
ASSET_SCHEME = "x-recpipe"


def dataset_asset_uri(dataset: str) -> str:
    """Asset URI of a lake dataset (all its days): ``x-recpipe://lake/training/ranking_samples``."""
    return f"{ASSET_SCHEME}://lake/{dataset}"


def release_asset_uri(model: str) -> str:
    """Asset URI of a recall model's release (model version + its FAISS index): ``x-recpipe://release/two_tower``."""
    if model not in catalogue.INDEXED_MODELS:
        raise ValueError(
            f"only models with an index have a release asset; received {model!r}, expected one of {catalogue.INDEXED_MODELS}"
        )
    return f"{ASSET_SCHEME}://release/{model}"


def partition_event(dataset: str, ds: str, run_id: str) -> dict:
    """``extra`` of the asset event of a dataset's day ``ds``: the day, its partition URI and the Airflow run."""
    cfg = load_config()
    return {"ds": ds, "partition": lake.partition_uri(cfg.lake_root, dataset, ds), "airflow_run_id": run_id}


def release_event(model: str, ds: str, run_id: str, outcome: dict) -> dict | None:
    """``extra`` of the release asset event of a promotion, or None when nothing was promoted (no event)."""
    if model not in catalogue.INDEXED_MODELS or not outcome.get("promoted"):
        return None
    return {
        "ds": ds,
        "model": model,
        "model_version": outcome["model_version"],
        "index_version": outcome["index_version"],
        "airflow_run_id": run_id,
    }


def refresh_serving_index(model: str, airflow_run_id: str, events: list[dict] | None = None) -> dict:
    """Load the champion release's index as serving does, and record the refresh in the lake.

    ``indexing.build.load_registered_index`` refuses an index built from another tower than the champion's
    (``artifact.IndexVersionMismatch``), which fails the task. The record goes to
    ``reports/serving_refresh/ds=<the release's ds>/<model>.json`` with the triggering events' ``extra``.
    """
    from indexing import release
    from indexing.build import load_registered_index

    cfg = load_config()
    tracking.setup(cfg)
    serving = release.current(cfg, model)
    if serving is None:
        raise release.ReleaseError(f"{tracking.model_name(cfg, model)} has no champion release to serve")
    index, ids, manifest, categories = load_registered_index(
        cfg, model, index_version=serving.index_version, tower_version=serving.model_version
    )
    report = {
        "model": model,
        "model_version": serving.model_version,
        "index_version": serving.index_version,
        "ds": serving.ds,
        "airflow_run_id": airflow_run_id,
        "n_items": int(index.ntotal),
        "ids": len(ids),
        "factory": manifest["factory"],
        "search_params": manifest["search_params"],
        "categories": len(categories),
        "triggered_by": list(events or []),
    }
    uri = lake.write_text(
        lake.partition_uri(cfg.lake_root, "reports/serving_refresh", serving.ds), f"{model}.json", json.dumps(report, indent=2)
    )
    log.info("serving refresh of %s %s: %d items; record %s", model, serving.describe(), report["n_items"], uri)
    return {**report, "uri": uri}


def validate_features(ds: str, run_id: str) -> list[dict]:
    """Check the day's training sets (GX) and log each result into the night's ``data`` run, for the run card.

    Every suite runs and is logged before a failure is raised, so the card shows all of them.
    """
    import mlflow

    from validation.data_checks import DataCheckFailed, check_partition

    cfg = load_config()
    tracking.setup(cfg)
    data_run = _data_run(ds, run_id)
    results, failures = [], []
    for suite in FEATURE_SUITES:
        try:
            summary = check_partition(suite, cfg, ds)
        except DataCheckFailed as exc:
            summary = {"suite": suite, "success": False, "error": str(exc)}
            failures.append(str(exc))
        results.append(summary)
        if data_run is not None:
            mlflow.MlflowClient().log_dict(data_run, summary, _check_artifact(suite))
    if failures:
        raise DataCheckFailed("; ".join(failures))
    return results


def _check_artifact(suite: str) -> str:
    """Where the night's ``data`` run keeps suite ``suite``'s summary (from the dataset registry)."""
    return next(d.check_artifact for d in contracts.DATASETS if d.suite == suite)


def _data_run(ds: str, airflow_run_id: str) -> str | None:
    """The MLflow run id of the night's ``data`` run (made by ``validate_events``), if there is one."""
    import mlflow

    lake.parse_ds(ds)  # goes into a filter string

    runs = mlflow.search_runs(
        filter_string=f"tags.stage = 'data' and tags.ds = '{ds}' and tags.airflow_run_id = '{airflow_run_id}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def validate_events(ds: str, run_id: str) -> list[dict]:
    """Check the staged events (GX; the registry's ``events`` suites) and log the day's quarantine counts to MLflow
    as the night's ``data`` run; each suite's summary, in registry order."""
    import mlflow

    from validation.data_checks import check_partition

    cfg = load_config()
    counts_uri = lake.partition_uri(cfg.lake_root, "reports/quarantine", ds)
    filesystem, path = lake.filesystem(counts_uri)
    with filesystem.open_input_stream(f"{path}/counts.json") as fh:
        report = json.loads(fh.read().decode("utf-8"))
    tracking.setup(cfg)
    with mlflow.start_run(run_name=f"data ds={ds}", tags={"stage": "data", "ds": ds, "airflow_run_id": run_id}):
        total = report["raw_rows"]
        mlflow.log_metrics({"raw_rows": total, **{f"quarantine_{k}": v for k, v in report["counts"].items()}})
        mlflow.log_metric("quarantine_share", sum(report["counts"].values()) / total if total else 0.0)
        mlflow.log_dict(report, "data/quarantine_counts.json")
        summaries = []
        for dataset in contracts.checked("events"):
            summaries.append(check_partition(dataset.suite, cfg, ds))
            mlflow.log_dict(summaries[-1], dataset.check_artifact)
    return summaries


def train(model: str, ds: str, run_id: str) -> dict:
    """Train, evaluate on the eval split, log and register one model (subprocess)."""
    return run_step("training.train", ["--model", model, "--ds", ds, "--airflow-run-id", run_id])


def build_index(model: str, ds: str, trained: dict) -> dict:
    """Build, measure and register the FAISS index over a recall model's item vectors (subprocess)."""
    return run_step("indexing.build", ["--model", model, "--ds", ds, "--run-id", trained["run_id"]])


def evaluate_champion(model: str, ds: str, trained: dict) -> dict:
    """Evaluate the current champion on the same eval set; metrics go into the challenger's run."""
    return run_step("training.evaluate", ["--model", model, "--ds", ds, "--run-id", trained["run_id"]])


def gate(model: str, trained: dict) -> dict:
    """The gate verdict of a challenger run."""
    from indexing.promote import decide

    return decide(model, load_config(), trained["run_id"])


def promote(model: str, verdict: dict, airflow_run_id: str) -> dict:
    """Promote the release if its gate passed; the release history names this Airflow run as the actor."""
    from indexing.promote import promote as do_promote

    return do_promote(model, load_config(), verdict, who=f"airflow nightly_retrain {airflow_run_id}")


def write_summary(ds: str, run_id: str) -> str:
    """Write the run's summary (per model: metrics, champion, verdict, promotion) into the lake."""
    cfg = load_config()
    from reporting.summarize import summarize

    summary = {"ds": ds, "airflow_run_id": run_id, "models": summarize(ds, run_id)}
    return lake.write_text(
        lake.partition_uri(cfg.lake_root, "reports/nightly", ds), "summary.json", json.dumps(summary, indent=2)
    )


def write_run_card(ds: str, run_id: str) -> dict:
    """Write the night's run card (HTML) into MLflow and the lake, and log where it is, for the task's log."""
    from reporting.run_card import write_run_card as write_card

    card = write_card(load_config(), ds, run_id)
    where = card.get("ui_url") or card["artifact_uri"]
    log.info("run card: %s (MLflow run %s; lake copy %s)", where, card["mlflow_run_id"], card["lake_uri"])
    return card
