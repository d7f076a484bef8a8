"""The ETL on a real Spark standalone cluster: a master and one worker on loopback.

``scripts/spark_standalone.sh`` starts them on free ports; the jobs go through ``spark-submit --master
spark://...`` as the DAG's SparkSubmitOperator sends them (plus JIT flags for speed), and their partitions
must equal those of the same jobs run with ``local[1]``. The DAG's own task reaches the same cluster when only
the ``spark_default`` connection names its master.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from recpipe import contracts, lake, synthetic
from recpipe.config import Config, load_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "spark_standalone.sh"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
DS = "2026-11-01"
# The DAG's SPARK_CONF (dags/nightly_retrain.py), which SparkSubmitOperator passes as --conf.
DAG_CONF = {"spark.sql.shuffle.partitions": "8", "spark.ui.showConsoleProgress": "false"}
# The driver and executor JVMs live for seconds on tiny data: C1-only JIT nearly halves their wall time.
FAST_JVM = "-XX:TieredStopAtLevel=1"
CONFIG = "lake_root: {root}/lake\nmlflow_tracking_uri: sqlite:///{root}/mlflow.db\nmlflow_artifact_root: {root}/artifacts\n"
PROBE = """\
import json, os, sys
from pyspark.sql import SparkSession

def where(_):
    import recpipe.contracts, spark_jobs.sessions
    yield sys.prefix, os.getcwd(), recpipe.contracts.__name__, spark_jobs.sessions.__name__

spark = SparkSession.builder.appName("recpipe-import-probe").getOrCreate()
print(json.dumps(spark.sparkContext.parallelize([0], 1).mapPartitions(where).collect()[0]))
spark.stop()
"""


@dataclasses.dataclass(frozen=True)
class Cluster:
    url: str
    ui: str
    work: Path


def _free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that were free a moment ago (all bound at once, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _script(action: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and one worker (1 core, 1 GiB) started by the script; always stopped afterwards."""
    state = tmp_path_factory.mktemp("spark-standalone")
    port, ui_port, worker_ui_port = _free_ports(3)
    env = {
        **os.environ,
        "SPARK_STANDALONE_DIR": str(state),
        "SPARK_MASTER_PORT": str(port),
        "SPARK_MASTER_WEBUI_PORT": str(ui_port),
        "SPARK_WORKER_WEBUI_PORT": str(worker_ui_port),
        "PYSPARK_PYTHON": sys.executable,
    }
    try:
        started = _script("start", env)
        assert started.returncode == 0, f"spark_standalone.sh start failed:\n{started.stdout}\n{started.stderr}"
        assert started.stdout.split() == [f"spark://127.0.0.1:{port}"], started.stdout
        yield Cluster(url=f"spark://127.0.0.1:{port}", ui=f"http://127.0.0.1:{ui_port}", work=state / "work")
    finally:
        stopped = _script("stop", env)
        assert stopped.returncode == 0, f"spark_standalone.sh stop failed:\n{stopped.stdout}\n{stopped.stderr}"
        status = _script("status", env)
        assert status.returncode == 3, f"still running after stop:\n{status.stdout}"


def _lake(root: Path) -> Path:
    """A config file whose lake holds one generated day of tiny raw logs (same seed, same bytes)."""
    root.mkdir(parents=True)
    path = root / "recpipe.yaml"
    path.write_text(CONFIG.format(root=root))
    synthetic.generate(load_config(path).lake_root, days=1, users=40, items=48, seed=5, start=DS)
    return path


def _submit(master: str, application: str, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    """``spark-submit`` as SparkSubmitOperator builds it: --master, --conf per SPARK_CONF, --name, app, args."""
    name = f"recpipe-{Path(application).stem}-{DS}"
    confs = [arg for key, value in DAG_CONF.items() for arg in ("--conf", f"{key}={value}")]
    fast = ["--driver-java-options", FAST_JVM, "--conf", f"spark.executor.extraJavaOptions={FAST_JVM}"]
    cmd = [str(SPARK_SUBMIT), "--master", master, *confs, *fast, "--name", name, application, *args]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    if config is not None:
        env["RECPIPE_CONFIG"] = str(config)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def _run_etl(master: str, config: Path) -> list[subprocess.CompletedProcess]:
    """stage_events, then sessions, for DS: the DAG's first two Spark tasks."""
    runs = []
    for job in ("stage_events", "sessions"):
        application = importlib.util.find_spec(f"spark_jobs.{job}").origin  # as the DAG finds it
        runs.append(_submit(master, application, "--ds", DS, config=config))
    return runs


def _app_id(proc: subprocess.CompletedProcess) -> str:
    found = re.search(r"Connected to Spark cluster with app ID (app-\S+)", proc.stderr)
    assert found, f"the driver never connected to a standalone master:\n{proc.stderr[-3000:]}"
    return found.group(1)


def _completed_apps(cluster: Cluster, app_ids: list[str]) -> dict[str, dict]:
    """The master's record of the given applications, once it lists them all as completed."""
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(f"{cluster.ui}/json/", timeout=5) as response:
            done = {app["id"]: app for app in json.load(response)["completedapps"]}
        if set(app_ids) <= done.keys() or time.monotonic() > deadline:
            return {app_id: done.get(app_id, {}) for app_id in app_ids}
        time.sleep(0.5)


def _apps_named(cluster: Cluster, name: str) -> list[dict]:
    with urllib.request.urlopen(f"{cluster.ui}/json/", timeout=5) as response:
        return [app for app in json.load(response)["completedapps"] if app["name"] == name]


def _rows(cfg: Config, dataset: contracts.Contract) -> list[dict]:
    table = pads.dataset(lake.partition_uri(cfg.lake_root, dataset, DS), format="parquet").to_table()
    return sorted(table.to_pylist(), key=repr)


def test_executors_run_the_venv_python_and_import_the_project(cluster, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    proc = _submit(cluster.url, str(probe))
    prefix, cwd, *modules = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("[")))
    assert Path(cwd).is_relative_to(cluster.work / _app_id(proc))  # a Python worker of the cluster's executor
    assert prefix == sys.prefix
    assert modules == ["recpipe.contracts", "spark_jobs.sessions"]


def test_etl_on_the_cluster_writes_what_local_mode_writes(cluster, tmp_path):
    cluster_config, local_config = _lake(tmp_path / "cluster"), _lake(tmp_path / "local")
    with ThreadPoolExecutor(max_workers=1) as pool:  # the local[1] reference runs alongside, on the other core
        local_runs = pool.submit(_run_etl, "local[1]", local_config)
        cluster_runs = _run_etl(cluster.url, cluster_config)
        local_runs.result()
    on_cluster, on_local = load_config(cluster_config), load_config(local_config)

    for proc, written in zip(cluster_runs, (contracts.STAGED_EVENTS, contracts.SESSIONS), strict=True):
        assert lake.partition_uri(on_cluster.lake_root, written, DS) in proc.stdout.splitlines()  # what main() prints
    app_ids = [_app_id(p) for p in cluster_runs]
    apps = _completed_apps(cluster, app_ids)
    assert [apps[a].get("state") for a in app_ids] == ["FINISHED", "FINISHED"], apps
    assert [apps[a].get("name") for a in app_ids] == [f"recpipe-stage_events-{DS}", f"recpipe-sessions-{DS}"]
    for app_id in app_ids:  # the tasks ran in an executor the worker launched, not in the driver
        assert list((cluster.work / app_id).glob("*/stderr")), f"no executor of {app_id} under {cluster.work}"

    staged = _rows(on_cluster, contracts.STAGED_EVENTS)
    sessions = _rows(on_cluster, contracts.SESSIONS)
    assert len(staged) > 100 and sessions
    assert sum(s["n_events"] for s in sessions) == len(staged)
    assert staged == _rows(on_local, contracts.STAGED_EVENTS)
    assert sessions == _rows(on_local, contracts.SESSIONS)
    assert _rows(on_cluster, contracts.QUARANTINE_EVENTS) == _rows(on_local, contracts.QUARANTINE_EVENTS)


def test_the_dag_reaches_the_cluster_through_spark_default_alone(cluster, tmp_path):
    """The DAG's own stage_events task (``airflow tasks test``, RECPIPE_SPARK=submit) with nothing changed but the
    ``spark_default`` connection, pointed at the master: the application runs there and writes its partition."""
    from tests.e2e_helpers import airflow

    config = _lake(tmp_path / "dag")
    host, port = cluster.url.rsplit(":", 1)
    connection = json.dumps({"conn_type": "spark", "host": host, "port": int(port)})
    env = {"RECPIPE_CONFIG": str(config), "RECPIPE_SPARK": "submit", "AIRFLOW_CONN_SPARK_DEFAULT": connection}
    airflow("db", "migrate")
    before = _apps_named(cluster, f"recpipe-stage_events-{DS}")
    airflow("tasks", "test", "nightly_retrain", "stage_events", DS, env=env, timeout=600)
    apps = [app for app in _apps_named(cluster, f"recpipe-stage_events-{DS}") if app not in before]
    assert [app["state"] for app in apps] == ["FINISHED"], apps
    assert lake.partition_ready(load_config(config).lake_root, contracts.STAGED_EVENTS, DS)
