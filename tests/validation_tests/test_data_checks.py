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


def _write(cfg, contract, rows: list[dict]) -> None:
    part = lake.partition_uri(cfg.lake_root, contract, DS)
    lake.filesystem(part)[0].create_dir(part, recursive=True)
    types = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32()}
    types["array<int64>"] = pa.list_(pa.int64())
    schema = pa.schema([(c.name, types[c.type]) for c in contract.schema])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), f"{part}/part-0.parquet")
    open(f"{part}/_SUCCESS", "w").close()


def test_retrieval_samples_check_list_lengths_actions_and_weights(cfg):
    def row(i: int, **over) -> dict:
        base = {"split": "train" if i % 2 else "eval", "event_id": f"e{i}", "ts": i, "user_id": i % 5, "item_id": i % 9}
        base |= {"event": "click", "weight": 1.0, "history": [1, 2], "user_city": 0, "user_type": 1, "device": 0}
        base |= {"hour": 3, "weekday": 2, "city_id": 0, "item_city": 0, "category_id": 1}
        return base | {"hard_negatives": [4], "hard_negative_prob": 0.25} | over

    _write(cfg, contracts.RETRIEVAL_SAMPLES, [row(i) for i in range(60)])
    assert check_partition("retrieval_samples", cfg, DS)["success"]

    rows = [row(i) for i in range(60)]
    rows[0] = row(0, history=list(range(cfg.etl.history_max_len + 1)))  # longer than the cap
    rows[1] = row(1, event="expose", weight=0.0)  # not a positive action, no weight
    _write(cfg, contracts.RETRIEVAL_SAMPLES, rows)
    with pytest.raises(DataCheckFailed) as err:
        check_partition("retrieval_samples", cfg, DS)
    message = str(err.value)
    assert "3 of" in message
    assert f"{{'column': 'history_length', 'min_value': 0.0, 'max_value': {float(cfg.etl.history_max_len)}}}" in message
    assert "expect_column_values_to_be_in_set {'column': 'event'" in message
    assert "{'column': 'weight', 'min_value': 0.0, 'strict_min': True}" in message
