# recpipe: `make demo` runs the nightly retrain end to end on embedded defaults; `make test` runs the tests.
# Both create .venv (Python 3.11) and install the pinned environment on first use.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export RECPIPE_HOME := $(CURDIR)
export PATH := $(BIN):$(PATH)
export PYSPARK_PYTHON := $(BIN)/python
# Spark defaults of this local deployment (short-lived driver JVMs: C1 JIT, serial GC); see the file.
export SPARK_CONF_DIR := $(CURDIR)/spark_jobs/conf
# Training, evaluation and indexing steps run inside the Airflow task's process (recpipe/runner.py).
export RECPIPE_STEPS := inprocess
# Spark jobs run on one SparkSession of the task's process (orchestration/tasks.py); RECPIPE_SPARK=submit for spark-submit.
export RECPIPE_SPARK := inprocess
export AIRFLOW_HOME := $(CURDIR)/var/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
# Cluster policy (airflow_config/airflow_local_settings.py): backfill runs' tasks queue behind the nightly run's.
export PYTHONPATH := $(CURDIR)/airflow_config$(if $(PYTHONPATH),:$(PYTHONPATH))
export AIRFLOW__CORE__LOAD_EXAMPLES := False
# timeout: SQLite busy-wait, so CLI commands do not fail with "database is locked" while the scheduler writes.
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(CURDIR)/var/airflow/airflow.db?timeout=60
export AIRFLOW_CONN_SPARK_DEFAULT := {"conn_type": "spark", "host": "local[*]"}
# Login required, set here rather than left to defaults: Airflow 3's SimpleAuthManager, one user `admin` (role
# admin), never "all admins" (which turns login off). Airflow generates the password on the first start into
# $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated ([core] simple_auth_manager_passwords_file is
# left unset so it follows AIRFLOW_HOME, also in tests that use their own home).
export AIRFLOW__CORE__AUTH_MANAGER := airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS := admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS := False
# The API server (UI and REST API) listens on loopback only, as the MLflow UI does.
export AIRFLOW__API__HOST := 127.0.0.1
export AIRFLOW_PORT ?= 8793
export AIRFLOW__API__PORT := $(AIRFLOW_PORT)
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL := http://localhost:$(AIRFLOW_PORT)/execution/
export MLFLOW_PORT ?= 5000
export GIT_PYTHON_REFRESH := quiet
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: install check-java demo test lint bench-etl bench-peers repro-movielens repro-frappe airflow-init airflow-ui mlflow-ui constraints clean audit

install: $(STAMP)

check-java:
	@scripts/check_java.sh

$(STAMP): constraints.txt setup.cfg pyproject.toml | check-java
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# The Spark provider without its pyspark-client dependency: the full pyspark above provides that client.
	$(BIN)/pip install -q -c constraints.txt --no-deps apache-airflow-providers-apache-spark
	@touch $@

airflow-init: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	@airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1; }
	@airflow pools set gpu 1 "GPU slots for training, evaluation and indexing" > /dev/null

demo: $(STAMP) airflow-init
	@scripts/demo.sh

# The end-to-end tests drive Debian's Chromium (browser backfill test) and run their own PostgreSQL for Airflow;
# scripts/test_deps.sh installs the two packages when missing. PYTEST_ARGS narrows a run, e.g. to one module.
test: $(STAMP)
	@scripts/test_deps.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Spark ETL scaling vs DuckDB on 1M/4M/16M generated events, 3 runs each (roughly 15-45 min on 2 cores, depending on load).
bench-etl: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,bench]'
	SPARK_CONF_DIR= $(BIN)/python -m benchmarks.etl --sizes 1000000 4000000 16000000 --repeats 3 --out var/bench/etl-results.md

# MovieLens-1M recall reproduction (YouTube DNN and DSSM, HR@50 beside the published figures): make repro-movielens ML1M=/path/to/ml-1m
# (about 7 min on 2 cores at the default 5 epochs). REPRO_ARGS adds options, e.g. REPRO_ARGS="--epochs 20 --models two_tower".
repro-movielens: $(STAMP)
	@test -n "$(ML1M)" || { echo "usage: make repro-movielens ML1M=/path/to/ml-1m (the folder holding ratings.dat, users.dat, movies.dat)" >&2; exit 2; }
	$(BIN)/python -m benchmarks.movielens_repro --src "$(ML1M)" --out var/bench/movielens-repro.md $(REPRO_ARGS)

# Frappe CTR reproduction (BARS frappe_x1: DeepFM, Wide&Deep, IPNN, DNN and LR, test AUC beside the published figures):
# make repro-frappe FRAPPE=/path/to/frappe (8 min on 2 cores for Frappe-sized generated data; early stopping decides the epochs).
# REPRO_ARGS adds options, e.g. REPRO_ARGS="--models deepfm,lr --seed 1".
repro-frappe: $(STAMP)
	@test -n "$(FRAPPE)" || { echo "usage: make repro-frappe FRAPPE=/path/to/frappe (the folder holding frappe.csv and meta.csv)" >&2; exit 2; }
	$(BIN)/python -m benchmarks.frappe_repro --src "$(FRAPPE)" --out var/bench/frappe-repro.md $(REPRO_ARGS)

# The project's DeepFM beside FuxiCTR's on the same Frappe split: test AUC, logloss, examples/s of both. The peer
# runs in its own virtualenv .venv-peers (FuxiCTR, CPU PyTorch; made on first use from benchmarks/peers-constraints.txt).
# make bench-peers FRAPPE=/path/to/frappe (about 10 min on 2 cores once the virtualenv exists).
bench-peers: $(STAMP)
	@test -n "$(FRAPPE)" || { echo "usage: make bench-peers FRAPPE=/path/to/frappe (the folder holding frappe.csv and meta.csv)" >&2; exit 2; }
	$(BIN)/python -m benchmarks.peers --src "$(FRAPPE)" --out var/bench/peers.md $(REPRO_ARGS)

airflow-ui: $(STAMP) airflow-init
	@echo "Airflow UI on http://localhost:$(AIRFLOW_PORT): log in as admin, password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated (generated, and printed below, on the first start)"
	airflow standalone

mlflow-ui: $(STAMP)
	@mkdir -p var/mlflow/artifacts
	@echo "MLflow UI on http://localhost:$(MLFLOW_PORT)"
	mlflow server --backend-store-uri sqlite:///$(CURDIR)/var/mlflow/mlflow.db --default-artifact-root $(CURDIR)/var/mlflow/artifacts --host 127.0.0.1 --port $(MLFLOW_PORT)

constraints: $(STAMP)
	{ echo "# Exact versions of every package in the recpipe environment (Python 3.11), from pip freeze."; \
	  echo "# Regenerate after changing setup.cfg: make constraints"; \
	  $(BIN)/pip freeze --exclude-editable | grep -viE '^(recpipe|pyspark-client)=='; } > constraints.txt

# Known vulnerabilities of the pinned environment (constraints.txt and the GPU image's docker/train-gpu/constraints-gpu.txt)
# with pip-audit. A finding fails unless listed in security/pip-audit-ignore.txt and explained in security/pip-audit.md;
# an unreachable vulnerability service fails too (exit 2), unless AUDIT_ARGS="--if-unreachable warn" (CI; see that file).
audit: $(STAMP)
	$(BIN)/python security/audit.py $(AUDIT_ARGS)

clean:
	rm -rf var
