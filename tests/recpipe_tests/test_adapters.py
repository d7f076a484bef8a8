"""Adapters of public datasets, on hand-written files in the real formats under ``tests/data/``.

The fixtures, and what a reader can check by hand:

- ``movielens/``: 10 ratings on two UTC days. 2000-12-31 has 5 ratings, 3 of them >= 4 (user 2's
  rating at 23:59:59 stays on that day, its click too); 2001-01-01 has 5, 3 of them >= 4. User 1 rates
  movies 1193 and 1 in the same second (positions 0 and 1). User 5's zip ``T8H1N`` is not a US zip.
- ``frappe/``: 8 usages, 2026-11-01 is a Sunday: 4 on Sunday, 3 on Monday, 1 on Tuesday. Cities 0, 369,
  1014 and ``unknown``; categories Communication, Games, Productivity, and app 4 missing from meta.csv.
- ``criteo/train.txt``: 7 rows spread over 2 days (4 + 3), 3 clicks; row 4 has its trailing fields cut
  off (no C19-C26); rows 3 and 6 have no C3; rows 1, 2 and 7 share C3 ``fb936136``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from orchestration.cli import main
from recpipe import contracts, lake
from recpipe.adapters import InputError, import_dataset
from recpipe.adapters.criteo import ITEM_BUCKETS

DATA = Path(__file__).resolve().parents[1] / "data"
HOUR = 3_600_000
MINUTE = 60_000
EVENT_TYPES = {
    "event_id": str,
    "ts": int,
    "user_id": int,
    "item_id": int,
    "event": str,
    "city_id": int,
    "category_id": int,
    "page": str,
    "position": int,
    "device": str,
    "request_id": str,
}


def _run(fmt: str, root: Path, src: Path | None = None, **kwargs):
    kwargs.setdefault("start", "2026-11-01")
    return import_dataset(fmt, src or DATA / fmt, str(root), **kwargs)


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _events(root: Path, ds: str) -> list[dict]:
    return _rows(root / f"raw/events/ds={ds}/part-00000.jsonl.gz")


def _snapshot(root: Path, contract: contracts.Contract, ds: str) -> dict[int, dict]:
    key = contract.keys[0]
    name = "users.jsonl.gz" if contract is contracts.RAW_USERS else "items.jsonl.gz"
    return {r[key]: r for r in _rows(root / contract.name / f"ds={ds}" / name)}


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def _check_contract(root: Path, days: list[str]) -> None:
    """Every event row carries every contract field with its type, inside its day; ids are unique."""
    ids = []
    for ds in days:
        start, end = lake.day_bounds_ms(ds)
        assert (root / f"raw/events/ds={ds}/_SUCCESS").is_file()
        for row in _events(root, ds):
            for field, typ in EVENT_TYPES.items():
                assert isinstance(row[field], typ) and not isinstance(row[field], bool), (field, row)
            assert row["event"] in contracts.EVENT_TYPES and row["page"] in contracts.PAGES
            assert row["device"] in contracts.DEVICES and row["position"] >= 0
            assert start <= row["ts"] < end, row
            ids.append(row["event_id"])
    assert len(ids) == len(set(ids))
    first = days[0]
    for contract in (contracts.RAW_USERS, contracts.RAW_ITEMS):
        assert (root / contract.name / f"ds={first}/_SUCCESS").is_file()
        assert [p.name for p in (root / contract.name).iterdir()] == [f"ds={first}"]  # written once
        for row in _snapshot(root, contract, first).values():
            assert set(contract.columns) <= set(row)
    assert all(u["user_type"] in contracts.USER_TYPES for u in _snapshot(root, contracts.RAW_USERS, first).values())
    assert all(isinstance(i["price"], float) for i in _snapshot(root, contracts.RAW_ITEMS, first).values())


def _by_kind(events: list[dict]) -> tuple[int, int]:
    return sum(e["event"] == "expose" for e in events), sum(e["event"] == "click" for e in events)


def test_movielens_real_days_ratings_as_exposes_and_clicks(tmp_path):
    summary = _run("movielens", tmp_path, start="1999-01-01")  # --start is ignored: real dates
    assert summary.days == ["2000-12-31", "2001-01-01"]
    assert (summary.exposes, summary.clicks) == ({"2000-12-31": 5, "2001-01-01": 5}, {"2000-12-31": 3, "2001-01-01": 3})
    _check_contract(tmp_path, summary.days)
    day1, day2 = _events(tmp_path, "2000-12-31"), _events(tmp_path, "2001-01-01")
    assert _by_kind(day1) == (5, 3) and _by_kind(day2) == (5, 3)
    by_id = {e["event_id"]: e for e in day1 + day2}
    # User 1 rated 1193 (5 stars) and 1 (3 stars) at 2000-12-31 22:12:40: one request, positions 0 and 1.
    assert by_id["ml-1-978300760-0-expose"]["item_id"] == 1193 and by_id["ml-1-978300760-0-click"]["ts"] == 978300760001
    assert by_id["ml-1-978300760-1-expose"]["item_id"] == 1 and "ml-1-978300760-1-click" not in by_id
    assert {by_id["ml-1-978300760-1-expose"]["request_id"], by_id["ml-1-978300760-0-click"]["request_id"]} == {"ml-1-978300760"}
    # 23:59:59 stays on 2000-12-31, click included; the next second is 2001-01-01.
    assert by_id["ml-2-978307199-0-click"]["ts"] == 978307199001
    assert by_id["ml-3-978307200-1-click"]["item_id"] == 260
    # Cities: zip 48067 -> 4, 70072 -> 7, 02460 -> 0, T8H1N -> unknown 10. Categories: first genre.
    assert {e["user_id"]: e["city_id"] for e in day1 + day2} == {1: 4, 2: 7, 3: 5, 4: 0, 5: 10}
    cats = {e["item_id"]: e["category_id"] for e in day1 + day2}
    assert cats == {1193: 7, 1: 2, 260: 0, 21: 0, 73: 7, 2: 1}  # Drama, Animation, Action, Action, Drama, Adventure
    assert by_id["ml-5-978320000-0-click"]["rating"] == 5
    users = _snapshot(tmp_path, contracts.RAW_USERS, "2000-12-31")
    items = _snapshot(tmp_path, contracts.RAW_ITEMS, "2000-12-31")
    midnight, _ = lake.day_bounds_ms("2000-12-31")
    assert sorted(users) == [1, 2, 3, 4, 5, 6] and users[5]["city_id"] == 10 and users[4]["zip"] == "02460"
    assert users[1]["registered_ts"] == 978300760000 and users[6]["registered_ts"] == midnight  # 6 never rated
    assert items[73]["title"] == "Misérables, Les (1995)" and items[73]["city_id"] == 10  # latin-1; movies have no city
    assert items[3]["category_id"] == 4 and items[3]["created_ts"] == midnight  # Comedy; never rated


def test_frappe_usages_placed_by_weekday_and_daytime(tmp_path):
    summary = _run("frappe", tmp_path, start="2026-11-01")  # a Sunday
    assert summary.exposes == summary.clicks == {"2026-11-01": 4, "2026-11-02": 3, "2026-11-03": 1}
    _check_contract(tmp_path, summary.days)
    events = [e for ds in summary.days for e in _events(tmp_path, ds) if e["event"] == "expose"]
    by_line = {int(e["request_id"].removeprefix("frappe-")): e for e in events}
    sunday, _ = lake.day_bounds_ms("2026-11-01")
    monday, _ = lake.day_bounds_ms("2026-11-02")
    tuesday, _ = lake.day_bounds_ms("2026-11-03")
    # Sunday morning (07-11) holds lines 2, 5, 7: 07:00, 08:20, 09:40. Monday night (00-05): lines 4, 9.
    assert [by_line[n]["ts"] for n in (2, 5, 7)] == [
        sunday + 7 * HOUR,
        sunday + 8 * HOUR + 20 * MINUTE,
        sunday + 9 * HOUR + 40 * MINUTE,
    ]
    assert [by_line[n]["ts"] for n in (4, 9)] == [monday, monday + 2 * HOUR + 30 * MINUTE]
    assert (
        by_line[3]["ts"] == sunday + 13 * HOUR
        and by_line[6]["ts"] == monday + 19 * HOUR
        and by_line[8]["ts"] == tuesday + 11 * HOUR
    )
    # Cities: sorted labels 0, 369, 1014 -> 0, 1, 2; unknown -> 3.
    assert {n: by_line[n]["city_id"] for n in (2, 4, 5, 7)} == {2: 1, 4: 3, 5: 2, 7: 0}
    # Categories: Communication 0, Games 1, Productivity 2; app 4 is not in meta.csv -> unknown 3.
    assert {e["item_id"]: e["category_id"] for e in events} == {0: 0, 1: 0, 2: 1, 3: 2, 4: 3}
    assert by_line[3]["cnt"] == 10 and by_line[4]["source_city"] == "unknown" and by_line[6]["country"] == "Spain"
    users = _snapshot(tmp_path, contracts.RAW_USERS, "2026-11-01")
    assert {u: r["city_id"] for u, r in users.items()} == {0: 1, 1: 2, 2: 0, 3: 3}  # most frequent known city
    items = _snapshot(tmp_path, contracts.RAW_ITEMS, "2026-11-01")
    assert sorted(items) == [0, 1, 2, 3, 4, 5] and items[2]["price"] == 0.99 and items[5]["category_id"] == 3


def _c3_user(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"c3={value}".encode(), digest_size=8).digest(), "big") & (2**63 - 1)


def test_criteo_rows_spread_over_days_with_hashed_users_and_items(tmp_path):
    summary = _run("criteo", tmp_path, start="2026-11-01", days=2)
    assert (summary.exposes, summary.clicks) == ({"2026-11-01": 4, "2026-11-02": 3}, {"2026-11-01": 2, "2026-11-02": 1})
    _check_contract(tmp_path, summary.days)
    day1, day2 = _events(tmp_path, "2026-11-01"), _events(tmp_path, "2026-11-02")
    start1, _ = lake.day_bounds_ms("2026-11-01")
    start2, _ = lake.day_bounds_ms("2026-11-02")
    exposes = [e for e in day1 + day2 if e["event"] == "expose"]
    day1_ts = [start1, start1 + 6 * HOUR, start1 + 12 * HOUR, start1 + 18 * HOUR]
    assert [e["ts"] for e in exposes] == [*day1_ts, start2, start2 + 8 * HOUR, start2 + 16 * HOUR]
    row = {int(e["request_id"].removeprefix("criteo-")): e for e in exposes}
    assert [n for n in row if f"criteo-{n}-0-click" in {e["event_id"] for e in day1 + day2}] == [2, 4, 6]
    assert row[1]["i12"] is None and row[1]["i5"] == 1382 and row[5]["i2"] == -1 and row[1]["c24"] == "c5c50484"
    assert row[4]["c18"] == "84ebc58b" and all(row[4][f"c{k}"] is None for k in range(19, 27))  # trailing fields cut off
    assert row[1]["user_id"] == row[2]["user_id"] == row[7]["user_id"] == _c3_user("fb936136")
    assert len({row[3]["user_id"], row[6]["user_id"], row[1]["user_id"]}) == 3  # no C3: a user of its own
    assert row[4]["item_id"] == 0 and row[1]["item_id"] == row[6]["item_id"] != row[3]["item_id"] == row[7]["item_id"]
    assert all(0 <= e["item_id"] < ITEM_BUCKETS for e in exposes)
    assert len(_snapshot(tmp_path, contracts.RAW_USERS, "2026-11-01")) == 5
    assert sorted(_snapshot(tmp_path, contracts.RAW_ITEMS, "2026-11-01")) == sorted({e["item_id"] for e in exposes})


def test_criteo_reads_gzip_and_same_source_gives_same_bytes(tmp_path):
    src = tmp_path / "train.txt.gz"
    src.write_bytes(gzip.compress((DATA / "criteo/train.txt").read_bytes()))
    _run("criteo", tmp_path / "a", src=DATA / "criteo", days=2)
    _run("criteo", tmp_path / "b", src=src, days=2)
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b") and len(files) == 16
    for name in files:
        if (tmp_path / "a" / name).is_file():
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_refuses_to_overwrite_unless_asked(tmp_path):
    _run("movielens", tmp_path)
    listing = _files(tmp_path)
    before = {p: (tmp_path / p).read_bytes() for p in listing if (tmp_path / p).is_file()}
    with pytest.raises(lake.LakeError, match=f"{tmp_path}/raw/events/ds=2000-12-31 already exists; refusing to overwrite"):
        _run("movielens", tmp_path)
    assert _files(tmp_path) == listing and {p: (tmp_path / p).read_bytes() for p in before} == before
    (tmp_path / "raw/events/ds=2000-12-31/part-00000.jsonl.gz").write_bytes(b"stale")
    _run("movielens", tmp_path, overwrite=True)
    assert _files(tmp_path) == listing and {p: (tmp_path / p).read_bytes() for p in before} == before  # no temporaries


BAD_INPUTS = [
    ("movielens", "ratings.dat", 3, "1::260::4", "ratings.dat:3: expected 4 '::'-separated fields"),
    ("movielens", "ratings.dat", 7, "3::x260::5::978307200", "ratings.dat:7: MovieID must be an integer, received 'x260'"),
    ("movielens", "ratings.dat", 10, "5::999::3::978320100", "ratings.dat:10: MovieID 999 is not in movies.dat"),
    ("movielens", "users.dat", 2, "2::M::56::16", "users.dat:2: expected 5 '::'-separated fields"),
    ("frappe", "frappe.csv", 9, "1\t2\t4\tnight\tmonday", "frappe.csv:9: expected 11 tab-separated fields, found 5"),
    (
        "frappe",
        "frappe.csv",
        6,
        "2\t3\t5\tevening\tfunday\tworkday\thome\tfree\trainy\tSpain\t369",
        "frappe.csv:6: weekday must be",
    ),
    (
        "criteo",
        "train.txt",
        6,
        "1" + "\t" * 40,
        "train.txt:6: expected at most 40 tab-separated fields (label, I1-I13, C1-C26), found 41",
    ),
    ("criteo", "train.txt", 5, "0\t3\tabc", "train.txt:5: I2 must be an integer, received 'abc'"),
    ("criteo", "train.txt", 2, "yes\t1", "train.txt:2: label must be 0 or 1, received 'yes'"),
]


@pytest.mark.parametrize(("fmt", "name", "line", "text", "message"), BAD_INPUTS, ids=[f"{b[1]}:{b[2]}" for b in BAD_INPUTS])
def test_malformed_line_is_named_and_nothing_is_left_behind(tmp_path, fmt, name, line, text, message):
    src = tmp_path / "src"
    shutil.copytree(DATA / fmt, src)
    lines = (src / name).read_text(encoding="latin-1").splitlines()
    lines[line - 1] = text
    (src / name).write_text("\n".join(lines) + "\n", encoding="latin-1")
    root = tmp_path / "lake"
    (root / "raw/events/ds=2026-10-31").mkdir(parents=True)  # an unrelated partition, kept as it is
    (root / "raw/events/ds=2026-10-31/_SUCCESS").touch()
    with pytest.raises(InputError) as err:
        _run(fmt, root, src=src, **({"days": 2} if fmt == "criteo" else {}))
    assert str(err.value).startswith(str(src / name)) and message in str(err.value)
    assert _files(root) == ["raw", "raw/events", "raw/events/ds=2026-10-31", "raw/events/ds=2026-10-31/_SUCCESS"]


def test_a_failed_import_into_a_new_lake_leaves_no_directory(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(DATA / "criteo", src)
    with open(src / "train.txt", "a") as fh:
        fh.write("2\n")
    with pytest.raises(InputError, match=r"train\.txt:8: label must be 0 or 1, received '2'"):
        _run("criteo", tmp_path / "new-lake", src=src, days=2)
    assert not (tmp_path / "new-lake").exists()


@pytest.mark.parametrize(
    ("fmt", "missing", "expected"),
    [
        ("movielens", "users.dat", "users.dat: no such file (expected MovieLens-1M UserID::Gender::Age::Occupation::Zip-code)"),
        ("frappe", "frappe.csv", "frappe.csv: no such file (expected Frappe usage log"),
        ("criteo", "train.txt", "train.txt: no such file (expected Criteo rows"),
    ],
)
def test_missing_file_is_named(tmp_path, fmt, missing, expected):
    src = tmp_path / "src"
    shutil.copytree(DATA / fmt, src)
    (src / missing).unlink()
    with pytest.raises(InputError, match=str(src / expected).replace("(", r"\(").replace(")", r"\)")):
        _run(fmt, tmp_path / "lake", src=src)
    assert not (tmp_path / "lake").exists()


def test_cli_import_reports_and_exits_2_on_errors(tmp_path, capsys):
    root = str(tmp_path / "lake")
    assert main(["import", "frappe", "--src", str(DATA / "frappe"), "--lake", root, "--start", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert "imported frappe: 3 days 2026-11-01..2026-11-03, 8 exposes, 8 clicks, 4 users, 6 items" in out
    assert main(["import", "frappe", "--src", str(DATA / "frappe"), "--lake", root]) == 2
    assert "recpipe import: error:" in capsys.readouterr().err
    assert main(["import", "movielens", "--src", str(DATA / "movielens"), "--lake", root, "--days", "3"]) == 2
    assert "--days applies to criteo only" in capsys.readouterr().err
    assert main(["import", "criteo", "--src", str(DATA / "criteo"), "--lake", root, "--start", "2026-13-01"]) == 2
    assert "not a real calendar day: '2026-13-01'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("fmt", "ds", "rows"),
    [("movielens", "2000-12-31", 8), ("frappe", "2026-11-01", 8), ("criteo", "2026-11-01", 6)],
)
def test_imported_day_passes_the_staging_job(spark, cfg, fmt, ds, rows):
    from spark_jobs import stage_events

    _run(fmt, Path(cfg.lake_root), **({"days": 2} if fmt == "criteo" else {}))
    out = stage_events.run(spark, cfg, ds)
    assert spark.read.parquet(out).count() == rows
    report = json.loads((Path(cfg.lake_root) / f"reports/quarantine/ds={ds}/counts.json").read_text())
    assert report["raw_rows"] == rows and set(report["counts"].values()) == {0}
