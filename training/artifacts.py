"""Vector artifacts of a recall run, written into the active MLflow run: the item embedding table (item_id, vector,
model_version) and the eval users' query vectors (user_id, user_city, vector), both Parquet. Indexing reads the
first and measures with the second; their readers are in ``recpipe.tables``."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recpipe.tables import EMBEDDINGS_ARTIFACT, QUERIES_ARTIFACT


def _log_table(table: pa.Table, artifact: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        pq.write_table(table, path)
        mlflow.log_artifact(str(path), artifact_path=str(Path(artifact).parent))


def log_query_vectors(user_ids: np.ndarray, vectors: np.ndarray, user_city: np.ndarray | None = None) -> None:
    """Log the eval users' query vectors (the user tower's output, or the mean of history vectors), with each
    user's city when given: the index build measures city-filtered search with it."""
    columns = {"user_id": pa.array(np.asarray(user_ids, np.int64))}
    if user_city is not None:
        columns["user_city"] = pa.array(np.asarray(user_city, np.int64))
    columns["vector"] = pa.array(list(vectors), pa.list_(pa.float32()))
    _log_table(pa.table(columns), QUERIES_ARTIFACT)


def log_item_vectors(vectors: np.ndarray, version: int) -> None:
    """Log the item vector table (row i is item i) into the active run."""
    table = pa.table(
        {
            "item_id": pa.array(np.arange(len(vectors), dtype=np.int64)),
            "vector": pa.array(list(vectors), type=pa.list_(pa.float32())),
            "model_version": pa.array(np.full(len(vectors), version, dtype=np.int64)),
        }
    )
    _log_table(table, EMBEDDINGS_ARTIFACT)
