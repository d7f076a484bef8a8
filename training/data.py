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


def to_numpy(table) -> dict[str, np.ndarray]:
    """Column name -> NumPy array (list columns become object arrays of lists)."""
    out = {}
    for name in table.column_names:
        col = table.column(name)
        out[name] = np.asarray(col.to_pylist(), dtype=object) if str(col.type).startswith("list") else col.to_numpy()
    return out


def n_items(root: str, ds: str) -> int:
    """Item vocabulary size: the largest item id of day ``ds``'s item snapshot, plus one."""
    table = read_table(root, contracts.RAW_ITEMS, ds, columns=["item_id"])
    if table.num_rows == 0:
        raise ValueError(f"{lake.partition_uri(root, contracts.RAW_ITEMS, ds)} holds no items")
    return int(pc.max(table.column("item_id")).as_py()) + 1
