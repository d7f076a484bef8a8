import json

import pytest

from recpipe import synthetic
from validation.data_checks import DataCheckFailed, check_partition


def test_raw_events_pass_then_fail_with_the_expectation_named(cfg):
    synthetic.generate(cfg.lake_root, days=1, users=60, items=60, seed=1, start="2026-11-01")
    summary = check_partition("raw_events", cfg, "2026-11-01")
    assert summary["success"] and summary["failed"] == []
    assert json.loads(open(f"{summary['report']}/summary.json").read())["success"] is True

    part = f"{cfg.lake_root}/raw/events/ds=2026-11-01/part-00000.jsonl"
    lines = open(part).read().splitlines()
    # Up to 1% invalid rows are tolerated (staging drops them); 2% unknown event types fail the night.
    n_bad = len(lines) // 50
    bad = [json.dumps(json.loads(line) | {"event": "purchase"}) for line in lines[:n_bad]]
    open(part, "w").write("\n".join([*bad, *lines[n_bad:]]) + "\n")
    with pytest.raises(DataCheckFailed) as err:
        check_partition("raw_events", cfg, "2026-11-01")
    message = str(err.value)
    assert "data check 'raw_events' failed for ds=2026-11-01: 1 of" in message
    assert "expect_column_values_to_be_in_set {'column': 'event'" in message and f"unexpected {n_bad}" in message
    assert "report.html" in message


def test_a_few_bad_raw_rows_are_tolerated(cfg):
    synthetic.generate(cfg.lake_root, days=1, users=60, items=60, seed=1, start="2026-11-01")
    part = f"{cfg.lake_root}/raw/events/ds=2026-11-01/part-00000.jsonl"
    lines = open(part).read().splitlines()
    open(part, "w").write("\n".join([json.dumps(json.loads(lines[0]) | {"event": "purchase"}), *lines[1:]]) + "\n")
    assert check_partition("raw_events", cfg, "2026-11-01")["success"]


def test_unknown_suite_is_named(cfg):
    with pytest.raises(ValueError, match="unknown suite 'features'"):
        check_partition("features", cfg, "2026-11-01")
