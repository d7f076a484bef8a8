import json

from recpipe import contracts, tables


def _snapshot(root, dataset, ds, rows):
    part = root / dataset / f"ds={ds}"
    part.mkdir(parents=True)
    (part / "part.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (part / "_SUCCESS").touch()


def test_vocab_sizes_come_from_the_latest_snapshots(tmp_path):
    item = {"price": 1.0, "created_ts": 0, "image": ""}
    user = {"user_type": "C", "device": "pc", "registered_ts": 0}
    _snapshot(tmp_path, "raw/items", "2026-11-01", [{"item_id": 4, "city_id": 3, "category_id": 2, **item}])
    _snapshot(tmp_path, "raw/users", "2026-11-01", [{"user_id": 1, "city_id": 5, **user}])
    # Small ids keep the contract's default sizes, so a synthetic lake's models keep one shape.
    assert tables.vocab_sizes(str(tmp_path), "2026-11-02") == {
        "n_items": 5,
        "n_cities": contracts.N_CITIES_MAX,
        "n_categories": len(contracts.CATEGORIES),
    }
    # An imported dataset with 18 genres and a user in city 100: the vocabularies grow to fit.
    _snapshot(tmp_path, "raw/items", "2026-11-03", [{"item_id": 9, "city_id": 10, "category_id": 18, **item}])
    _snapshot(tmp_path, "raw/users", "2026-11-03", [{"user_id": 1, "city_id": 100, **user}])
    assert tables.vocab_sizes(str(tmp_path), "2026-11-03") == {"n_items": 10, "n_cities": 101, "n_categories": 19}
    specs = {f.name: f.vocab_size for f in contracts.ranking_features(**tables.vocab_sizes(str(tmp_path), "2026-11-05"))}
    assert (specs["item_id"], specs["user_city"], specs["item_city"], specs["category_id"]) == (10, 101, 101, 19)
