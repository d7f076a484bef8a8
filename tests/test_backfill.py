"""A backfill as a data engineer runs it: ``airflow backfill create`` against a running ``airflow standalone``.

Two days (CLI) end with one successful run each and each day's own partitions; reprocessing one day
through the REST API (``POST /api/v2/backfills``, ``reprocess_behavior: completed``) rewrites the same outputs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from recpipe import lake
from tests.e2e_helpers import OUTPUTS, airflow, fingerprint, make_lake

pytestmark = pytest.mark.slow
DAG_ID = "nightly_retrain"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Standalone:
    """``airflow standalone`` in its own process group, on a free loopback port, with its own home."""

    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        self.home = home
        self.env = {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=60",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # The production path: each Spark job a spark-submit application through spark_default.
            "RECPIPE_SPARK": "submit",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        }
        self.proc: subprocess.Popen | None = None
        self.token = ""

    def start(self, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        airflow("db", "migrate", env=self.env)
        airflow("pools", "set", "gpu", "1", "GPU slots", env=self.env)
        log = open(self.home / "standalone.log", "w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "standalone"],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        while time.time() < deadline:
            assert self.proc.poll() is None, f"airflow standalone exited; see {self.home / 'standalone.log'}"
            try:
                health = self.request("GET", "/api/v2/monitor/health", auth=False)
                if health["scheduler"]["status"] == "healthy" and password_file.exists():
                    break
            except OSError:
                pass
            time.sleep(2)
        else:
            raise TimeoutError(f"airflow standalone not healthy after {timeout}s; see {self.home / 'standalone.log'}")
        password = json.loads(password_file.read_text())["admin"]
        self.token = self.request("POST", "/auth/token", {"username": "admin", "password": password}, auth=False)["access_token"]

    def request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)

    def create_backfill(self, body: dict, attempts: int = 5) -> dict:
        """POST /api/v2/backfills, retried on 503: on SQLite, Airflow answers a lock on its database with 503
        ("not supported on SQLite under concurrent access"), possibly after committing the backfill row; such
        a half-made backfill (no runs, never completed) is cancelled before the retry."""
        known = {b["id"] for b in self.request("GET", f"/api/v2/backfills?dag_id={DAG_ID}")["backfills"]}
        for attempt in range(attempts):
            try:
                return self.request("POST", "/api/v2/backfills", body)
            except urllib.error.HTTPError as exc:
                if exc.code != 503 or attempt == attempts - 1:
                    raise
            for backfill in self.request("GET", f"/api/v2/backfills?dag_id={DAG_ID}")["backfills"]:
                if backfill["id"] not in known and not backfill.get("completed_at"):
                    self.request("PUT", f"/api/v2/backfills/{backfill['id']}/cancel")
            time.sleep(5 * (attempt + 1))
        raise AssertionError("unreachable")

    def backfill_runs(self) -> dict[str, str]:
        runs = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
        return {r["logical_date"][:10]: r["state"] for r in runs}

    def wait_backfill(self, backfill_id: int, timeout: float = 2400) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.request("GET", f"/api/v2/backfills/{backfill_id}").get("completed_at"):
                return
            time.sleep(5)
        raise TimeoutError(f"backfill {backfill_id} not complete after {timeout}s: {self.backfill_runs()}")

    def latest_backfill_id(self) -> int:
        backfills = self.request("GET", f"/api/v2/backfills?dag_id={DAG_ID}")["backfills"]
        return max(b["id"] for b in backfills)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def standalone(tmp_path):
    server = Standalone(tmp_path / "airflow")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_backfill_two_days_then_reprocess_one(cfg, spark, standalone):
    # Two days keep the suite's time in bounds: each run is the whole DAG (Spark jobs, four trainings).
    days = make_lake(cfg, days=5, history=3, spark=spark)
    targets = days[3:]
    airflow("dags", "unpause", DAG_ID, env=standalone.env)
    # One run at a time, oldest first: each day's lookback window reads the earlier days' staged events.
    airflow(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        targets[0],
        "--to-date",
        targets[-1],
        "--reprocess-behavior",
        "none",
        "--max-active-runs",
        "1",
        env=standalone.env,
    )
    standalone.wait_backfill(standalone.latest_backfill_id())
    assert standalone.backfill_runs() == {ds: "success" for ds in targets}
    for ds in targets:
        for contract in OUTPUTS:
            assert lake.partition_ready(cfg.lake_root, contract, ds), (contract.name, ds)

    rerun = targets[-1]
    before = {c.name: fingerprint(cfg, c.name, rerun) for c in OUTPUTS}
    others = {c.name: fingerprint(cfg, c.name, targets[0]) for c in OUTPUTS}
    # The same through the REST API, as a script or the UI does it: redo the completed day.
    backfill = standalone.create_backfill(
        {
            "dag_id": DAG_ID,
            "from_date": f"{rerun}T00:00:00Z",
            "to_date": f"{rerun}T00:00:00Z",
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
        },
    )
    standalone.wait_backfill(backfill["id"])
    assert standalone.backfill_runs()[rerun] == "success"
    assert {c.name: fingerprint(cfg, c.name, rerun) for c in OUTPUTS} == before
    assert {c.name: fingerprint(cfg, c.name, targets[0]) for c in OUTPUTS} == others
