"""Secure defaults: no credentials in the repository, login on the local Airflow, loopback-only UIs, every
user-supplied day and lake path validated, and no code-executing (pickle) formats in the loading code.

The two repository scans read the files git tracks (``git ls-files``: staged files count, ``.venv`` and
``var/`` never do) and fail naming ``file:line`` and the kind of finding, never the secret itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.cli import main
from recpipe import contracts, lake, runner
from recpipe.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()
SAM = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"

# ---------------------------------------------------------------------------------------------------------
# Credential patterns. A value that references the environment (${NAME}, $(NAME), $NAME), a template or a
# mask (***) is not a credential.
_REFERENCE = re.compile(r"^(\$|\{|<|%\(|\*+$)")
# A key that ends in one of these names a secret (DB_PASSWORD, aws_secret_access_key, FERNET_KEY, api_token);
# PASSWORDS_FILE or token_path name where a secret is, which is fine.
_SECRET_WORD = r"(?:password|passwd|pwd|secret|secret_?key|token|api_?key|access_?key|fernet_?key|private_?key|credentials?)"
CREDENTIAL_PATTERNS: dict[str, re.Pattern[str]] = {
    # scheme://user:<password>@host, e.g. a Postgres or MLflow URI with its login written in.
    "password in a URI": re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"`]+:([^\s/@'\"`]+)@"),
    "AWS access key id": re.compile(r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b"),
    "private key": re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)"),
    "GitHub token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36})\b"),
    "Slack token": re.compile(r"\b(xox[abprs]-[A-Za-z0-9-]{10,})"),
    "Google API key": re.compile(r"\b(AIza[0-9A-Za-z_-]{35})\b"),
    # password = "...", "token": "...", SECRET_KEY='...' (a quoted literal, in any file).
    "secret assigned a literal": re.compile(rf"(?i)\b[A-Za-z0-9_.-]*{_SECRET_WORD}[\"']?\s*[:=]\s*[\"']([^\"'\s]{{6,}})[\"']"),
}
# KEY=value, KEY := value, key: value, ENV KEY value (unquoted), in config-like files only: in Python an
# unquoted right-hand side is an expression, not a literal.
_UNQUOTED_SECRET = re.compile(
    rf"(?i)^\s*(?:export\s+|ENV\s+|ARG\s+)?[A-Za-z0-9_.-]*{_SECRET_WORD}\s*(?::=|\?=|=|:|\s)\s*([^\s\"'#]{{6,}})"
)
CONFIG_SUFFIXES = (".yaml", ".yml", ".cfg", ".ini", ".toml", ".env", ".sh", ".conf", ".properties", ".txt")
CONFIG_NAMES = ("Makefile", "Dockerfile")
# Findings that are not credentials, each with the reason. Keyed by (path, kind), not line numbers.
CREDENTIAL_ALLOW = {
    ("tests/reporting_tests/test_run_card.py", "password in a URI"): (
        "a made-up tracking URI with a user and password: the test checks that the run card strips them"
    ),
    ("tests/dags_tests/test_kubernetes_pods.py", "secret assigned a literal"): (
        "RECPIPE_K8S_SECRET is the name of the Kubernetes Secret the pods read, not a secret value"
    ),
}


def _need(tool: str) -> None:
    """These checks must run, never skip: a scan that cannot run would pass and prove nothing."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed; the security tests need it (make test runs them from a git checkout)")


def tracked_files(repo: Path) -> list[str]:
    """The files git tracks in ``repo`` (the index: committed and staged files)."""
    _need("git")
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=False)
    if proc.returncode != 0:  # a scan of nothing would pass: run the tests from a git checkout
        pytest.fail(f"{repo} is not a git checkout, so nothing could be scanned: {proc.stderr.decode(errors='replace')}")
    return [p for p in proc.stdout.decode().split("\0") if p]


def _text(path: Path) -> str | None:
    """The file's text, or None for binary or large data files (credentials live in text, in code and config)."""
    if not path.is_file() or path.stat().st_size > 5_000_000:
        return None
    data = path.read_bytes()
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def credential_findings(repo: Path, allow: dict[tuple[str, str], str] | None = None) -> list[str]:
    """``file:line: kind`` of every credential-looking text in the tracked files of ``repo``."""
    allow = CREDENTIAL_ALLOW if allow is None else allow
    findings = []
    for name in tracked_files(repo):
        text = _text(repo / name)
        if text is None:
            continue
        config_like = name.endswith(CONFIG_SUFFIXES) or Path(name).name in CONFIG_NAMES
        for lineno, line in enumerate(text.splitlines(), 1):
            kinds = [
                kind
                for kind, pattern in CREDENTIAL_PATTERNS.items()
                for m in pattern.finditer(line)
                if not _REFERENCE.match(m.group(1))
            ]
            if config_like and (m := _UNQUOTED_SECRET.match(line)) and not _REFERENCE.match(m.group(1)):
                kinds.append("secret assigned a literal")
            findings += [f"{name}:{lineno}: {kind}" for kind in dict.fromkeys(kinds) if (name, kind) not in allow]
    return findings


def test_no_credentials_in_tracked_files():
    findings = credential_findings(REPO)
    assert not findings, "credentials in tracked files (use environment variables or Airflow connections):\n" + "\n".join(
        findings
    )


def test_allow_list_entries_still_match_something():
    """A stale allow-list entry would silently allow a future real secret in that file."""
    hits = credential_findings(REPO, allow={})
    found = {
        (name, kind) for name, kind in CREDENTIAL_ALLOW for hit in hits if re.fullmatch(rf"{re.escape(name)}:\d+: {kind}", hit)
    }
    assert found == set(CREDENTIAL_ALLOW)


def _git_repo_with(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    return repo


def test_planted_secrets_are_found_by_file_and_line(tmp_path):
    _need("git")
    # Built from pieces, so this file itself holds no credential-looking text.
    aws, pw = "AKIA" + "Q" * 16, "hunter" + "2hunter2"
    planted = {
        "settings.py": f'import os\nTRACKING = "postgresql://mlflow:{pw}@db:5432/mlflow"\nKEY = "{aws}"\n'
        + f'DB_PASS{"WORD"} = "{pw}"\n',
        "conf/prod.yaml": "lake_root: /lake\naws_secret_access_" + f"key: {pw}\n",
        "Makefile": "export AIRFLOW__CORE__FERNET_" + f"KEY := {pw}{pw}\n",
        "id_key": "-----BEGIN RSA PRIV" + "ATE KEY-----\nMII...\n",
        # References, templates and masks are not credentials.
        "clean.py": 'URI = "postgresql://mlflow:${MLFLOW_DB_PASS' + 'WORD}@db/mlflow"\npass' + "word = os.environ['PW']\n",
        "clean.yaml": "mlflow_tracking_uri: ${MLFLOW_TRACKING_URI}\npass" + "word: ${DB_PASSWORD}\nmasked: https://***@host/\n",
    }
    findings = credential_findings(_git_repo_with(tmp_path, planted), allow={})
    assert sorted(findings) == [
        "Makefile:1: secret assigned a literal",
        "conf/prod.yaml:2: secret assigned a literal",
        "id_key:1: private key",
        "settings.py:2: password in a URI",
        "settings.py:3: AWS access key id",
        "settings.py:4: secret assigned a literal",
    ]
    assert not any(pw in f or aws in f for f in findings)  # the report never repeats the secret


# ---------------------------------------------------------------------------------------------------------
# No code-executing formats: everything the project loads is Keras .keras (safe_mode on), a TF SavedModel,
# XGBoost JSON, FAISS index files, Parquet or JSON.
CODE_EXEC_PATTERNS = {
    "pickle.load": re.compile(r"\b_?c?[Pp]ickle\.(?:load|loads|Unpickler)\b"),
    "joblib.load": re.compile(r"\bjoblib\.load\b"),
    "cloudpickle": re.compile(r"\bcloudpickle\b"),
    "dill": re.compile(r"^\s*(?:import|from)\s+dill\b"),
    "allow_pickle=True": re.compile(r"\ballow_pickle\s*=\s*True\b"),
    "safe_mode=False": re.compile(r"\bsafe_mode\s*=\s*False\b"),
    "torch.load": re.compile(r"\btorch\.load\b"),
    "pandas read_pickle": re.compile(r"\bread_pickle\b"),
    "yaml.load (not safe_load)": re.compile(r"\byaml\.(?:load|unsafe_load|full_load|load_all)\s*\("),
    "marshal/shelve": re.compile(r"\b(?:marshal\.loads?|shelve\.open)\b"),
    # Flavors whose loaders unpickle (pyfunc python models are cloudpickled).
    "pickled MLflow flavor": re.compile(r"\bmlflow\.(?:pyfunc|sklearn|pytorch)\.load_model\b"),
}
CODE_SUFFIXES = (".py", ".sh", ".cfg", ".toml", ".yaml", ".yml", ".ipynb")
# Files allowed to name the patterns, and why.
CODE_EXEC_ALLOW = {THIS_FILE: "defines the patterns it searches for"}


def code_exec_findings(repo: Path) -> list[str]:
    findings = []
    for name in tracked_files(repo):
        if name in CODE_EXEC_ALLOW or not (name.endswith(CODE_SUFFIXES) or Path(name).name in CONFIG_NAMES):
            continue
        text = _text(repo / name) or ""
        for lineno, line in enumerate(text.splitlines(), 1):
            findings += [f"{name}:{lineno}: {kind}" for kind, pattern in CODE_EXEC_PATTERNS.items() if pattern.search(line)]
    return findings


def test_no_code_executing_formats_in_the_source():
    findings = code_exec_findings(REPO)
    assert not findings, "code-executing (pickle-based) loading in the source tree:\n" + "\n".join(findings)


def test_code_exec_scan_finds_a_planted_unpickle(tmp_path):
    _need("git")
    bad = "import numpy as np\nimport pick" + "le\nx = np.load('a.npy', allow_pick" + "le=True)\nm = pick" + "le.loads(b)\n"
    repo = _git_repo_with(tmp_path, {"mod.py": bad, "ok.py": "import yaml\ncfg = yaml.safe_load(text)\n"})
    assert code_exec_findings(repo) == ["mod.py:3: allow_pickle=True", "mod.py:4: pickle.load"]


# ---------------------------------------------------------------------------------------------------------
# Config files hold no secrets; expanded secrets are masked.
BASE = "lake_root: /l\nmlflow_artifact_root: /a\n"


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://mlflow:" + "s3cr3t@db:5432/mlflow",
        "https://mlflow.example/?tok" + "en=abcdef",
        "postgresql://db/mlflow?sslmode=require&pass" + "word=abcdef",
    ],
)
def test_a_credential_written_in_a_config_file_is_refused(tmp_path, uri):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + f"mlflow_tracking_uri: {uri}\n")
    with pytest.raises(ConfigError, match=r"mlflow_tracking_uri: a credential is written in the config file") as info:
        load_config(path)
    assert "s3cr3t" not in str(info.value) and "abcdef" not in str(info.value)


def test_credentials_from_the_environment_load_and_are_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("RECPIPE_TEST_DB_PW", "s3cr3t")
    monkeypatch.setenv("RECPIPE_TEST_TOKEN", "abcdef")
    path = tmp_path / "c.yaml"
    path.write_text(
        "lake_root: hdfs://hdfs@namenode:8020/lake\nmlflow_artifact_root: s3://bucket/mlflow?tok" + "en=${RECPIPE_TEST_TOKEN}\n"
        "mlflow_tracking_uri: postgresql://mlflow:${RECPIPE_TEST_DB_PW}@db/mlflow\n"
    )
    cfg = load_config(path)
    assert cfg.mlflow_tracking_uri == "postgresql://mlflow:" + "s3cr3t@db/mlflow"  # what MLflow gets
    flat = cfg.flat()  # what is logged
    assert flat["mlflow_tracking_uri"] == "postgresql://***@db/mlflow"
    assert flat["mlflow_artifact_root"] == "s3://bucket/mlflow?tok" + "en=***"
    assert "s3cr3t" not in repr(cfg) and "abcdef" not in repr(cfg)


def test_production_config_takes_every_credential_bearing_uri_from_the_environment(monkeypatch):
    path = REPO / "recpipe" / "conf" / "production.yaml"
    text = path.read_text()
    assert re.search(r"^mlflow_tracking_uri: \$\{MLFLOW_TRACKING_URI\}$", text, re.M)
    assert re.search(r"^mlflow_artifact_root: \$\{MLFLOW_ARTIFACT_ROOT\}$", text, re.M)
    assert "@" not in re.search(r"^lake_root: (.*)$", text, re.M).group(1)  # no user in the lake URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:" + "tok@mlflow.internal")
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", "s3://models/mlflow")
    cfg = load_config(path)
    assert cfg.flat()["mlflow_tracking_uri"] == "https://***@mlflow.internal"


# ---------------------------------------------------------------------------------------------------------
# Login on the local Airflow, loopback-only UIs: what the Makefile exports, read back through Airflow.
def _make(*args: str) -> str:
    """``make ARGS`` in the repository with a bare environment: nothing inherited (not even from an outer
    ``make test``) decides a value, so what comes back is what the Makefile says."""
    _need("make")
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(["make", *args], cwd=REPO, env=clean, capture_output=True, text=True, check=True).stdout


def _make_env() -> dict[str, str]:
    """The environment the Makefile exports to its recipes (``make airflow-ui`` runs ``airflow standalone`` in it)."""
    out = _make("-s", "--no-print-directory", "--eval", "_recpipe_print_env: ; @env -0", "_recpipe_print_env")
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def test_makefile_exports_login_settings_explicitly():
    env = _make_env()
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == SAM
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"].lower() == "false"
    # Exactly "admin:admin" (user admin, role admin): `airflow standalone` prints the generated password only then.
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW_HOME"] == f"{REPO}/var/airflow"
    # Where the password is said to be is where Airflow writes it (checked through Airflow below).
    expected = "$(AIRFLOW_HOME)/" + PASSWORDS_FILE
    assert expected in (REPO / "Makefile").read_text()
    assert "${AIRFLOW_HOME:-$VAR/airflow}/" + PASSWORDS_FILE in (REPO / "scripts" / "demo.sh").read_text()


def test_airflow_reads_the_makefile_settings_as_login_required(tmp_path):
    env = {**_make_env(), "AIRFLOW_HOME": str(tmp_path)}  # Airflow writes airflow.cfg into its home: not the repo's
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path}/airflow.db"
    probe = (
        "import json\n"
        "from airflow.configuration import conf\n"
        "from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager as S\n"
        "print(json.dumps({'auth_manager': conf.get('core', 'auth_manager'),\n"
        "  'all_admins': conf.getboolean('core', 'simple_auth_manager_all_admins'),\n"
        "  'users': [[u.username, u.role] for u in S.get_users()],\n"
        "  'api_host': conf.get('api', 'host'), 'password_file': S.get_generated_password_file()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {
        "auth_manager": SAM,
        "all_admins": False,
        "users": [["admin", "admin"]],
        "api_host": "127.0.0.1",
        "password_file": f"{tmp_path}/{PASSWORDS_FILE}",
    }


def test_mlflow_ui_listens_on_loopback_only():
    (server,) = [line for line in _make("-n", "mlflow-ui").splitlines() if line.startswith("mlflow server")]
    assert re.search(r"--host 127\.0\.0\.1(\s|$)", server), server


# ---------------------------------------------------------------------------------------------------------
# Days: YYYY-MM-DD and a real calendar day, at every entry point.
BAD_DAYS = ["2026-13-01", "2026-11-5", "../../etc", "2026-11-05; rm", "", "2026-11-05\n", "２０２６-11-05", "2026-02-30"]


@pytest.mark.parametrize("ds", BAD_DAYS)
def test_parse_ds_refuses_and_names_the_value_and_format(ds):
    with pytest.raises(ValueError) as info:
        lake.parse_ds(ds)
    assert repr(ds) in str(info.value) and "YYYY-MM-DD" in str(info.value)
    with pytest.raises(ValueError):
        lake.partition_uri("/lake", contracts.SESSIONS, ds)


def test_good_days_still_work():
    assert lake.parse_ds("2024-02-29").isoformat() == "2024-02-29"
    assert lake.partition_uri("/lake", contracts.SESSIONS, "2026-11-05") == "/lake/sessions/ds=2026-11-05"
    assert lake.ds_arg("2026-11-05") == "2026-11-05"


@pytest.mark.parametrize("ds", BAD_DAYS)
@pytest.mark.parametrize(
    "argv",
    [
        ["summary", "--ds", "{}"],
        ["etl", "--start", "{}", "--end", "2026-11-05"],
        ["etl", "--start", "2026-11-05", "--end", "{}"],
        ["generate", "--days", "1", "--start", "{}", "--lake", "LAKE"],
        ["import", "criteo", "--src", "SRC", "--lake", "LAKE", "--start", "{}"],
    ],
    ids=["summary", "etl-start", "etl-end", "generate", "import"],
)
def test_cli_refuses_bad_days_with_exit_code_2(tmp_path, capsys, argv, ds):
    args = [a.replace("{}", ds).replace("LAKE", str(tmp_path / "lake")).replace("SRC", str(tmp_path)) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"recpipe {argv[0]}: error: --" in err and repr(ds) in err and "YYYY-MM-DD" in err
    assert not (tmp_path / "lake").exists()  # refused before anything was written


def test_cli_refuses_an_etl_range_that_ends_before_it_starts(capsys):
    assert main(["etl", "--start", "2026-11-05", "--end", "2026-11-04"]) == 2
    assert "end day 2026-11-04 is before start day 2026-11-05" in capsys.readouterr().err


def test_spark_job_main_refuses_a_bad_day_as_a_usage_error(capsys):
    from spark_jobs import sessions

    with pytest.raises(SystemExit) as info:
        sessions.main(["--ds", "2026-11-05; rm"])
    assert info.value.code == 2
    assert "argument --ds: ds must look like YYYY-MM-DD, received '2026-11-05; rm'" in capsys.readouterr().err


def test_training_and_indexing_steps_refuse_a_bad_day_before_the_step_runs():
    called = []
    with pytest.raises(ValueError, match=r"ds is not a real calendar day: '2026-13-01' \(expected YYYY-MM-DD\)"):
        runner.step_main("d", called.append, ["fnn"], ["--model", "fnn", "--ds", "2026-13-01"])
    assert called == []


# ---------------------------------------------------------------------------------------------------------
# Paths: dataset and file names stay inside the lake; a root named on the command line is checked.
@pytest.mark.parametrize(
    "name", ["../etc", "/etc", "raw/../../etc", "s3://bucket/x", "raw//events", ".hidden", "raw/events/", "", "raw\\..\\x"]
)
def test_dataset_names_that_would_leave_the_lake_are_refused(name):
    with pytest.raises(lake.LakeError, match="dataset name must be a relative path inside the lake"):
        lake.partition_uri("/lake", name, "2026-11-05")


def test_every_contract_and_report_name_is_a_valid_dataset_name():
    names = [c.name for c in vars(contracts).values() if isinstance(c, contracts.Contract)]
    names += ["reports/quarantine", "reports/nightly", "reports/ranking_baseline"]
    assert [lake.dataset_uri("hdfs://nn:8020/lake", n) for n in names] == [f"hdfs://nn:8020/lake/{n}" for n in names]


def test_symlinks_out_of_the_lake_are_refused(tmp_path):
    root, outside = tmp_path / "lake", tmp_path / "outside"
    (root / "sessions").mkdir(parents=True)
    outside.mkdir()
    (root / "raw").symlink_to(outside)  # a dataset directory leading elsewhere
    (root / "sessions" / "ds=2026-11-05").symlink_to(outside)  # a partition leading elsewhere
    with pytest.raises(lake.LakeError, match=r"outside the lake root"):
        lake.dataset_uri(str(root), contracts.RAW_EVENTS)
    with pytest.raises(lake.LakeError, match=r"outside the lake root"):
        lake.partition_ready(f"file://{root}", contracts.SESSIONS, "2026-11-05")
    assert lake.partition_uri(str(root), contracts.SESSIONS, "2026-11-04") == f"{root}/sessions/ds=2026-11-04"
    # The root itself may be a link (a lake on another disk): only what is under it must stay under it.
    (tmp_path / "link").symlink_to(root)
    linked = lake.partition_uri(str(tmp_path / "link"), contracts.SESSIONS, "2026-11-04")
    assert linked == f"{tmp_path}/link/sessions/ds=2026-11-04"


@pytest.mark.parametrize("name", ["../x", "a/b", ".x", "", "/etc/passwd"])
def test_write_text_refuses_file_names_that_are_paths(tmp_path, name):
    with pytest.raises(lake.LakeError, match="file name must be one plain name"):
        lake.write_text(str(tmp_path), name, "x")
    assert list(tmp_path.iterdir()) == []


def test_write_text_writes_plain_names(tmp_path):
    assert lake.write_text(str(tmp_path / "d"), "summary.json", "{}") == f"{tmp_path}/d/summary.json"
    lake.write_text(str(tmp_path / "d"), lake.SUCCESS, "")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["_SUCCESS", "summary.json"]


def test_check_root_refuses_surprising_lake_roots(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for root, match in [
        ("", "must be a directory path or URI"),
        ("   ", "must be a directory path or URI"),
        ("/", "the file-system root"),
        (str(REPO), "the recpipe repository"),
        (str(REPO.parent), "a folder above the repository"),
        (os.path.expanduser("~"), "the home directory|the repository|the file-system root"),
        (f"{tmp_path}/lake/../../etc", r"'\.\.' segment"),
        ("var/../lake", r"'\.\.' segment"),
        (str(a_file), "an existing file"),
        ("ftp://host/lake", "scheme must be one of file, hdfs, s3, s3a"),
        ("s3a://AKEY:" + "SECRET@bucket/lake", "no credentials in the URI"),
        ("hdfs://nn:8020/a/../b", r"'\.\.' segment"),
    ]:
        with pytest.raises(lake.LakeError, match=match):
            lake.check_root(root)
    with pytest.raises(lake.LakeError) as info:
        lake.check_root("s3a://AKEY:" + "SECRET@bucket/lake")
    assert "SECRET" not in str(info.value)


def test_check_root_accepts_ordinary_lake_roots(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    for root in [
        str(tmp_path / "lake"),
        f"file://{tmp_path}/lake",
        "var/lake",
        "hdfs://namenode:8020/recpipe/lake",
        "s3a://bucket/lake",
        "s3://bucket/lake",
    ]:
        assert lake.check_root(root) == root


@pytest.mark.parametrize("command", ["generate", "import"])
def test_cli_refuses_a_surprising_lake_root_with_exit_code_2(tmp_path, capsys, command):
    src = ["--src", str(REPO / "tests" / "data" / "criteo")]
    head = ["generate", "--days", "1"] if command == "generate" else ["import", "criteo", *src]
    assert main([*head, "--lake", str(REPO)]) == 2
    assert f"recpipe {command}: error: lake root '{REPO}' resolves to {REPO}, the recpipe repository" in capsys.readouterr().err
    assert main([*head, "--lake", f"{tmp_path}/a/../lake"]) == 2
    assert "'..' segment" in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()
