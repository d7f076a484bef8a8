"""Reading the lake's tables and the vector artifacts of recall runs, through pyarrow (local disk, HDFS, S3).

The bottom layer's readers: validation, indexing, training and the benchmarks read partitions, snapshots,
vocabularies and logged vectors through here, without importing each other (or Keras). MLflow is imported
inside the artifact readers only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads

from recpipe import contracts, lake
from recpipe.contracts import Contract

# Vector artifacts of a recall training run (Parquet): the item embedding table (item_id, vector,
# model_version) and the eval users' query vectors (user_id, user_city, vector), in eval-set order.
EMBEDDINGS_ARTIFACT = "embeddings/item_embeddings.parquet"
QUERIES_ARTIFACT = "embeddings/eval_queries.parquet"


def read_table(root: str, contract: Contract, ds: str, columns: list[str] | None = None, filter_expr=None):
    """The partition as a pyarrow Table; fails with the partition named when it is not complete.

    Raw snapshots and oracle files are JSON lines (``raw/`` and ``oracle/`` datasets), the rest Parquet.
    """
    lake.require_partitions(root, contract, [ds])
    filesystem, path = lake.filesystem(lake.partition_uri(root, contract, ds))
    fmt = "json" if contract.name.startswith(("raw/", "oracle/")) else "parquet"
    dataset = pads.dataset(path, filesystem=filesystem, format=fmt)
    return dataset.to_table(columns=columns or contract.columns, filter=filter_expr)


def read_snapshot(root: str, contract: Contract, ds: str, columns: list[str] | None = None):
    """The latest complete snapshot (users, items) at or before ``ds`` as a pyarrow Table."""
    return read_table(root, contract, lake.latest_ready(root, contract, ds), columns=columns)


def to_numpy(table) -> dict[str, np.ndarray]:
    """Column name -> NumPy array (list columns become object arrays of lists)."""
    out = {}
    for name in table.column_names:
        col = table.column(name)
        out[name] = np.asarray(col.to_pylist(), dtype=object) if str(col.type).startswith("list") else col.to_numpy()
    return out


def n_items(root: str, ds: str) -> int:
    """Item vocabulary size: the largest item id of the latest item snapshot at or before ``ds``, plus one."""
    table = read_snapshot(root, contracts.RAW_ITEMS, ds, columns=["item_id"])
    if table.num_rows == 0:
        raise ValueError(f"{contracts.RAW_ITEMS.name}: the latest snapshot at or before ds={ds} holds no items")
    return int(pc.max(table.column("item_id")).as_py()) + 1


def vocab_sizes(root: str, ds: str) -> dict[str, int]:
    """Vocabulary sizes from the latest snapshots at or before ``ds``: items, cities, categories.

    Cities and categories never go below the contract's defaults, so the synthetic lake's models keep one
    shape from day to day; imported datasets with more cities or categories get larger vocabularies.
    """
    items = read_snapshot(root, contracts.RAW_ITEMS, ds, columns=["city_id", "category_id"])
    users = read_snapshot(root, contracts.RAW_USERS, ds, columns=["city_id"])
    top_city = max(pc.max(items.column("city_id")).as_py() or 0, pc.max(users.column("city_id")).as_py() or 0)
    top_category = pc.max(items.column("category_id")).as_py() or 0
    return {
        "n_items": n_items(root, ds),
        "n_cities": max(contracts.N_CITIES_MAX, top_city + 1),
        "n_categories": max(len(contracts.CATEGORIES), top_category + 1),
    }


def _load_artifact_table(run_id: str, artifact: str):
    """A Parquet artifact of an MLflow run as a pyarrow Table."""
    import mlflow
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp)
        return pq.read_table(Path(path))


def _vectors(table) -> np.ndarray:
    return np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)


def load_query_table(run_id: str) -> dict[str, np.ndarray]:
    """The eval users' query vectors logged by a recall training run, in eval-set order: ``user_id``,
    ``vector`` and, where the run logged it, ``user_city`` (what city-filtered search is measured with)."""
    table = _load_artifact_table(run_id, QUERIES_ARTIFACT)
    out = {"user_id": table.column("user_id").to_numpy().astype(np.int64), "vector": _vectors(table)}
    if "user_city" in table.column_names:
        out["user_city"] = table.column("user_city").to_numpy().astype(np.int64)
    return out


def load_query_vectors(run_id: str) -> np.ndarray:
    """The eval users' query vectors logged by a recall training run, in eval-set order."""
    return load_query_table(run_id)["vector"]


def load_item_table(run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, their vectors) exactly as a recall training run logged them: the rows an index holds."""
    table = _load_artifact_table(run_id, EMBEDDINGS_ARTIFACT)
    return table.column("item_id").to_numpy().astype(np.int64), _vectors(table)


def load_item_vectors(run_id: str) -> np.ndarray:
    """The item vector table logged by a recall training run (row i is item i; missing ids are zero)."""
    ids, vectors = load_item_table(run_id)
    out = np.zeros((int(ids.max()) + 1, vectors.shape[1]), dtype=np.float32)
    out[ids] = vectors
    return out
