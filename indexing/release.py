"""Releases: what serves, how it changes, and the record of every change.

A release is (model version, index version) for a recall model and a model version for a ranking model.
The model's ``champion`` alias is the release pointer and the one commit point: serving resolves the
model by the alias and its index through the model version's ``index_version`` tag, so one alias write
switches both together. Every change goes through ``commit``:

1. prepare: tag the model version with its index version and the index version with its model version
   (new versions only, invisible to serving); open a history event with status ``started``;
2. commit: set the model's ``champion`` alias (a single registry write);
3. finalize: set the index's ``champion`` alias to follow, mark the history event ``completed``.

A process killed before step 2 leaves the previous champion serving; killed after it, the new release
serves and a rerun (or the task's retry) only finishes step 3. Either way the next ``commit`` for the
model first settles any open event: ``completed`` if its release is the one serving, else ``abandoned``.

MLflow keeps no alias history, so every promotion and rollback is a run of the ``<experiment>-releases``
experiment (when, who, why, from and to), which ``history`` reads back.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os

from recpipe import tracking
from recpipe.config import Config
from training import catalogue

log = logging.getLogger(__name__)
ACTOR_ENV = "RECPIPE_ACTOR"
ACTIONS = ("promote", "force_promote", "rollback")
STARTED, COMPLETED, ABANDONED = "started", "completed", "abandoned"
TAG = "release."


class ReleaseError(ValueError):
    """A release cannot be made as asked (no such version, no index, nothing to roll back to...)."""


class ChampionMoved(ReleaseError):
    """The champion is not the one the caller compared against: refuse rather than overwrite it."""

    def __init__(self, message: str, serving: str = "") -> None:
        super().__init__(message)
        self.serving = serving  # "v3" or "none": what serves now


@dataclasses.dataclass(frozen=True)
class Release:
    """One deployable unit of a model: its version, its index version (recall models) and data day."""

    model: str
    model_version: int
    index_version: int | None
    ds: str

    def describe(self) -> str:
        index = f" + index v{self.index_version}" if self.index_version is not None else ""
        return f"v{self.model_version}{index} (ds={self.ds or '?'})"


def actor() -> str:
    """Who is acting: ``$RECPIPE_ACTOR`` (set by the DAG), else the login name."""
    return os.environ.get(ACTOR_ENV) or getpass.getuser()


def release_of(cfg: Config, model_key: str, version: int | str) -> Release:
    """The release made of model version ``version`` (its index from the version's or its run's tags)."""
    import mlflow

    client = mlflow.MlflowClient()
    registered = tracking.model_name(cfg, model_key)
    try:
        mv = client.get_model_version(registered, str(version))
    except mlflow.exceptions.MlflowException as exc:
        raise ReleaseError(f"{registered} has no version {version}: {exc.message}") from None
    index = mv.tags.get("index_version")
    if index is None and catalogue.entry(model_key).has_index and mv.run_id:
        index = client.get_run(mv.run_id).data.tags.get("index_version")
    if catalogue.entry(model_key).has_index and index is None:
        raise ReleaseError(f"{registered} v{version} has no index version: build and register its index first")
    return Release(model_key, int(mv.version), None if index is None else int(index), mv.tags.get("ds", ""))


def current(cfg: Config, model_key: str) -> Release | None:
    """The release serving now (the model's ``champion`` alias), or None before the first release."""
    version = tracking.alias_version(cfg, tracking.model_name(cfg, model_key))
    return None if version is None else release_of(cfg, model_key, version.version)


def _history_experiment(cfg: Config) -> str:
    return tracking.ensure_experiment(cfg, f"{cfg.mlflow_experiment}-releases")


def _event_runs(cfg: Config, model_key: str, status: str | None = None) -> list:
    import mlflow

    query = f"tags.`{TAG}model` = '{model_key}'"
    if status:
        query += f" and tags.`{TAG}status` = '{status}'"
    runs = mlflow.MlflowClient().search_runs(
        [_history_experiment(cfg)], filter_string=query, order_by=["attributes.start_time ASC"], max_results=10_000
    )
    return list(runs)


def _event(run) -> dict:
    tags = run.data.tags
    out = {k[len(TAG) :]: v for k, v in tags.items() if k.startswith(TAG)}
    out["time_ms"] = run.info.start_time
    out["event_run_id"] = run.info.run_id
    return out


def history(cfg: Config, model_key: str) -> list[dict]:
    """Every promotion and rollback of ``model_key``, oldest first: time, action, actor, reason, from, to, status."""
    catalogue.entry(model_key)  # a clear error for an unknown model
    tracking.setup(cfg)
    return [_event(run) for run in _event_runs(cfg, model_key)]


def _settle_open_events(cfg: Config, model_key: str, serving: Release | None) -> None:
    """Close events left ``started`` by a killed process: completed if their release serves, else abandoned."""
    import mlflow

    client = mlflow.MlflowClient()
    for run in _event_runs(cfg, model_key, STARTED):
        to = int(run.data.tags[f"{TAG}to_model_version"])
        applied = serving is not None and serving.model_version == to
        client.set_tag(run.info.run_id, f"{TAG}status", COMPLETED if applied else ABANDONED)
        client.set_terminated(run.info.run_id, "FINISHED" if applied else "KILLED")
        log.warning("history event %s (to v%s) was left open: %s", run.info.run_id, to, "applied" if applied else "abandoned")


def _open_event(cfg: Config, action: str, before: Release | None, target: Release, who: str, reason: str, extra: dict) -> str:
    import mlflow

    tags = {
        "model": target.model,
        "action": action,
        "status": STARTED,
        "actor": who,
        "reason": reason[:4900],
        "from_model_version": "none" if before is None else str(before.model_version),
        "from_index_version": "none" if before is None or before.index_version is None else str(before.index_version),
        "to_model_version": str(target.model_version),
        "to_index_version": "none" if target.index_version is None else str(target.index_version),
        "to_ds": target.ds,
        **{k: str(v) for k, v in extra.items()},
    }
    previous = "nothing" if before is None else before.describe()
    run = mlflow.MlflowClient().create_run(
        _history_experiment(cfg),
        tags={f"{TAG}{k}": v for k, v in tags.items()},
        run_name=f"{action} {target.model} {previous} -> {target.describe()}",
    )
    return run.info.run_id


def _finalize(cfg: Config, target: Release, event_run_id: str | None) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    if target.index_version is not None:
        client.set_registered_model_alias(tracking.index_name(cfg, target.model), tracking.CHAMPION, str(target.index_version))
    if event_run_id is not None:
        client.set_tag(event_run_id, f"{TAG}status", COMPLETED)
        client.set_terminated(event_run_id, "FINISHED")


def commit(
    cfg: Config,
    target: Release,
    *,
    action: str,
    expected: int | str | None = "any",
    who: str | None = None,
    reason: str = "",
    extra: dict | None = None,
) -> dict:
    """Make ``target`` the serving release, recorded in the history; idempotent.

    ``expected`` is the model version the caller believes is champion (None: no champion yet; "any": do
    not check). If the champion is already ``target``, only the finishing steps run (a rerun after a
    crash); if it is neither ``target`` nor ``expected``, ``ChampionMoved`` is raised and nothing changes.
    """
    import mlflow

    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, received {action!r}")
    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    registered = tracking.model_name(cfg, target.model)
    before = current(cfg, target.model)
    _settle_open_events(cfg, target.model, before)
    if before is not None and before.model_version == target.model_version:
        _finalize(cfg, target, None)
        log.info("%s %s is already the champion: nothing to switch", registered, target.describe())
        return {"changed": False, "from": dataclasses.asdict(before), "to": dataclasses.asdict(target)}
    before_version = None if before is None else before.model_version
    if expected != "any" and before_version != (None if expected is None else int(expected)):
        serving = "none" if before is None else f"v{before_version}"
        raise ChampionMoved(
            f"{registered}: the champion is {serving}, not {'none' if expected is None else 'v' + str(expected)} "
            f"as expected; not switching to {target.describe()}",
            serving,
        )
    if target.index_version is not None:  # prepare: new versions only, nothing serving reads yet
        client.set_model_version_tag(
            tracking.index_name(cfg, target.model), str(target.index_version), "model_version", str(target.model_version)
        )
        client.set_model_version_tag(registered, str(target.model_version), "index_version", str(target.index_version))
    event = _open_event(cfg, action, before, target, who or actor(), reason, extra or {})
    client.set_registered_model_alias(registered, tracking.CHAMPION, str(target.model_version))  # the commit point
    _finalize(cfg, target, event)
    log.info("%s: %s %s -> %s", registered, action, "nothing" if before is None else before.describe(), target.describe())
    return {
        "changed": True,
        "from": None if before is None else dataclasses.asdict(before),
        "to": dataclasses.asdict(target),
        "event_run_id": event,
    }


def previous_release(cfg: Config, model_key: str) -> Release:
    """The release that served before the current one, by the history."""
    serving = current(cfg, model_key)
    if serving is None:
        raise ReleaseError(f"{tracking.model_name(cfg, model_key)} has no champion: nothing to roll back")
    for event in reversed(history(cfg, model_key)):
        if event["status"] == COMPLETED and int(event["to_model_version"]) == serving.model_version:
            if event["from_model_version"] == "none":
                name = tracking.model_name(cfg, model_key)
                raise ReleaseError(f"{name} v{serving.model_version} was its first release: nothing to roll back to")
            return release_of(cfg, model_key, event["from_model_version"])
    raise ReleaseError(
        f"the release history of {model_key} does not say how v{serving.model_version} became champion: "
        "name the version to restore with --to"
    )


def rollback(cfg: Config, model_key: str, to_version: int | None = None, *, who: str | None = None, reason: str = "") -> dict:
    """Restore the previous release (or release ``to_version``, which must have been released before)."""
    tracking.setup(cfg)
    serving = current(cfg, model_key)
    if serving is None:
        raise ReleaseError(f"{tracking.model_name(cfg, model_key)} has no champion: nothing to roll back")
    if to_version is None:
        target = previous_release(cfg, model_key)
    else:
        released = {int(e["to_model_version"]) for e in history(cfg, model_key) if e["status"] == COMPLETED}
        if int(to_version) not in released:
            raise ReleaseError(
                f"{tracking.model_name(cfg, model_key)} v{to_version} was never released (released: {sorted(released)}); "
                "use `recpipe promote --force` to release a version for the first time"
            )
        target = release_of(cfg, model_key, to_version)
    return commit(cfg, target, action="rollback", expected=serving.model_version, who=who, reason=reason or "rollback")
