"""The run card's data: one nightly run's MLflow runs and artifacts read into a plain, JSON-serialisable dict.

``collect`` reads the day's data checks (the ``stage=data`` run), then per model (recall models first) its
versions, its metrics beside the champion's, slices, index measurements, the gate verdict, the config diff
against the champion's training run, and the data of its plots. ``reporting.render`` draws the page from that
dict; ``reporting.run_card`` ties the two together.

MLflow is imported inside the functions, like everywhere else in the package.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping

from recpipe import contracts, lake, tracking
from recpipe.config import Config, mask_credentials
from recpipe.tracking import SLICE_SEPARATOR
from training import catalogue

log = logging.getLogger(__name__)
CHAMPION_PREFIX = "champion_"
ROC_ARTIFACT = "eval/roc.json"
VERDICT_ARTIFACT = "gate/verdict.json"
QUARANTINE_ARTIFACT = "data/quarantine_counts.json"
# Data checks in registry order: (suite, artifact of the ``stage=data`` run holding check_partition's dict).
DATA_CHECKS = tuple((d.suite, d.check_artifact) for d in contracts.DATASETS if d.suite is not None)
RANKING_HEADLINE = (
    "auc",
    "logloss",
    "gauc",
    "gauc_coverage",
    "calibration",
    "ctr",
    "mean_pred",
    "lr_auc",
    "lr_logloss",
    "oracle_auc",
    "oracle_gauc",
)
INDEX_METRICS = (
    "index_latency_ms_p50_batch1",
    "index_latency_ms_p99_batch1",
    "index_latency_ms_p50_batch256",
    "index_latency_ms_p99_batch256",
    "index_qps_batch256",
    "index_build_seconds",
    "index_size",
)
_RECALL_AT = re.compile(r"^(?P<prefix>champion_|popularity_|itemknn_|oracle_)?recall_at_(?P<k>\d+)$")


def _kind(model: str) -> str:
    return catalogue.entry(model).kind


def _number(value) -> float | None:
    """A metric value as a float, None when it is missing or not finite (so the card stays strict JSON)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _natural(text: str) -> list:
    """Sort key putting ``city_2`` before ``city_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _without_credentials(uri: str) -> str:
    """A URI fit to show: userinfo dropped, secret query parameters masked (``recpipe.config.mask_credentials``)."""
    return mask_credentials(uri, userinfo="")


def _artifact_paths(client, run_id: str, folder: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, folder)}


def _load_json(run_id: str, path: str, present: set[str]):
    """The JSON artifact ``path`` of a run, or None when it was not logged or cannot be read."""
    import mlflow

    if path not in present:
        return None
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
    except (ValueError, OSError, mlflow.exceptions.MlflowException) as exc:
        log.warning("run card: artifact %s of run %s is unreadable, shown as not recorded: %s", path, run_id, exc)
        return None


def _newest_run(filter_string: str):
    import mlflow

    runs = mlflow.search_runs(
        filter_string=filter_string, order_by=["attributes.start_time DESC"], max_results=1, output_format="list"
    )
    return runs[0] if runs else None


def _collect_data(client, ds: str, airflow_run_id: str | None) -> dict:
    query = f"tags.stage = 'data' and tags.ds = '{ds}'"
    if airflow_run_id:
        query += f" and tags.airflow_run_id = '{airflow_run_id}'"
    run = _newest_run(query)
    run_id = run.info.run_id if run is not None else None
    present = _artifact_paths(client, run_id, "data") if run_id else set()
    known = {artifact for _, artifact in DATA_CHECKS}
    # Checks logged under a name this module does not know yet still show, after the known ones.
    extra = sorted(p for p in present if p.endswith("_check.json") and p not in known)
    suites = [*DATA_CHECKS, *((p.rsplit("/", 1)[-1][: -len("_check.json")], p) for p in extra)]
    return {
        "run_id": run_id,
        "metrics": {k: _number(v) for k, v in sorted(run.data.metrics.items())} if run is not None else {},
        "quarantine": _load_json(run_id, QUARANTINE_ARTIFACT, present),
        "checks": [{"suite": s, "artifact": a, "result": _load_json(run_id, a, present)} for s, a in suites],
    }


def _rows(names: Iterable[str], own: Mapping[str, float], champ: Mapping[str, float]) -> list[dict]:
    return [{"name": n, "challenger": _number(own.get(n)), "champion": _number(champ.get(n))} for n in names]


def _slices(own: Mapping[str, float], champ: Mapping[str, float]) -> list[dict]:
    """One row per (metric, slice) from names like ``auc__city_3``; ``rows__<slice>`` gives the slice's size."""
    # Slice sizes are columns, not rows: ``rows__<slice>`` and prefixed copies such as ``single_rows__<slice>``.
    names = {n for n in (*own, *champ) if SLICE_SEPARATOR in n and not n.split(SLICE_SEPARATOR, 1)[0].endswith("rows")}
    out = []
    for name in sorted(names, key=lambda n: (n.split(SLICE_SEPARATOR, 1)[0], _natural(n.split(SLICE_SEPARATOR, 1)[1]))):
        metric, label = name.split(SLICE_SEPARATOR, 1)
        out.append(
            {
                "metric": metric,
                "slice": label,
                "rows": _number(own.get(f"rows{SLICE_SEPARATOR}{label}")),
                "champion_rows": _number(champ.get(f"rows{SLICE_SEPARATOR}{label}")),
                "challenger": _number(own.get(name)),
                "champion": _number(champ.get(name)),
            }
        )
    return out


# Verdicts recorded before they held structured checks: the wording of validation.gates that marked a failed
# line then. Read for those old runs only, so their cards stay as they were; a verdict with ``checks`` is never
# read this way.
_LEGACY_FAILED = re.compile(r" < floor | > ceiling |exceeds max|missing from|has no value to compare|never replaces")


def _failed_lines(verdict: dict) -> list[str]:
    """The lines of the verdict's failed checks (``validation.gates.Check``)."""
    if "checks" not in verdict:  # recorded before verdicts held checks
        return [str(r) for r in verdict.get("reasons") or [] if _LEGACY_FAILED.search(str(r))]
    return [str(c["message"]) for c in verdict["checks"] if not c.get("passed")]


def _gate(tags: Mapping[str, str], verdict: dict | None) -> dict:
    promoted = tags.get("promoted")
    if verdict is not None:
        return {
            "source": VERDICT_ARTIFACT,
            "passed": bool(verdict.get("passed")),
            "first_run": bool(verdict.get("first_run")),
            "reasons": [str(r) for r in verdict.get("reasons") or []],
            "failed": _failed_lines(verdict),
            "promoted": promoted,
        }
    if "gate_passed" in tags:  # the artifact is gone: the tags say the same, lines joined by "; "
        reasons, failed = tags.get("gate_reasons", ""), tags.get("gate_failed", "")
        return {
            "source": "tags",
            "passed": tags["gate_passed"] == "true",
            "first_run": tags.get("champion_version") == "none",
            "reasons": reasons.split("; ") if reasons else [],
            "failed": failed.split("; ") if failed else [],
            "promoted": promoted,
        }
    return {"source": None, "passed": None, "first_run": None, "reasons": [], "failed": [], "promoted": promoted}


def _config_diff(cfg: Config, client, model: str, params: Mapping[str, str], champion_version: str | None) -> dict:
    """The challenger's params against those of the champion's training run: only keys that differ or exist once."""
    import mlflow

    out = {"champion_run_id": None, "note": None, "rows": []}
    if champion_version is None:
        out["note"] = "not recorded: the run has no champion_version tag (the evaluate step did not run)"
        return out
    if champion_version == "none":
        out["note"] = "first run: no champion to compare with"
        return out
    try:
        run_id = client.get_model_version(tracking.model_name(cfg, model), champion_version).run_id
        if not run_id:
            out["note"] = f"champion v{champion_version} was registered without a training run"
            return out
        theirs = client.get_run(run_id).data.params
    except mlflow.exceptions.MlflowException as exc:
        out["note"] = f"the training run of champion v{champion_version} could not be read: {exc.message}"
        return out
    out["champion_run_id"] = run_id
    out["rows"] = [
        {"key": k, "challenger": params.get(k), "champion": theirs.get(k)}
        for k in sorted(set(params) | set(theirs))
        if params.get(k) != theirs.get(k)
    ]
    return out


def _recall_curves(own: Mapping[str, float], champ: Mapping[str, float]) -> dict | None:
    """recall@K against K: the challenger, the champion and the popularity, item-kNN and oracle references."""
    series: dict[str, dict[int, float]] = {}
    labels = {
        None: "challenger",
        "champion_": "champion",
        "popularity_": "popularity",
        "itemknn_": "item-kNN",
        "oracle_": "oracle",
    }
    for name, value in [*own.items(), *((CHAMPION_PREFIX + k, v) for k, v in champ.items())]:
        match = _RECALL_AT.match(name)
        if match and _number(value) is not None:
            series.setdefault(labels[match.group("prefix")], {})[int(match.group("k"))] = float(value)
    if "challenger" not in series:
        return None
    return {label: {"ks": sorted(points), "values": [points[k] for k in sorted(points)]} for label, points in series.items()}


def _training_curves(client, run_id: str, own: Mapping[str, float]) -> dict:
    """Per-epoch ``train_*`` metrics with at least two steps (single values such as ``train_seconds`` are not curves)."""
    out = {}
    for name in sorted(n for n in own if n.startswith("train_")):
        by_step: dict[int, float] = {}
        for m in sorted(client.get_metric_history(run_id, name), key=lambda m: m.timestamp):
            if _number(m.value) is not None:
                by_step[int(m.step)] = float(m.value)  # a step logged twice (a retried epoch): the last value
        if len(by_step) >= 2:
            out[name] = {"steps": sorted(by_step), "values": [by_step[s] for s in sorted(by_step)]}
    return out


def _roc(data) -> dict | None:
    if not isinstance(data, dict):
        return None
    fpr, tpr = data.get("fpr"), data.get("tpr")
    if not isinstance(fpr, list) or not isinstance(tpr, list) or len(fpr) != len(tpr) or len(fpr) < 2:
        return None
    return {"fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr]}


def _index_params(tags: Mapping[str, str]):
    raw = tags.get("index_params")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _collect_model(cfg: Config, client, model: str, found: dict | None) -> dict:
    kind = _kind(model)
    top_k = cfg.item2vec.top_k
    headline_metric = "auc" if kind == "ranking" else f"recall_at_{top_k}"
    if found is None:
        return {"model": model, "kind": kind, "run_id": None, "headline_metric": headline_metric}
    run = client.get_run(found["run_id"])
    run_id, tags, params = run.info.run_id, run.data.tags, run.data.params
    metrics = run.data.metrics
    own = {k: v for k, v in metrics.items() if not k.startswith(CHAMPION_PREFIX)}
    champ = {k[len(CHAMPION_PREFIX) :]: v for k, v in metrics.items() if k.startswith(CHAMPION_PREFIX)}
    if kind == "ranking":
        headline = [n for n in RANKING_HEADLINE if n in own or n in champ]
    else:
        wanted = (f"recall_at_{top_k}", f"hr_at_{top_k}", f"ndcg_at_{top_k}", f"coverage_at_{top_k}", "mean_target_rank")
        wanted += (f"popularity_recall_at_{top_k}", f"itemknn_recall_at_{top_k}", f"oracle_recall_at_{top_k}")
        headline = [n for n in wanted if n in own or n in champ]
    names = set(own) | set(champ)
    index_names = [n for n in names if n.startswith("index_") and SLICE_SEPARATOR not in n]
    index_order = [n for n in index_names if n.startswith("index_recall_at_")]
    index_order += [n for n in INDEX_METRICS if n in names] + sorted(set(index_names) - set(INDEX_METRICS) - set(index_order))
    training = sorted(n for n in own if n.startswith("train_"))
    grouped = set(headline) | set(index_order) | set(training)
    other = sorted(n for n in names if n not in grouped and SLICE_SEPARATOR not in n)
    gate_present = _artifact_paths(client, run_id, "gate")
    eval_present = _artifact_paths(client, run_id, "eval") if kind == "ranking" else set()
    return {
        "model": model,
        "kind": kind,
        "run_id": run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "airflow_run_id": tags.get("airflow_run_id"),
        "version": tags.get("model_version"),
        "index_version": tags.get("index_version"),
        "champion_version": tags.get("champion_version"),
        "champion_incompatible": tags.get("champion_incompatible"),
        "headline_metric": headline_metric,
        "metrics": {
            "headline": _rows(headline, own, champ),
            "other": _rows(other, own, champ),
            "training": _rows(training, own, {}),
        },
        "slices": _slices(own, champ),
        "index": {
            "metrics": _rows(index_order, own, champ),
            "params": _index_params(tags),
            "factory": tags.get("index_factory") or params.get("index_factory"),
            "error": tags.get("index_error"),
        },
        "gate": _gate(tags, _load_json(run_id, VERDICT_ARTIFACT, gate_present)),
        "config_diff": _config_diff(cfg, client, model, params, tags.get("champion_version")),
        "plots": {
            "roc": _roc(_load_json(run_id, ROC_ARTIFACT, eval_present)),
            "recall_at_k": _recall_curves(own, champ) if kind == "recall" else None,
            "training": _training_curves(client, run_id, own),
        },
    }


def collect(cfg: Config, ds: str, airflow_run_id: str | None) -> dict:
    """Read everything the run card shows for day ``ds`` (of one Airflow run, if given) from MLflow.

    Per model, the run is the newest training run of the day (``reporting.summarize``); a model with
    no run is listed with ``run_id`` None. Artifacts that were never logged come back as None.

    Raises:
        ValueError: ``ds`` is not a day.
    """
    import mlflow

    from reporting.summarize import summarize

    lake.parse_ds(ds)
    experiment_id = tracking.setup(cfg)
    client = mlflow.MlflowClient()
    # Each model's verdict is read from its artifact below (``_gate``), once: not by summarize too.
    found = {row["model"]: row for row in summarize(ds, airflow_run_id, cfg, verdicts=False)}
    return {
        "ds": ds,
        "airflow_run_id": airflow_run_id,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tracking_uri": _without_credentials(mlflow.get_tracking_uri()),
        "experiment_id": experiment_id,
        "top_k": cfg.item2vec.top_k,
        "data": _collect_data(client, ds, airflow_run_id),
        "models": [_collect_model(cfg, client, model, found.get(model)) for model in catalogue.MODELS],
    }
