"""Gate a challenger run and promote its release (model version, and index version for recall models).

The verdict is logged into the challenger's run (tags ``gate_passed``, ``gate_reasons`` and the
artifact ``gate/verdict.json``). A release trained for an older day than the champion's never passes:
a backfill must not replace a newer model, and the newer champion has seen the older eval day.

Promotion is a compare-and-swap: it goes ahead only if the champion is still the one the gate compared
against. It moves the index's ``champion`` alias first and the model's last (serving resolves the
index through the model version's ``index_version`` tag); if moving the model alias fails, the index
alias is put back.
"""

from __future__ import annotations

import logging

from recpipe import tracking
from recpipe.config import Config
from validation import gates

log = logging.getLogger(__name__)


def _model_kind(model_key: str) -> str:
    return "recall" if model_key in tracking.RECALL_MODELS else "ranking"


def _older_than_champion(cfg: Config, model_key: str, tags: dict) -> str | None:
    """A reason to refuse when the champion was trained for a later day than this run, else None."""
    if tags["champion_version"] == "none":
        return None
    import mlflow

    registered = tracking.model_name(cfg, model_key)
    champion_ds = mlflow.MlflowClient().get_model_version(registered, tags["champion_version"]).tags.get("ds", "")
    if champion_ds > tags["ds"]:
        return (
            f"champion v{tags['champion_version']} was trained for ds={champion_ds}, after this run's ds={tags['ds']}: "
            "an older day never replaces a newer champion"
        )
    return None


def decide(model_key: str, cfg: Config, run_id: str) -> dict:
    """Gate the challenger run against the champion metrics logged into it by the evaluate step."""
    import mlflow

    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    if "champion_version" not in tags:
        raise RuntimeError(f"run {run_id} has no champion_version tag: run the evaluate step before the gate")
    prefix = "champion_"
    champion, no_champion = None, "first run: no champion to compare with"
    if tags.get("champion_incompatible"):
        no_champion = f"champion v{tags['champion_version']} cannot be compared: {tags['champion_incompatible']}"
    elif tags["champion_version"] != "none":
        champion = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
    challenger = {k: v for k, v in metrics.items() if not k.startswith(prefix)}
    thresholds = gates.thresholds_for(_model_kind(model_key), cfg.gates, cfg.item2vec.top_k)
    result = gates.evaluate_gate(challenger, champion, thresholds, no_champion)
    result = gates.GateResult(result.passed, result.reasons, first_run=tags["champion_version"] == "none")
    older = _older_than_champion(cfg, model_key, tags)
    if older:
        result = gates.GateResult(False, (*result.reasons, older), result.first_run)
    verdict = {
        "model": model_key,
        "run_id": run_id,
        "model_version": int(tags["model_version"]),
        "index_version": int(tags["index_version"]) if "index_version" in tags else None,
        "champion_version": tags["champion_version"],
        **result.to_dict(),
    }
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"gate_passed": str(result.passed).lower(), "gate_reasons": "; ".join(result.reasons)[:7900]})
        mlflow.log_dict(verdict, "gate/verdict.json")
    log.info("gate %s for %s: %s", "PASSED" if result.passed else "FAILED", model_key, "; ".join(result.reasons))
    return verdict


def promote(model_key: str, cfg: Config, verdict: dict) -> dict:
    """Set ``champion`` on the verdict's index and model versions if the gate passed; else change nothing."""
    import mlflow

    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    model = tracking.model_name(cfg, model_key)
    if not verdict["passed"]:
        client.set_tag(verdict["run_id"], "promoted", "false")
        log.info("not promoting %s v%s: gate failed", model, verdict["model_version"])
        return {"promoted": False, "model": model, "model_version": verdict["model_version"]}
    version = str(verdict["model_version"])
    current = tracking.alias_version(cfg, model, tracking.CHAMPION)
    current_version = "none" if current is None else str(current.version)
    if current_version != str(verdict["champion_version"]):
        raise RuntimeError(
            f"{model}: the champion moved from v{verdict['champion_version']} to v{current_version} after the gate ran; "
            f"not promoting v{version} over a champion it was not compared with. Rerun evaluate and gate."
        )
    if model_key in tracking.RECALL_MODELS:
        if verdict["index_version"] is None:
            raise RuntimeError(f"{model} v{version} has no index version: build the index before promoting")
        index = tracking.index_name(cfg, model_key)
        previous_index = tracking.alias_version(cfg, index, tracking.CHAMPION)
        client.set_model_version_tag(index, str(verdict["index_version"]), "model_version", version)
        client.set_model_version_tag(model, version, "index_version", str(verdict["index_version"]))
        client.set_registered_model_alias(index, tracking.CHAMPION, str(verdict["index_version"]))
        try:
            client.set_registered_model_alias(model, tracking.CHAMPION, version)
        except Exception:
            if previous_index is None:
                client.delete_registered_model_alias(index, tracking.CHAMPION)
            else:
                client.set_registered_model_alias(index, tracking.CHAMPION, str(previous_index.version))
            raise
    else:
        client.set_registered_model_alias(model, tracking.CHAMPION, version)
    client.set_tag(verdict["run_id"], "promoted", "true")
    log.info("promoted %s v%s (index v%s) to %s", model, version, verdict["index_version"], tracking.CHAMPION)
    return {
        "promoted": True,
        "model": model,
        "model_version": verdict["model_version"],
        "index_version": verdict["index_version"],
    }
