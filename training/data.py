"""Reading training sets from the lake into NumPy (through pyarrow, so HDFS and local disks both work)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads

from recpipe import contracts, lake
from recpipe.contracts import Contract


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
