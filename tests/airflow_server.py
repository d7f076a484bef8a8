"""A real Airflow deployment for end-to-end tests: ``airflow standalone`` on loopback over its own PostgreSQL.

PostgreSQL, not SQLite, holds Airflow's metadata here, as in production (docker/compose.yaml): under SQLite the
scheduler, the API server and the CLI lock each other out, and Airflow answers a lock with an HTTP 500 or 503.
The server is the system's ``postgres`` (Debian's postgresql package), initialised in a folder of the test's,
listening on a free loopback port with trust authentication on loopback only, and stopped with the test.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e_helpers import airflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(tool: str) -> str:
    """A PostgreSQL server program: Debian keeps them under /usr/lib/postgresql/<major>/bin, off PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}")) or [shutil.which(tool) or ""]
    if not found[-1]:
        raise FileNotFoundError(f"PostgreSQL's {tool} not found: install Debian's postgresql package (make test does)")
    return found[-1]


class Postgres:
    """A throw-away PostgreSQL cluster in a folder of its own under the system's temporary folder, removed on stop.

    As root it runs as the ``postgres`` user (initdb refuses root), so its folder is not under pytest's
    ``tmp_path``, which only root may enter.
    """

    def __init__(self, user: str = "airflow") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="recpipe-postgres-"))
        self.user, self.port = user, free_port()
        self.data = self.root / "data"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *cmd: str) -> None:
        proc = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"

    def start(self) -> None:
        if self._as:
            shutil.chown(self.root, "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "--auth=trust", "-U", self.user, "-E", "UTF8", "--no-locale")
        # fsync off: a test database is thrown away, durability buys nothing here.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "postgres.log"), "-w", "start")
        self._run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "airflow")

    def url(self, database: str = "airflow") -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class Standalone:
    """``airflow standalone`` in its own process group, on a free loopback port, with its own home and database."""

    def __init__(self, home: Path, database_url: str) -> None:
        self.port = free_port()
        self.home = home
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # The production path: each Spark job a spark-submit application through spark_default.
            "RECPIPE_SPARK": "submit",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        }
        self.proc: subprocess.Popen | None = None
        self.token = ""
        self.password = ""

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
        self.password = json.loads(password_file.read_text())["admin"]
        body = {"username": "admin", "password": self.password}
        self.token = self.request("POST", "/auth/token", body, auth=False)["access_token"]

    def request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        """One REST call; an error response fails with its status and body (Airflow's ``detail``)."""
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise AssertionError(f"{method} {path} answered {exc.code}: {detail}") from exc

    def backfills(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/backfills?dag_id={dag_id}")["backfills"]

    def dag_runs(self, dag_id: str, run_type: str = "backfill") -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?run_type={run_type}&limit=100")["dag_runs"]

    def wait_backfill(self, backfill_id: int, timeout: float = 2400) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            backfill = self.request("GET", f"/api/v2/backfills/{backfill_id}")
            if backfill.get("completed_at"):
                return backfill
            time.sleep(5)
        runs = {r["logical_date"][:10]: r["state"] for r in self.dag_runs(backfill["dag_id"])}
        raise TimeoutError(f"backfill {backfill_id} not complete after {timeout}s: {runs}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
