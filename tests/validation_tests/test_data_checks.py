import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recpipe import contracts, lake
from validation.data_checks import DataCheckFailed, check_partition

DS = "2026-11-01"


def _write_staged(cfg, rows: list[dict]) -> None:
    part = lake.partition_uri(cfg.lake_root, contracts.STAGED_EVENTS, DS)
    lake.filesystem(part)[0].create_dir(part, recursive=True)
    types = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64()}
    schema = pa.schema([(c.name, types[c.type]) for c in contracts.STAGED_EVENTS.schema])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), f"{part}/part-0.parquet")
    open(f"{part}/_SUCCESS", "w").close()


def _rows(n: int) -> list[dict]:
    start, _ = lake.day_bounds_ms(DS)
    return [
        {
            "event_id": f"e{i}",
            "ts": start + i * 1000,
            "user_id": i % 7,
            "item_id": i % 11,
            "event": "expose",
            "city_id": 0,
            "category_id": 1,
            "page": "list",
            "position": i % 10,
            "device": "ios",
            "request_id": f"r{i}",
            "hour": 0,
        }
        for i in range(n)
    ]


def test_staged_events_pass_then_fail_with_the_expectation_named(cfg):
    _write_staged(cfg, _rows(60))
    summary = check_partition("staged_events", cfg, DS)
    assert summary["success"] and summary["failed"] == [] and summary["rows"] == 60
    assert json.loads(open(f"{summary['report']}/summary.json").read())["success"] is True

    rows = _rows(60)
    rows[3]["event"] = "purchase"  # staging should never let these through
    rows[4]["event_id"] = "e5"
    _write_staged(cfg, rows)
    with pytest.raises(DataCheckFailed) as err:
        check_partition("staged_events", cfg, DS)
    message = str(err.value)
    assert f"data check 'staged_events' failed for ds={DS}: 2 of" in message
    assert "expect_column_values_to_be_in_set {'column': 'event'" in message and "unexpected 1" in message
    assert "expect_column_values_to_be_unique {'column': 'event_id'}" in message
    assert "report.html" in message


def test_too_few_rows_fail(cfg):
    _write_staged(cfg, _rows(10))
    with pytest.raises(DataCheckFailed, match="expect_table_row_count_to_be_between"):
        check_partition("staged_events", cfg, DS)


def test_unknown_suite_is_named(cfg):
    with pytest.raises(ValueError, match="unknown suite 'features'"):
        check_partition("features", cfg, DS)
