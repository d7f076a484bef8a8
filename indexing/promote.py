"""Gate a challenger run and promote its release (model version, and index version for recall models).

The verdict is logged into the challenger's run (tags ``gate_passed``, ``gate_reasons`` and the
artifact ``gate/verdict.json``). A release trained for an older day than the champion's never passes:
a backfill must not replace a newer model, and the newer champion has seen the older eval day.

Promotion goes through ``indexing.release.commit``: a compare-and-swap on the champion the gate compared
against, one alias write as the commit point, idempotent, and recorded in the release history.
``promote_version`` is the command line's way in, with ``--force`` to override a failed gate.
"""

from __future__ import annotations

import dataclasses
import logging

from indexing import release
from recpipe import tracking
from recpipe.config import Config
from training import catalogue
from validation import gates

log = logging.getLogger(__name__)


def _older_day(cfg: Config, model_key: str, tags: dict) -> gates.Check | None:
    """The older-day check: this run's day against the champion's (None without a champion)."""
    if tags["champion_version"] == "none":
        return None
    import mlflow

    registered = tracking.model_name(cfg, model_key)
    champion_ds = mlflow.MlflowClient().get_model_version(registered, tags["champion_version"]).tags.get("ds", "")
    return gates.older_day_check(tags["ds"], champion_ds, tags["champion_version"])


def decide(model_key: str, cfg: Config, run_id: str) -> dict:
    """Gate the challenger run against the champion metrics logged into it by the evaluate step.

    The verdict (``gate/verdict.json``) holds the structured checks (``validation.gates.Check``); the tags
    ``gate_reasons`` and ``gate_failed`` hold their lines, all and failed, for MLflow's run table.
    """
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
    kind = catalogue.entry(model_key).kind
    thresholds, small = gates.thresholds_for(kind, cfg.gates, cfg.item2vec.top_k, challenger)
    result = gates.evaluate_gate(challenger, champion, thresholds, no_champion)
    result = dataclasses.replace(result, first_run=tags["champion_version"] == "none")
    if small:
        result = result.with_notes(f"slices under {cfg.gates.min_slice_rows} rows, not gated: {', '.join(small)}")
    older = _older_day(cfg, model_key, tags)
    if older is not None and not older.passed:  # recorded when it decides the verdict, like the notes
        result = result.with_checks(older)
    verdict = {
        "model": model_key,
        "run_id": run_id,
        "model_version": int(tags["model_version"]),
        "index_version": int(tags["index_version"]) if "index_version" in tags else None,
        "champion_version": tags["champion_version"],
        **result.to_dict(),
    }
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags(
            {
                "gate_passed": str(result.passed).lower(),
                "gate_reasons": "; ".join(result.reasons)[:7900],
                "gate_failed": "; ".join(c.message for c in result.failed)[:7900],
            }
        )
        mlflow.log_dict(verdict, "gate/verdict.json")
    log.info("gate %s for %s: %s", "PASSED" if result.passed else "FAILED", model_key, "; ".join(result.reasons))
    return verdict


def promote(model_key: str, cfg: Config, verdict: dict, who: str | None = None) -> dict:
    """Make the verdict's release the champion if its gate passed; else change nothing. Idempotent.

    ``who`` is the actor recorded in the release history (default ``release.actor()``).
    """
    import mlflow

    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    model = tracking.model_name(cfg, model_key)
    if not verdict["passed"]:
        client.set_tag(verdict["run_id"], "promoted", "false")
        log.info("not promoting %s v%s: gate failed", model, verdict["model_version"])
        return {"promoted": False, "model": model, "model_version": verdict["model_version"]}
    if catalogue.entry(model_key).has_index and verdict["index_version"] is None:
        raise release.ReleaseError(f"{model} v{verdict['model_version']} has no index version: build the index before promoting")
    target = release.Release(
        model_key, int(verdict["model_version"]), verdict["index_version"], _run_ds(client, verdict["run_id"])
    )
    expected = None if verdict["champion_version"] == "none" else int(verdict["champion_version"])
    try:
        release.commit(
            cfg,
            target,
            action="promote",
            expected=expected,
            who=who,
            reason="gate passed",
            extra={"gate_run_id": verdict["run_id"]},
        )
    except release.ChampionMoved as exc:
        raise RuntimeError(
            f"{model}: the champion moved from v{verdict['champion_version']} to {exc.serving} after the gate ran; "
            f"not promoting v{target.model_version} over a champion it was not compared with. Rerun evaluate and gate."
        ) from exc
    client.set_tag(verdict["run_id"], "promoted", "true")
    log.info("promoted %s %s to %s", model, target.describe(), tracking.CHAMPION)
    return {
        "promoted": True,
        "model": model,
        "model_version": verdict["model_version"],
        "index_version": verdict["index_version"],
    }


def _run_ds(client, run_id: str) -> str:
    return client.get_run(run_id).data.tags.get("ds", "")


def promote_version(
    cfg: Config, model_key: str, version: int | None = None, *, force: bool = False, reason: str = "", who: str | None = None
) -> dict:
    """Promote model version ``version`` (default: the newest) by hand.

    Without ``force`` its run's gate must have passed against the champion serving now. With ``force`` a
    failed (or missing) gate is overridden; ``reason`` is then required and is recorded with who and when
    in the release history and on the model version.
    """
    import mlflow

    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    registered = tracking.model_name(cfg, model_key)
    if force and not reason.strip():
        raise ValueError("--force needs --reason: say why the gate is overridden; it is recorded in the release history")
    if version is None:
        versions = client.search_model_versions(f"name = '{registered}'", order_by=["version_number DESC"], max_results=1)
        if not versions:
            raise release.ReleaseError(f"{registered} has no versions to promote")
        version = int(versions[0].version)
    target = release.release_of(cfg, model_key, version)
    run_id = client.get_model_version(registered, str(version)).run_id
    tags = client.get_run(run_id).data.tags
    serving = release.current(cfg, model_key)
    gate = tags.get("gate_passed")
    if not force:
        if gate != "true":
            why = tags.get("gate_reasons") or "no gate verdict was recorded"
            raise release.ReleaseError(f"{registered} v{version} did not pass its gate ({why}); use --force --reason to override")
        gated_against = tags.get("champion_version")
        serving_now = "none" if serving is None else str(serving.model_version)
        if gated_against != serving_now:
            raise release.ChampionMoved(
                f"{registered} v{version} was gated against champion {gated_against}, but {serving_now} serves now; "
                "use --force --reason to promote anyway"
            )
    who = who or release.actor()
    action = "force_promote" if force else "promote"
    extra = {"gate_run_id": run_id, "gate_passed": gate or "none"}
    result = release.commit(
        cfg,
        target,
        action=action,
        expected=None if serving is None else serving.model_version,
        who=who,
        reason=reason or "gate passed",
        extra=extra,
    )
    client.set_tag(run_id, "promoted", "true")
    if force:
        client.set_model_version_tag(registered, str(version), "forced_by", who)
        client.set_model_version_tag(registered, str(version), "forced_reason", reason[:4900])
        client.set_tag(run_id, "forced_promotion", f"{who}: {reason}"[:4900])
    return result
