"""Adapters that import public recommendation datasets into the lake's raw log contract.

Each adapter streams its source files and writes ``raw/events/ds=D`` (gzip JSON lines) for every day
that has events, plus one ``raw/users`` and one ``raw/items`` snapshot at the first day, through
``common.LakeImport`` (atomic per partition, never overwriting unless asked). The snapshots hold every
user and item of the whole import, including those first seen on later days (so a ``registered_ts`` or
``created_ts`` may be after the snapshot's day). The module docstrings of ``movielens``, ``frappe`` and
``criteo`` record how each dataset is mapped onto the contract.
"""

from __future__ import annotations

from pathlib import Path

from recpipe.adapters.common import ImportSummary, InputError

FORMATS = ("movielens", "frappe", "criteo")

__all__ = ["FORMATS", "ImportSummary", "InputError", "import_dataset"]


def import_dataset(
    fmt: str, src: str | Path, lake_root: str, *, start: str, days: int | None = None, overwrite: bool = False
) -> ImportSummary:
    """Import one dataset; ``start`` is ignored by MovieLens (real dates), ``days`` applies to Criteo only."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; expected one of {list(FORMATS)}")
    if days is not None and fmt != "criteo":
        raise ValueError(f"--days applies to criteo only; {fmt} decides its own days")
    if fmt == "movielens":
        from recpipe.adapters.movielens import import_movielens

        return import_movielens(src, lake_root, overwrite=overwrite)
    if fmt == "frappe":
        from recpipe.adapters.frappe import import_frappe

        return import_frappe(src, lake_root, start=start, overwrite=overwrite)
    from recpipe.adapters.criteo import DEFAULT_DAYS, import_criteo

    return import_criteo(src, lake_root, start=start, days=DEFAULT_DAYS if days is None else days, overwrite=overwrite)
