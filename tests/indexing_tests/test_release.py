"""Releases against a real MLflow registry (SQLite): history, forced promotion, rollback, and crash safety."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from indexing import release
from indexing.promote import decide, promote, promote_version
from orchestration import cli
from recpipe import tracking
from tests.conftest import write_config
from tests.indexing_tests.test_promote import _champion, _release
from training import catalogue

ROOT = Path(__file__).resolve().parents[2]
RECALL = {"recall_at_50": 0.30, "index_recall_at_50": 0.97, "index_latency_ms_p99_batch1": 1.0}


def _nightly(cfg, model: str, ds: str, metrics: dict, champion: str) -> dict:
    """A gated training run of ``model`` for day ``ds``, as the DAG leaves it before its promote task."""
    index = model in catalogue.RECALL_MODELS
    return decide(model, cfg, _release(cfg, model, ds, metrics, champion, index=index))


def _serving(cfg, model: str) -> tuple[str | None, str | None]:
    """(model version, index version) serving now, resolved the way serving does: through the model alias."""
    now = release.current(cfg, model)
    if now is None:
        return None, None
    index = mlflow.MlflowClient().get_model_version(tracking.index_name(cfg, model), str(now.index_version))
    assert index.tags["model_version"] == str(now.model_version)  # the index was built from this model's vectors
    return str(now.model_version), str(now.index_version)


def test_history_records_every_promotion_and_rollback_and_rollback_is_one_command(cfg, capsys):
    promote("item2vec", cfg, _nightly(cfg, "item2vec", "2026-11-04", RECALL, "none"))
    promote("item2vec", cfg, _nightly(cfg, "item2vec", "2026-11-05", {**RECALL, "champion_recall_at_50": 0.3}, "1"))
    assert _serving(cfg, "item2vec") == ("2", "2")
    config = ["--config", os.environ["RECPIPE_CONFIG"]]

    assert cli.main([*config, "rollback", "item2vec", "--by", "dana", "--reason", "bad recall in city 3"]) == 0
    assert "champion v2 + index v2 (ds=2026-11-05) -> v1 + index v1 (ds=2026-11-04)" in capsys.readouterr().out
    assert _serving(cfg, "item2vec") == ("1", "1")
    assert _champion(cfg, tracking.index_name(cfg, "item2vec")) == "1"  # the index alias follows

    events = release.history(cfg, "item2vec")
    assert [(e["action"], e["from_model_version"], e["to_model_version"], e["status"]) for e in events] == [
        ("promote", "none", "1", "completed"),
        ("promote", "1", "2", "completed"),
        ("rollback", "2", "1", "completed"),
    ]
    assert events[2]["actor"] == "dana" and events[2]["reason"] == "bad recall in city 3"
    assert events[0]["time_ms"] <= events[1]["time_ms"] <= events[2]["time_ms"]
    assert cli.main([*config, "releases", "item2vec"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and printed[3].split()[2:6] == ["rollback", "v2", "v1", "v1"]
    assert printed[3].endswith("dana                     bad recall in city 3")

    # Rolling back the rollback restores v2; --to a version never released is refused.
    assert release.rollback(cfg, "item2vec")["to"]["model_version"] == 2
    assert cli.main([*config, "rollback", "item2vec", "--to", "7"]) == 2
    assert "v7 was never released (released: [1, 2])" in capsys.readouterr().err
    assert release.rollback(cfg, "item2vec", to_version=1)["to"]["model_version"] == 1
    assert release.rollback(cfg, "item2vec")["to"]["model_version"] == 2  # undo of the last change


def test_nothing_to_roll_back(cfg):
    with pytest.raises(release.ReleaseError, match="has no champion: nothing to roll back"):
        release.rollback(cfg, "wide_deep")
    promote("wide_deep", cfg, _nightly(cfg, "wide_deep", "2026-11-04", {"auc": 0.7}, "none"))
    with pytest.raises(release.ReleaseError, match="v1 was its first release: nothing to roll back to"):
        release.rollback(cfg, "wide_deep")


def test_force_overrides_a_failed_gate_and_records_who_and_why(cfg, capsys):
    name = tracking.model_name(cfg, "wide_deep")
    promote("wide_deep", cfg, _nightly(cfg, "wide_deep", "2026-11-04", {"auc": 0.70}, "none"))
    failed = _nightly(cfg, "wide_deep", "2026-11-05", {"auc": 0.60, "champion_auc": 0.70}, "1")
    assert promote("wide_deep", cfg, failed)["promoted"] is False
    config = ["--config", os.environ["RECPIPE_CONFIG"]]

    assert cli.main([*config, "promote", "wide_deep", "--version", "2"]) == 2
    refused = capsys.readouterr().err
    assert "v2 did not pass its gate (" in refused and "auc=0.6000 vs champion 0.7000: drop +0.1000 exceeds" in refused
    assert cli.main([*config, "promote", "wide_deep", "--force"]) == 2
    assert "--force needs --reason" in capsys.readouterr().err
    assert _champion(cfg, name) == "1"

    assert cli.main([*config, "promote", "wide_deep", "--force", "--reason", "eval day had a logging outage", "--by", "lee"]) == 0
    assert capsys.readouterr().out == "wide_deep: champion v1 (ds=2026-11-04) -> v2 (ds=2026-11-05)\n"
    assert _champion(cfg, name) == "2"
    last = release.history(cfg, "wide_deep")[-1]
    assert (last["action"], last["actor"], last["reason"], last["gate_passed"]) == (
        "force_promote",
        "lee",
        "eval day had a logging outage",
        "false",
    )
    version = mlflow.MlflowClient().get_model_version(name, "2")
    assert version.tags["forced_by"] == "lee" and version.tags["forced_reason"] == "eval day had a logging outage"
    assert cli.main([*config, "releases", "wide_deep", "--json"]) == 0
    assert [e["to_model_version"] for e in json.loads(capsys.readouterr().out)] == ["1", "2"]


def test_a_passed_gate_against_another_champion_is_refused_without_force(cfg):
    promote("wide_deep", cfg, _nightly(cfg, "wide_deep", "2026-11-04", {"auc": 0.70}, "none"))
    _nightly(cfg, "wide_deep", "2026-11-05", {"auc": 0.72, "champion_auc": 0.70}, "1")  # v2, gated, not promoted
    promote("wide_deep", cfg, _nightly(cfg, "wide_deep", "2026-11-06", {"auc": 0.73, "champion_auc": 0.70}, "1"))  # v3
    with pytest.raises(release.ChampionMoved, match="v2 was gated against champion 1, but 3 serves now"):
        promote_version(cfg, "wide_deep", 2)


def test_promotion_is_idempotent(cfg):
    verdict = _nightly(cfg, "item2vec", "2026-11-04", RECALL, "none")
    assert promote("item2vec", cfg, verdict)["promoted"]
    assert promote("item2vec", cfg, verdict)["promoted"]  # an Airflow retry of a task that had succeeded
    assert [e["status"] for e in release.history(cfg, "item2vec")] == ["completed"]
    assert _serving(cfg, "item2vec") == ("1", "1")


CRASH = """
import json, os, signal, sys
import mlflow
from indexing.promote import promote
from recpipe.config import load_config
from training import catalogue

kill_at, writes = int(sys.argv[1]), []
WRITES = ("create_experiment", "create_run", "set_tag", "set_terminated", "set_model_version_tag",
          "set_registered_model_alias", "delete_registered_model_alias")

def wrap(name):
    real = getattr(mlflow.MlflowClient, name)
    def write(self, *args, **kwargs):
        if len(writes) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # killed between two registry writes, as a lost node would be
        writes.append(name)
        return real(self, *args, **kwargs)
    return write

for name in WRITES:
    setattr(mlflow.MlflowClient, name, wrap(name))
promote("item2vec", load_config(), json.loads(sys.argv[2]))
print(json.dumps(writes))
"""


def _promote_in_child(config: Path, verdict: dict, kill_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECPIPE_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", CRASH, str(kill_at), json.dumps(verdict)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def test_a_promotion_killed_between_any_two_steps_leaves_one_whole_release(cfg, tmp_path, monkeypatch):
    promote("item2vec", cfg, _nightly(cfg, "item2vec", "2026-11-04", RECALL, "none"))
    verdict = _nightly(cfg, "item2vec", "2026-11-05", {**RECALL, "champion_recall_at_50": 0.3}, "1")
    db = Path(cfg.mlflow_tracking_uri[len("sqlite:///") :])
    template = tmp_path / "template.db"
    shutil.copy(db, template)

    whole = _promote_in_child(Path(os.environ["RECPIPE_CONFIG"]), verdict, kill_at=-1)
    assert whole.returncode == 0, whole.stderr
    steps = json.loads(whole.stdout.strip().splitlines()[-1])
    assert "set_registered_model_alias" in steps and len(steps) >= 6
    for kill_at in range(len(steps)):
        root = tmp_path / f"kill{kill_at}"
        config = write_config(root)
        (root / "mlflow").mkdir(parents=True, exist_ok=True)
        shutil.copy(template, root / "mlflow" / "mlflow.db")
        monkeypatch.setenv("RECPIPE_CONFIG", str(config))
        from recpipe.config import load_config

        here = load_config()
        tracking.setup(here)
        killed = _promote_in_child(config, verdict, kill_at)
        assert killed.returncode == -9, (kill_at, killed.stderr[-2000:])
        committed = kill_at > steps.index("set_registered_model_alias")
        # Serving sees exactly the old release or exactly the new one, never a model with another's index.
        assert _serving(here, "item2vec") == (("2", "2") if committed else ("1", "1")), (kill_at, steps[kill_at])
        # The task's retry finishes the job, and the history ends with one completed switch to v2.
        assert promote("item2vec", here, verdict)["promoted"]
        assert _serving(here, "item2vec") == ("2", "2")
        assert _champion(here, tracking.index_name(here, "item2vec")) == "2"
        events = release.history(here, "item2vec")
        assert [e["status"] for e in events if e["to_model_version"] == "2"].count("completed") == 1, (kill_at, events)
        assert all(e["status"] in ("completed", "abandoned") for e in events), (kill_at, events)
