"""Lake paths and partition checks.

The lake is one root URI (a local directory, ``hdfs://`` or ``s3a://``). Every dataset lives under
``<root>/<dataset>/ds=YYYY-MM-DD/``. File-system access goes through ``pyarrow.fs`` so the same code
reads a local disk and HDFS.

What callers may pass in. Every path the project builds under the lake goes through this module, and
these rules keep it inside the root, whoever supplied the pieces (a command line, a DAG run, a config):

- **Days** (``ds``) are real calendar days written ``YYYY-MM-DD`` (ASCII digits, zero-padded) and
  nothing else: ``parse_ds`` is the one check, and every function that puts a day into a path calls it.
  ``2026-11-5``, ``2026-13-01``, ``2026-11-05; rm``, ``../../etc`` and ``""`` are refused with the value
  and the expected format named.
- **Dataset names** (``raw/events``, ``reports/nightly``) are relative and slash-separated; each segment
  starts with a letter or digit and holds only letters, digits, ``_``, ``-`` and ``.``. So ``..``, an
  absolute path, a URI, an empty segment or a hidden name (the importers' temporaries start with ``.``)
  is refused with ``LakeError``. File names given to ``write_text`` are one such segment (``_SUCCESS``
  too).
- **Symlinks** (local lakes: a bare path or ``file://``): the root itself may be a symlink (a lake on
  another disk), but a dataset path must stay inside the root once every symlink is resolved; a link
  under the root that leads elsewhere is refused. Object stores and HDFS have no symlinks.
- **A root named on the command line** (``recpipe generate --lake PATH``, ``recpipe import --lake PATH``)
  defines a lake, so it may be anywhere the user can write; ``check_root`` refuses only the surprises: an
  empty value, a ``..`` segment, credentials in the URI, a scheme other than ``file``, ``hdfs``, ``s3``,
  ``s3a``, and, for a local lake, the file-system root, the home directory, the repository (or a folder
  above it: its ``training/`` package would meet the lake's ``training/`` datasets) and an existing file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from pathlib import Path

from recpipe.contracts import Contract

SUCCESS = "_SUCCESS"
DS_FORMAT = "YYYY-MM-DD"
_DS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
ROOT_SCHEMES = ("file", "hdfs", "s3", "s3a")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(.*)$")
REPO_ROOT = Path(__file__).resolve().parents[1]


class LakeError(RuntimeError):
    """A partition is missing, incomplete or outside the lake."""


def parse_ds(ds: str, name: str = "ds") -> dt.date:
    """Parse a ``YYYY-MM-DD`` day string.

    Args:
        ds: The day, e.g. ``2026-11-05``.
        name: What the value is called in the error (``ds``, ``--start``).

    Raises:
        ValueError: ``ds`` is not a string of that form, or not a real calendar day; the message names
            the value received and the expected format.
    """
    if not isinstance(ds, str) or not _DS.fullmatch(ds):
        raise ValueError(f"{name} must look like {DS_FORMAT}, received {ds!r}")
    try:
        return dt.date.fromisoformat(ds)
    except ValueError:
        raise ValueError(f"{name} is not a real calendar day: {ds!r} (expected {DS_FORMAT})") from None


def ds_arg(value: str) -> str:
    """``argparse`` type of a ``--ds`` option: the day unchanged, or a usage error (exit code 2) naming it."""
    try:
        parse_ds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


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
    if not isinstance(name, str) or not all(_SEGMENT.fullmatch(part) for part in name.split("/")):
        raise LakeError(
            "dataset name must be a relative path inside the lake (segments of letters, digits, '_', '-', '.', "
            f"not starting with '.'), received {name!r}"
        )
    return name


def _local_root(root: str) -> str | None:
    """The local directory of a bare-path or ``file://`` root; None for other schemes."""
    if root.startswith("file://"):
        return root[len("file://") :]
    return None if "://" in root else root


def _check_inside(root: str, uri: str) -> None:
    """Refuse a local path that leaves the root once symlinks are resolved (no-op on HDFS and object stores)."""
    local_root = _local_root(root)
    if local_root is None:
        return
    real_root = os.path.realpath(local_root or ".")
    real = os.path.realpath(_local_root(uri) or ".")
    if os.path.commonpath([real_root, real]) != real_root:
        raise LakeError(f"{uri} resolves to {real}, outside the lake root {real_root} (a symlink under the root?)")


def dataset_uri(root: str, dataset: Contract | str) -> str:
    """URI of a dataset directory under the lake root.

    Raises:
        LakeError: the dataset name is not a plain relative path, or (local lake) it leads outside the root
            through a symlink.
    """
    uri = f"{root.rstrip('/')}/{_dataset_name(dataset)}"
    _check_inside(root, uri)
    return uri


def partition_uri(root: str, dataset: Contract | str, ds: str) -> str:
    """URI of one day's partition of a dataset (``ds`` checked by ``parse_ds``, the path by ``dataset_uri``)."""
    parse_ds(ds)
    uri = f"{dataset_uri(root, dataset)}/ds={ds}"
    _check_inside(root, uri)
    return uri


def check_root(root: str) -> str:
    """Check a lake root named by a user (``--lake``); return it unchanged.

    The rule (see the module docstring): anywhere the user can write, but not empty, no ``..`` segment, no
    credentials in the URI, a ``file``/``hdfs``/``s3``/``s3a`` scheme if any, and for a local lake not the
    file-system root, the home directory, the repository or a folder above it, nor an existing file.

    Raises:
        LakeError: naming the value and the rule it breaks.
    """
    if not isinstance(root, str) or not root.strip() or "\x00" in root:
        raise LakeError(f"lake root must be a directory path or URI, received {root!r}")
    match = _SCHEME.match(root)
    path = root
    if match:
        scheme, authority, path = match.groups()
        if scheme.lower() not in ROOT_SCHEMES:
            raise LakeError(f"lake root scheme must be one of {', '.join(ROOT_SCHEMES)}, received {root!r}")
        if "@" in authority:
            raise LakeError(
                f"lake root {scheme}://***@...: no credentials in the URI; use the Hadoop or object-store "
                "configuration (or environment variables such as AWS_ACCESS_KEY_ID) instead"
            )
        if scheme.lower() != "file":
            if ".." in path.split("/"):
                raise LakeError(f"lake root must not contain a '..' segment, received {root!r}")
            return root
    if ".." in Path(path).parts:
        raise LakeError(f"lake root must not contain a '..' segment, received {root!r} (name the folder itself)")
    real = Path(os.path.realpath(path))
    refused = {REPO_ROOT: "the recpipe repository"}
    refused.update({folder: f"a folder above the repository {REPO_ROOT}" for folder in REPO_ROOT.parents})
    home = os.path.expanduser("~")
    if home != "~":
        refused[Path(os.path.realpath(home))] = "the home directory"
    refused[Path(real.anchor)] = "the file-system root"
    if real in refused:
        raise LakeError(f"lake root {root!r} resolves to {real}, {refused[real]}; name a folder of its own, e.g. var/lake")
    if real.exists() and not real.is_dir():
        raise LakeError(f"lake root {root!r} is an existing file, not a directory")
    return root


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
    """Write one text file into a lake directory: to a temporary name first, then moved into place.

    Raises:
        LakeError: ``name`` is not a plain file name (a path, ``..`` or a hidden name).
    """
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        raise LakeError(f"file name must be one plain name (letters, digits, '_', '-', '.'), received {name!r}")
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
