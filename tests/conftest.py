"""Shared fixtures: one session-scoped local SparkSession, a tiny lake, an isolated MLflow and Airflow home.

Airflow and MLflow read their settings from the environment when first imported, so the isolated
homes are set here, before any test module imports them.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import pytest

logging.getLogger("py4j").setLevel(logging.WARNING)  # its shutdown messages hit closed streams
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="recpipe-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_DIR}/airflow/airflow.db?timeout=60"
os.environ["AIRFLOW_CONN_SPARK_DEFAULT"] = '{"conn_type": "spark", "host": "local[2]"}'
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
for key, value in {
    "GIT_PYTHON_REFRESH": "quiet",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}.items():
    os.environ.setdefault(key, value)

TEST_CONFIG = """\
lake_root: {root}/lake
mlflow_tracking_uri: sqlite:///{root}/mlflow/mlflow.db
mlflow_artifact_root: {root}/mlflow/artifacts
etl:
  lookback_days: 2
item2vec:
  embedding_dim: 16
  epochs: 2
  batch_size: 256
  multi_line: true
youtube_dnn:
  embedding_dim: 8
  hidden_units: [16]
  num_negatives: 20
  epochs: 1
  batch_size: 256
two_tower:
  embedding_dim: 8
  hidden_units: [16]
  epochs: 1
  batch_size: 256
ranking:
  embedding_dim: 4
  hidden_units: [16]
  epochs: 2
  batch_size: 256
  learning_rate: 0.01
xgb_wide_deep:
  n_trees: 5
  max_depth: 3
cnn_dnn:
  image_embedding_dim: 4
  pretrain_epochs: 2
wide_resnet:
  width: 16
  blocks: 1
index:
  factory: IVF4,Flat
  target_recall: 0.9
  per_category: true
gates:
  min_auc: 0.5
  min_recall_at_k: 0.01
  min_index_recall_at_k: 0.5
validation:
  min_event_rows: 50
  min_feature_rows: 50
"""


def write_config(root: Path) -> Path:
    """A config file whose lake and MLflow live under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "recpipe.yaml"
    path.write_text(TEST_CONFIG.format(root=root))
    return path


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("recpipe-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """A config rooted in a fresh temporary directory, also exported as ``RECPIPE_CONFIG``."""
    from recpipe.config import load_config

    path = write_config(tmp_path)
    monkeypatch.setenv("RECPIPE_CONFIG", str(path))
    return load_config(path)
