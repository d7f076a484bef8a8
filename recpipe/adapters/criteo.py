"""Criteo display advertising (Kaggle ``train.txt``, or one ``day_N`` file of the 1TB logs) as raw click logs.

Source rows are tab-separated: ``label`` (0/1), ``I1..I13`` (integers, may be empty) and ``C1..C26``
(hashed categorical values written as 8 hex digits, may be empty); 40 fields. Real files cut the empty
fields off the end of some rows, so missing trailing fields are read as empty; more than 40 is an error.
``.gz`` files are read as they are. This import is for ranking-only runs.

Mapping decisions:

- **Events.** Every row is one impression: an ``expose`` on its own request ``criteo-<line>``; label 1
  adds a ``click`` on the same request 1 ms later. ``position`` 0, page ``home``, device ``pc``;
  ``city_id`` and ``category_id`` are 0 (the data has neither). ``i1..i13`` (int or null) and
  ``c1..c26`` (string or null) are kept as extra fields on both rows.
- **Time.** Criteo has no timestamps; the file is in time order. Rows are spread in file order over
  ``days`` consecutive days from ``--start``: row i of n goes to day ``i * days // n``, and the k-th of a
  day's m rows gets ``midnight + k * 86_400_000 // m``, so ``ts`` increases through each day. (This
  needs the row count: the file is read twice, once to count its lines.)
- **Users and items.** The features are anonymised, so no column is known to be a user or an ad.
  We take the highest-cardinality fields of the Kaggle release: ``user_id`` is a stable 63-bit hash
  (BLAKE2b) of ``C3`` (about 10M distinct values), and a row without ``C3`` is an anonymous user of its
  own (the hash of its line number). ``item_id`` hashes ``C24`` (about 290k distinct values) into
  ``1 .. ITEM_BUCKETS - 1`` (2**20 buckets, so training's item vocabulary, the largest id plus one,
  stays small); a row without ``C24`` gets item 0.
- **Snapshots** (at the first day): every user and item seen, with city 0, category 0, ``user_type`` C,
  device pc, price 0.0, empty image, and the first day's midnight as ``registered_ts`` / ``created_ts``.
  Distinct users are gathered in NumPy arrays merged in chunks, so memory grows with the number of
  distinct users (8 bytes each), not with the rows.
"""

from __future__ import annotations

from pathlib import Path

from recpipe import contracts, lake
from recpipe.adapters.common import (
    ImportSummary,
    InputError,
    LakeImport,
    event_lines,
    input_error,
    parse_int,
    read_lines,
    spread_ms,
    stable_hash,
)

N_INT = 13
N_CAT = 26
N_FIELDS = 1 + N_INT + N_CAT
INT_NAMES = tuple(f"i{k}" for k in range(1, N_INT + 1))
CAT_NAMES = tuple(f"c{k}" for k in range(1, N_CAT + 1))
USER_FIELD = "c3"
ITEM_FIELD = "c24"
ITEM_BUCKETS = 2**20
DEFAULT_DAYS = 7
PAGE = "home"
DEVICE = "pc"
_DAY_MS = 86_400_000
_USER_CHUNK = 1_000_000


def parse_row(path: Path, line_no: int, text: str) -> tuple[int, dict[str, int | str | None]]:
    """``(label, {i1..i13, c1..c26})`` of one line; missing trailing fields are empty (null)."""
    fields = text.split("\t")
    if len(fields) > N_FIELDS:
        expected = f"expected at most {N_FIELDS} tab-separated fields (label, I1-I13, C1-C26)"
        raise input_error(path, line_no, f"{expected}, found {len(fields)}")
    fields += [""] * (N_FIELDS - len(fields))
    if fields[0] not in ("0", "1"):
        raise input_error(path, line_no, f"label must be 0 or 1, received {fields[0]!r}")
    values: dict[str, int | str | None] = {}
    for name, value in zip(INT_NAMES, fields[1 : 1 + N_INT], strict=True):
        values[name] = parse_int(path, line_no, name.upper(), value) if value else None
    for name, value in zip(CAT_NAMES, fields[1 + N_INT :], strict=True):
        values[name] = value or None
    return int(fields[0]), values


def user_id(values: dict, line_no: int) -> int:
    """The row's user: a hash of its ``C3`` value, or of its line number when ``C3`` is empty."""
    value = values[USER_FIELD]
    return stable_hash(f"{USER_FIELD}={value}" if value is not None else f"row={line_no}")


def item_id(values: dict) -> int:
    """The row's item: its ``C24`` value hashed into ``1 .. ITEM_BUCKETS - 1``, or 0 when empty."""
    value = values[ITEM_FIELD]
    return 0 if value is None else 1 + stable_hash(f"{ITEM_FIELD}={value}") % (ITEM_BUCKETS - 1)


def _source_file(src: Path) -> Path:
    if src.is_dir():
        src = src / "train.txt"
    if not src.is_file():
        raise InputError(f"{src}: no such file (expected Criteo rows: label, I1-I13, C1-C26, tab-separated)")
    return src


class _DistinctIds:
    """Distinct int64 ids, kept sorted in a NumPy array merged with a buffer every ``_USER_CHUNK`` ids."""

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self.ids = np.empty(0, dtype=np.int64)
        self._buffer: list[int] = []

    def add(self, value: int) -> None:
        self._buffer.append(value)
        if len(self._buffer) >= _USER_CHUNK:
            self._merge()

    def _merge(self) -> None:
        self.ids = self._np.union1d(self.ids, self._np.array(self._buffer, dtype=self._np.int64))
        self._buffer.clear()

    def sorted(self) -> list[int]:
        self._merge()
        return self.ids.tolist()


def import_criteo(
    src: str | Path, lake_root: str, *, start: str, days: int = DEFAULT_DAYS, overwrite: bool = False
) -> ImportSummary:
    """Import a Criteo file (or a directory holding ``train.txt``) as ``days`` days of events from ``start``."""
    import numpy as np

    if days < 1:
        raise ValueError(f"days must be at least 1, received {days}")
    path = _source_file(Path(src))
    day_list = lake.day_range(start, lake.shift_ds(start, days - 1))
    n = sum(1 for _ in read_lines(path))
    if n == 0:
        raise InputError(f"{path}: holds no rows; nothing to import")
    # Rows of day d: those i with i * days // n == d, i.e. i in [ceil(d * n / days), ceil((d + 1) * n / days)).
    bounds = [-(-d * n // days) for d in range(days + 1)]
    users = _DistinctIds()
    items = np.zeros(ITEM_BUCKETS, dtype=bool)
    with LakeImport(lake_root, overwrite=overwrite) as imp:
        for d, ds in enumerate(day_list):
            if bounds[d + 1] > bounds[d]:
                imp.partition_dir(contracts.RAW_EVENTS.name, ds)  # fails fast on an existing partition
        day, midnight, index = -1, 0, 0
        for index, (line_no, text) in enumerate(read_lines(path)):
            while index >= bounds[day + 1]:
                if day >= 0:
                    imp.close_day(day_list[day])
                day += 1
                midnight, _ = lake.day_bounds_ms(day_list[day])
            label, values = parse_row(path, line_no, text)
            uid, iid = user_id(values, line_no), item_id(values)
            users.add(uid)
            items[iid] = True
            request_id = f"criteo-{line_no}"
            fields = {
                "user_id": uid,
                "item_id": iid,
                "city_id": 0,
                "category_id": 0,
                "page": PAGE,
                "position": 0,
                "device": DEVICE,
                "request_id": request_id,
                **values,
            }
            ts = midnight + spread_ms(index - bounds[day], bounds[day + 1] - bounds[day], _DAY_MS)
            imp.add_exposure(day_list[day], event_lines(request_id, 0, ts, fields, click=label == 1))
        if index + 1 != n:
            raise InputError(f"{path}: changed while it was read ({n} rows counted, {index + 1} read)")
        first = min(imp.exposes)
        midnight, _ = lake.day_bounds_ms(first)
        imp.write_snapshot(
            contracts.RAW_USERS,
            first,
            ({"user_id": u, "city_id": 0, "user_type": "C", "device": DEVICE, "registered_ts": midnight} for u in users.sorted()),
        )
        imp.write_snapshot(
            contracts.RAW_ITEMS,
            first,
            (
                {"item_id": i, "city_id": 0, "category_id": 0, "price": 0.0, "created_ts": midnight, "image": ""}
                for i in np.flatnonzero(items).tolist()
            ),
        )
        return imp.commit("criteo")
