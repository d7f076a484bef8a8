"""Vector artifacts of a recall run: the item embedding table (item_id, vector, model_version) and the eval
users' query vectors (user_id, vector), both Parquet. Indexing reads the first and measures with the second."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EMBEDDINGS_ARTIFACT = "embeddings/item_embeddings.parquet"
QUERIES_ARTIFACT = "embeddings/eval_queries.parquet"


def _log_table(table: pa.Table, artifact: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        pq.write_table(table, path)
        mlflow.log_artifact(str(path), artifact_path=str(Path(artifact).parent))


def _load_table(run_id: str, artifact: str) -> pa.Table:
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp)
        return pq.read_table(Path(path))


def log_query_vectors(user_ids: np.ndarray, vectors: np.ndarray) -> None:
    """Log the eval users' query vectors (the user tower's output, or the mean of history vectors)."""
    ids = pa.array(np.asarray(user_ids, np.int64))
    table = pa.table({"user_id": ids, "vector": pa.array(list(vectors), pa.list_(pa.float32()))})
    _log_table(table, QUERIES_ARTIFACT)


def load_query_vectors(run_id: str) -> np.ndarray:
    """The eval users' query vectors logged by a recall training run, in eval-set order."""
    table = _load_table(run_id, QUERIES_ARTIFACT)
    return np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)


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


def load_item_table(run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, their vectors) exactly as a recall training run logged them: the rows an index holds."""
    table = _load_table(run_id, EMBEDDINGS_ARTIFACT)
    ids = table.column("item_id").to_numpy().astype(np.int64)
    return ids, np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)


def load_item_vectors(run_id: str) -> np.ndarray:
    """The item vector table logged by a recall training run (row i is item i; missing ids are zero)."""
    ids, vectors = load_item_table(run_id)
    out = np.zeros((int(ids.max()) + 1, vectors.shape[1]), dtype=np.float32)
    out[ids] = vectors
    return out
