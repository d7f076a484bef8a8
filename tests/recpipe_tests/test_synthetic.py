import hashlib
import json

import numpy as np
import pytest

from recpipe import contracts, synthetic


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _events(root, ds):
    lines = (root / "raw/events" / f"ds={ds}" / "part-00000.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    args = {"days": 2, "users": 60, "items": 60, "start": "2026-11-01"}
    synthetic.generate(str(tmp_path / "a"), seed=3, **args)
    synthetic.generate(str(tmp_path / "b"), seed=3, **args)
    synthetic.generate(str(tmp_path / "c"), seed=4, **args)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_partitions_contract_and_oracle(tmp_path):
    days = synthetic.generate(str(tmp_path), days=1, users=80, items=60, seed=1, start="2026-11-01")
    assert days == ["2026-11-01"]
    part = tmp_path / "raw/events/ds=2026-11-01"
    assert (part / "_SUCCESS").exists()
    events = _events(tmp_path, "2026-11-01")
    assert events and all(list(e) == contracts.RAW_EVENTS.columns for e in events)
    assert {e["event"] for e in events} <= set(contracts.EVENT_TYPES)
    exposures = [e for e in events if e["event"] == "expose"]
    oracle = [json.loads(x) for x in (tmp_path / "oracle/exposures/ds=2026-11-01/part-00000.jsonl").read_text().splitlines()]
    assert {o["event_id"] for o in oracle} == {e["event_id"] for e in exposures}
    assert all(0 < o["p_click"] < 1 for o in oracle)
    # Every follow-up action comes after a click on the same request and item.
    clicks = {(e["request_id"], e["item_id"]) for e in events if e["event"] == "click"}
    follow = [e for e in events if e["event"] in ("collect", "apply", "call", "im")]
    assert all((e["request_id"], e["item_id"]) in clicks for e in follow)


def test_city_locality_and_click_probability_follow_the_model():
    world = synthetic.build_world(500, 200, seed=0, start_ms=0)
    users = np.arange(500)
    same = world.item_city[np.arange(200)]
    # The same item is more clickable for a user of its city than for a user elsewhere (all else equal).
    item = 0
    local = users[world.user_city == same[item]]
    logit_local = synthetic.click_logit(world, local, np.full(len(local), item), 0)
    world_far = synthetic.World(
        **{**world.__dict__, "user_city": np.where(world.user_city == same[item], (same[item] + 1) % 8, world.user_city)}
    )
    logit_far = synthetic.click_logit(world_far, local, np.full(len(local), item), 0)
    assert np.allclose(logit_local - logit_far, 1.3)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="days must be at least 1, received 0"):
        synthetic.generate(str(tmp_path), days=0, users=10, items=60, seed=1, start="2026-11-01")
    with pytest.raises(ValueError, match="received users=10, items=5"):
        synthetic.generate(str(tmp_path), days=1, users=10, items=5, seed=1, start="2026-11-01")
