"""Lake paths and partition checks.

The lake is one root URI (a local directory, ``hdfs://`` or ``s3a://``). Every dataset lives under
``<root>/<dataset>/ds=YYYY-MM-DD/``. File-system access goes through ``pyarrow.fs`` so the same code
reads a local disk and HDFS.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import PurePosixPath

from recpipe.contracts import Contract

SUCCESS = "_SUCCESS"
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class LakeError(RuntimeError):
    """A partition is missing, incomplete or outside the lake."""


def parse_ds(ds: str) -> dt.date:
    """Parse a ``YYYY-MM-DD`` day string, with an error naming the bad value."""
    if not isinstance(ds, str) or not _DS.match(ds):
        raise ValueError(f"ds must look like YYYY-MM-DD, received {ds!r}")
    try:
        return dt.date.fromisoformat(ds)
    except ValueError:
        raise ValueError(f"ds is not a real calendar day: {ds!r}") from None


def shift_ds(ds: str, days: int) -> str:
    """The day ``days`` after ``ds`` (negative: before)."""
    return (parse_ds(ds) + dt.timedelta(days=days)).isoformat()


def day_range(start: str, end: str) -> list[str]:
    """All days from ``start`` to ``end`` inclusive."""
    first, last = parse_ds(start), parse_ds(end)
    if last < first:
        raise ValueError(f"end day {end} is before start day {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def day_bounds_ms(ds: str) -> tuple[int, int]:
    """UTC epoch milliseconds of the day's start (inclusive) and end (exclusive)."""
    start = dt.datetime.combine(parse_ds(ds), dt.time(), tzinfo=dt.UTC)
    ms = int(start.timestamp() * 1000)
    return ms, ms + 86_400_000


def _dataset_name(dataset: Contract | str) -> str:
    name = dataset.name if isinstance(dataset, Contract) else dataset
    if not name or name.startswith("/") or ".." in PurePosixPath(name).parts:
        raise LakeError(f"dataset name must be a relative path inside the lake, received {name!r}")
    return name


def dataset_uri(root: str, dataset: Contract | str) -> str:
    """URI of a dataset directory under the lake root."""
    return f"{root.rstrip('/')}/{_dataset_name(dataset)}"


def partition_uri(root: str, dataset: Contract | str, ds: str) -> str:
    """URI of one day's partition of a dataset."""
    parse_ds(ds)
    return f"{dataset_uri(root, dataset)}/ds={ds}"


def window(ds: str, days: int, *, include_ds: bool) -> list[str]:
    """The ``days`` days before ``ds``, oldest first, followed by ``ds`` itself when ``include_ds``."""
    if days < 0:
        raise ValueError(f"window length must be non-negative, received {days}")
    before = [shift_ds(ds, -i) for i in range(days, 0, -1)]
    return [*before, ds] if include_ds else before


def filesystem(uri: str):
    """(pyarrow FileSystem, path) of a lake URI; Hadoop's ``s3a://`` is read as ``s3://``."""
    from pyarrow import fs

    if uri.startswith("s3a://"):
        uri = "s3://" + uri[len("s3a://") :]
    return fs.FileSystem.from_uri(uri)


def partition_ready(root: str, dataset: Contract | str, ds: str) -> bool:
    """True when the partition exists and holds its ``_SUCCESS`` marker."""
    from pyarrow import fs

    filesys, path = filesystem(partition_uri(root, dataset, ds))
    return filesys.get_file_info(f"{path}/{SUCCESS}").type == fs.FileType.File


def latest_ready(root: str, dataset: Contract | str, ds: str) -> str:
    """The latest day at or before ``ds`` whose partition is complete (snapshots of slowly changing tables).

    Raises:
        LakeError: no complete partition at or before ``ds``.
    """
    from pyarrow import fs

    parse_ds(ds)
    filesys, path = filesystem(dataset_uri(root, dataset))
    infos = filesys.get_file_info(fs.FileSelector(path, allow_not_found=True))
    days = sorted(
        (i.base_name[3:] for i in infos if i.type == fs.FileType.Directory and i.base_name.startswith("ds=")), reverse=True
    )
    for day in days:
        if day <= ds and _is_day(day) and partition_ready(root, dataset, day):
            return day
    raise LakeError(f"{dataset_uri(root, dataset)}: no complete partition (with {SUCCESS}) at or before ds={ds}")


def _is_day(text: str) -> bool:
    try:
        parse_ds(text)
    except ValueError:
        return False
    return True


def write_text(directory_uri: str, name: str, text: str) -> str:
    """Write one text file into a lake directory: to a temporary name first, then moved into place."""
    filesys, path = filesystem(directory_uri)
    filesys.create_dir(path, recursive=True)
    tmp = f"{path}/.{name}.tmp"
    with filesys.open_output_stream(tmp) as out:
        out.write(text.encode("utf-8"))
    filesys.move(tmp, f"{path}/{name}")
    return f"{directory_uri.rstrip('/')}/{name}"


def require_partitions(root: str, dataset: Contract | str, days: list[str]) -> None:
    """Raise ``LakeError`` naming every day of ``days`` whose partition is not complete."""
    missing = [ds for ds in days if not partition_ready(root, dataset, ds)]
    if missing:
        where = dataset_uri(root, dataset)
        raise LakeError(f"{where}: partitions missing or without {SUCCESS}: {', '.join(f'ds={d}' for d in missing)}")


def local_path(uri: str) -> str:
    """Plain local path of a ``file://`` or bare-path URI (for libraries that only read local files)."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        raise LakeError(f"expected a local path, received {uri!r}")
    return uri
