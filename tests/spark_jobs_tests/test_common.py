import json
from pathlib import Path

import pytest

from recpipe import contracts, lake
from spark_jobs.common import read_available_days, read_snapshot


def _items(root: str, ds: str, rows: list[dict]) -> None:
    part = Path(lake.partition_uri(root, contracts.RAW_ITEMS, ds))
    part.mkdir(parents=True)
    (part / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (part / "_SUCCESS").touch()


def _item(i: int, **over) -> dict:
    return {"item_id": i, "city_id": 0, "category_id": 1, "price": 1.0, "created_ts": 0, "image": ""} | over


def test_snapshots_must_be_recent_unique_and_complete(spark, tmp_path):
    root = str(tmp_path)
    _items(root, "2026-11-01", [_item(1), _item(2)])
    assert read_snapshot(spark, root, contracts.RAW_ITEMS, "2026-11-03", max_age_days=2).count() == 2
    with pytest.raises(lake.LakeError, match=r"ds=2026-11-01 is the latest snapshot for ds=2026-11-04: 3 days old"):
        read_snapshot(spark, root, contracts.RAW_ITEMS, "2026-11-04", max_age_days=2)
    _items(root, "2026-11-05", [_item(1), _item(1, city_id=3), _item(2, category_id=None)])
    with pytest.raises(lake.LakeError, match=r"ds=2026-11-05: 1 rows with a duplicate \['item_id'\]; .*\{'category_id': 1\}"):
        read_snapshot(spark, root, contracts.RAW_ITEMS, "2026-11-05", max_age_days=2)


def test_window_days_may_be_missing_only_before_the_first_day(spark, tmp_path):
    root = str(tmp_path)
    for ds in ("2026-11-03", "2026-11-05"):
        part = Path(lake.partition_uri(root, contracts.ITEM_DAILY, ds))
        spark.createDataFrame([(1, 2, 1)], contracts.ITEM_DAILY.spark_ddl()).write.parquet(str(part))
    df, missing = read_available_days(spark, root, contracts.ITEM_DAILY, ["2026-11-01", "2026-11-02", "2026-11-03"])
    assert (df.count(), missing) == (1, ["2026-11-01", "2026-11-02"])  # a young lake: fine
    with pytest.raises(lake.LakeError, match=r"missing after the first present day 2026-11-03: ds=2026-11-04"):
        read_available_days(spark, root, contracts.ITEM_DAILY, lake.day_range("2026-11-02", "2026-11-05"))
