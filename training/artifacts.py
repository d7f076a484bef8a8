"""The item embedding table artifact of a recall run: Parquet with item_id, vector, model_version."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EMBEDDINGS_ARTIFACT = "embeddings/item_embeddings.parquet"


def log_item_vectors(vectors: np.ndarray, version: int) -> None:
    """Log the item vector table (row i is item i) into the active run."""
    table = pa.table(
        {
            "item_id": pa.array(np.arange(len(vectors), dtype=np.int64)),
            "vector": pa.array(list(vectors), type=pa.list_(pa.float32())),
            "model_version": pa.array(np.full(len(vectors), version, dtype=np.int64)),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(EMBEDDINGS_ARTIFACT).name
        pq.write_table(table, path)
        mlflow.log_artifact(str(path), artifact_path=str(Path(EMBEDDINGS_ARTIFACT).parent))


def load_item_vectors(run_id: str) -> np.ndarray:
    """The item vector table logged by a recall training run (row i is item i; missing ids are zero)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=EMBEDDINGS_ARTIFACT, dst_path=tmp)
        table = pq.read_table(Path(path))
    ids = table.column("item_id").to_numpy()
    vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    out = np.zeros((int(ids.max()) + 1, vectors.shape[1]), dtype=np.float32)
    out[ids] = vectors
    return out
