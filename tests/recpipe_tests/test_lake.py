import pytest

from recpipe import contracts, lake


def test_parse_ds_rejects_malformed_and_impossible_days():
    assert lake.parse_ds("2026-11-04").day == 4
    with pytest.raises(ValueError, match="YYYY-MM-DD, received '2026/11/04'"):
        lake.parse_ds("2026/11/04")
    with pytest.raises(ValueError, match="not a real calendar day: '2026-02-30'"):
        lake.parse_ds("2026-02-30")


def test_day_helpers():
    assert lake.shift_ds("2026-03-01", -1) == "2026-02-28"
    assert lake.day_range("2026-12-30", "2027-01-01") == ["2026-12-30", "2026-12-31", "2027-01-01"]
    start, end = lake.day_bounds_ms("1970-01-02")
    assert (start, end) == (86_400_000, 172_800_000)


def test_partition_uri_and_escaping_the_lake():
    assert lake.partition_uri("/lake/", contracts.SESSIONS, "2026-11-04") == "/lake/sessions/ds=2026-11-04"
    with pytest.raises(lake.LakeError, match="relative path inside the lake"):
        lake.dataset_uri("/lake", "../etc")


def test_require_partitions_names_every_missing_day(tmp_path):
    done = tmp_path / "sessions" / "ds=2026-11-01"
    done.mkdir(parents=True)
    (done / "_SUCCESS").touch()
    (tmp_path / "sessions" / "ds=2026-11-02").mkdir()  # no marker: incomplete
    lake.require_partitions(str(tmp_path), contracts.SESSIONS, ["2026-11-01"])
    with pytest.raises(lake.LakeError, match="ds=2026-11-02, ds=2026-11-03"):
        lake.require_partitions(str(tmp_path), contracts.SESSIONS, ["2026-11-01", "2026-11-02", "2026-11-03"])


def test_latest_ready_snapshot_at_or_before_the_day(tmp_path):
    for ds, complete in [("2026-11-01", True), ("2026-11-03", True), ("2026-11-04", False), ("2026-11-09", True)]:
        part = tmp_path / "raw" / "items" / f"ds={ds}"
        part.mkdir(parents=True)
        if complete:
            (part / "_SUCCESS").touch()
    (tmp_path / "raw" / "items" / ".ds=2026-11-05.import-1").mkdir()  # an import in progress is ignored
    root = str(tmp_path)
    assert lake.latest_ready(root, contracts.RAW_ITEMS, "2026-11-03") == "2026-11-03"
    assert lake.latest_ready(root, contracts.RAW_ITEMS, "2026-11-08") == "2026-11-03"  # 11-04 has no marker
    assert lake.latest_ready(root, contracts.RAW_ITEMS, "2026-12-01") == "2026-11-09"
    with pytest.raises(lake.LakeError, match=r"no complete partition .* at or before ds=2026-10-31"):
        lake.latest_ready(root, contracts.RAW_ITEMS, "2026-10-31")
    with pytest.raises(lake.LakeError, match="at or before ds=2026-11-01"):
        lake.latest_ready(root, contracts.RAW_USERS, "2026-11-01")  # no dataset directory at all
