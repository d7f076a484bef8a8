"""What every adapter shares: reading source files line by line, input errors, and an atomic lake import.

An import writes each partition into a hidden temporary sibling directory (``.ds=D.import-…``) that no
reader looks at, and renames it into place only when the whole source has been read without error:
the user and item snapshots first, then the event days oldest first, each with its ``_SUCCESS`` marker
written last. On any error every temporary directory, and every directory the import created, is
removed, so a failed import leaves the lake as it found it. An existing partition is never replaced
unless the import was opened with ``overwrite=True``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from recpipe import contracts, lake

EVENTS_FILE = "part-00000.jsonl.gz"
USERS_FILE = "users.jsonl.gz"
ITEMS_FILE = "items.jsonl.gz"
UNKNOWN = "unknown"
_EPOCH = dt.date(1970, 1, 1)
_GZIP_LEVEL = 6
_INT64_MASK = (1 << 63) - 1


class InputError(ValueError):
    """The source data is missing or malformed; the message names the file, the line and the problem."""


def input_error(path: Path, line_no: int, problem: str) -> InputError:
    """An ``InputError`` reading ``<file>:<line>: <problem>``."""
    return InputError(f"{path}:{line_no}: {problem}")


def require_file(path: Path, what: str) -> Path:
    """``path`` when it is a readable file, else an ``InputError`` naming it and what it should hold."""
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected {what})")
    return path


def read_lines(path: Path, encoding: str = "utf-8", errors: str = "strict") -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` of a text file (``.gz`` decompressed), streaming; empty lines are skipped.

    ``errors="replace"`` reads undecodable bytes as U+FFFD instead of failing on them.
    """
    line_no = 0
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
        try:
            for line_no, raw in enumerate(fh, start=1):
                try:
                    text = raw.decode(encoding, errors).rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise input_error(path, line_no, f"not valid {encoding} text ({exc.reason} at byte {exc.start})") from None
                if text:
                    yield line_no, text
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz file
            raise input_error(path, line_no + 1, f"cannot be read: {exc}") from None


def split_fields(path: Path, line_no: int, text: str, sep: str, expected: int, what: str) -> list[str]:
    """Split a line into exactly ``expected`` fields, or raise an error saying how many were found."""
    fields = text.split(sep)
    if len(fields) != expected:
        problem = f"expected {expected} {sep!r}-separated fields ({what}), found {len(fields)}"
        raise input_error(path, line_no, f"{problem}: {text[:120]!r}")
    return fields


def parse_int(path: Path, line_no: int, field: str, value: str) -> int:
    """An integer field, or an error naming the field and the value received."""
    try:
        return int(value)
    except ValueError:
        raise input_error(path, line_no, f"{field} must be an integer, received {value!r}") from None


def ds_of_ms(ms: int) -> str:
    """The UTC day ``YYYY-MM-DD`` of an epoch-milliseconds timestamp."""
    return (_EPOCH + dt.timedelta(days=ms // 86_400_000)).isoformat()


def stable_hash(text: str) -> int:
    """A non-negative int64 from ``text``, the same on every machine and Python run (BLAKE2b, 8 bytes)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") & _INT64_MASK


def spread_ms(index: int, count: int, span_ms: int) -> int:
    """Offset of the ``index``-th of ``count`` evenly spaced instants in ``[0, span_ms)``."""
    return index * span_ms // count


def event_lines(request_id: str, position: int, ts: int, fields: dict, *, click: bool) -> list[str]:
    """JSON lines of one exposure and, when ``click``, its click 1 ms later on the same request (exposure first).

    ``fields`` holds every event column except ``event_id``, ``ts`` and ``event`` (plus any extras); it is
    encoded once and shared by both lines. Event ids are ``<request_id>-<position>-<event>``. The click is
    kept inside the exposure's UTC day.
    """
    body = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)[1:]
    lines = [f'{{"event_id":"{request_id}-{position}-expose","ts":{ts},"event":"expose",{body}']
    if click:
        _, day_end = lake.day_bounds_ms(ds_of_ms(ts))
        lines.append(f'{{"event_id":"{request_id}-{position}-click","ts":{min(ts + 1, day_end - 1)},"event":"click",{body}')
    return lines


@dataclasses.dataclass(frozen=True)
class ImportSummary:
    """What an import wrote: event days with their exposure and click counts, snapshot sizes, the lake root."""

    source: str
    root: str
    exposes: dict[str, int]
    clicks: dict[str, int]
    users: int
    items: int

    @property
    def days(self) -> list[str]:
        return sorted(self.exposes)

    def describe(self) -> str:
        days = self.days
        span = f"{len(days)} days {days[0]}..{days[-1]}" if days else "no days"
        return (
            f"imported {self.source}: {span}, {sum(self.exposes.values())} exposes, {sum(self.clicks.values())} clicks, "
            f"{self.users} users, {self.items} items (snapshots at ds={days[0] if days else '-'}) under {self.root}"
        )


class LakeImport:
    """Partitions of one import, written to temporary siblings and renamed into place by ``commit``.

    Use as a context manager: leaving the block with an exception removes everything the import wrote.
    """

    def __init__(self, root: str, *, overwrite: bool = False) -> None:
        self.root = Path(lake.local_path(root))
        self.overwrite = overwrite
        self._tag = f"import-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._staged: dict[tuple[str, str], Path] = {}
        self._created_dirs: list[Path] = []
        self._events: dict[str, TextIO] = {}
        self.exposes: dict[str, int] = {}
        self.clicks: dict[str, int] = {}
        self.users = 0
        self.items = 0

    def __enter__(self) -> LakeImport:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def _final(self, dataset: str, ds: str) -> Path:
        return self.root / dataset / f"ds={lake.parse_ds(ds).isoformat()}"

    def _check_free(self, final: Path) -> None:
        if final.exists() and not self.overwrite:
            raise lake.LakeError(f"{final} already exists; refusing to overwrite it (pass --overwrite to replace it)")

    def _makedirs(self, path: Path) -> None:
        missing = []
        for parent in [path, *path.parents]:
            if parent.exists():
                break
            missing.append(parent)
        path.mkdir(parents=True, exist_ok=True)
        self._created_dirs.extend(missing)  # deepest first

    def scratch_dir(self) -> Path:
        """A private temporary directory inside the lake root, removed by ``commit`` and ``abort``."""
        path = self.root / f".{self._tag}-scratch"
        if path not in self._created_dirs:
            self._makedirs(path)
        return path

    def partition_dir(self, dataset: str, ds: str) -> Path:
        """The temporary directory of a partition, created on first use after checking it may be written."""
        key = (dataset, ds)
        if key not in self._staged:
            final = self._final(dataset, ds)
            self._check_free(final)
            tmp = final.with_name(f".{final.name}.{self._tag}")
            self._makedirs(tmp)
            self._staged[key] = tmp
        return self._staged[key]

    def add_exposure(self, ds: str, lines: list[str]) -> None:
        """Append one exposure and its clicks (``event_lines``) to day ``ds``, whose file stays open until ``close_day``."""
        out = self._events.get(ds)
        if out is None:
            path = self.partition_dir(contracts.RAW_EVENTS.name, ds) / EVENTS_FILE
            out = self._events[ds] = _gzip_writer(path)
            self.exposes[ds] = self.clicks[ds] = 0
        out.write("\n".join(lines))
        out.write("\n")
        self.exposes[ds] += 1
        self.clicks[ds] += len(lines) - 1

    def close_day(self, ds: str) -> None:
        """Finish day ``ds``'s event file (no more events may be added to it)."""
        out = self._events.pop(ds, None)
        if out is not None:
            out.close()

    def write_snapshot(self, contract: contracts.Contract, ds: str, rows: Iterable[dict]) -> int:
        """Write the users or items snapshot of day ``ds``; return its number of rows."""
        name = {contracts.RAW_USERS.name: USERS_FILE, contracts.RAW_ITEMS.name: ITEMS_FILE}[contract.name]
        n = 0
        with _gzip_writer(self.partition_dir(contract.name, ds) / name) as out:
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
                n += 1
        if contract.name == contracts.RAW_USERS.name:
            self.users = n
        else:
            self.items = n
        return n

    def commit(self, source: str) -> ImportSummary:
        """Rename every partition into place: snapshots first, then event days oldest first; ``_SUCCESS`` last."""
        for ds in list(self._events):
            self.close_day(ds)
        order = sorted(self._staged, key=lambda k: (k[0] == contracts.RAW_EVENTS.name, k[1]))
        for dataset, ds in order:
            self._check_free(self._final(dataset, ds))
        for dataset, ds in order:
            tmp, final = self._staged[(dataset, ds)], self._final(dataset, ds)
            (tmp / lake.SUCCESS).touch()
            old = final.with_name(f".{final.name}.{self._tag}-old")
            if final.exists():
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            del self._staged[(dataset, ds)]
        shutil.rmtree(self.root / f".{self._tag}-scratch", ignore_errors=True)
        return ImportSummary(source, str(self.root), dict(self.exposes), dict(self.clicks), self.users, self.items)

    def abort(self) -> None:
        """Remove every temporary directory and every (now empty) directory this import created."""
        for out in self._events.values():
            try:
                out.close()
            except OSError:
                pass
        self._events.clear()
        for tmp in self._staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
        self._staged.clear()
        shutil.rmtree(self.root / f".{self._tag}-scratch", ignore_errors=True)
        for path in sorted(set(self._created_dirs), key=lambda p: len(p.parts), reverse=True):
            try:
                path.rmdir()
            except OSError:
                pass  # not empty: something else lives there now


def _gzip_writer(path: Path) -> TextIO:
    # mtime=0: the same source gives the same bytes.
    raw = gzip.GzipFile(filename=str(path), mode="wb", compresslevel=_GZIP_LEVEL, mtime=0)
    return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
