"""The Frappe (BARS frappe_x1) reproduction on generated files in Frappe's format (no licensed data in the repo).

- Negatives by hand, on 4 positives over 3 items. User 0 used items 0 and 1 in context A (every field but
  the item at id 0), so both negatives of each of those rows must be item 2; user 1 used item 0 in context
  A, so its negatives are items 1 or 2; user 0 used item 2 in context B (daytime 1), so its negatives are
  items 0 or 1. Every negative keeps its positive's user and context.
- The split, by hand: 30 rows give ceil(70%) = 21 train, ceil(20%) = 6 validation and 3 test rows.
- Reading back through the adapter: 3 usages of ``frappe.csv`` come back in file order with their labels.
- End to end: 16 users, 8 app categories of 5 apps; user ``u`` uses only apps of category ``u % 8``, 150
  times, in random contexts. A random negative app is of another category 7 times in 8, so a model that
  learns user x category tells most negatives apart; LR, additive in user and app, cannot (every app is
  about as popular), and stays near 0.5 (measured 0.49; the deep models 0.82-0.93 after 2 epochs, and
  0.91-0.94 on two other data seeds). Dropout is 0 there: the published 0.6 of Wide&Deep leaves it at
  0.49 after 2 epochs on these 5,040 training rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import frappe_repro as repro
from recpipe.adapters.frappe import import_frappe

HEADER = "user\titem\tcnt\tdaytime\tweekday\tisweekend\thomework\tcost\tweather\tcountry\tcity"
DAYTIMES = ("morning", "afternoon", "evening", "night", "noon", "sunset", "sunrise")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEATHERS = ("sunny", "cloudy", "rainy", "unknown")
COUNTRIES = ("Spain", "Germany", "unknown")
CITIES = ("369", "1014", "0", "unknown")
USERS, CATEGORIES, PER_CATEGORY, USES = 16, 8, 5, 150


def write_frappe(src: Path, usages: list[tuple], categories: dict[int, str]) -> Path:
    """``frappe.csv`` (user, item, then daytime, weekday, homework, weather, country, city) and ``meta.csv``."""
    src.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for user, item, daytime, weekday, homework, weather, country, city in usages:
        weekend = "weekend" if weekday in ("saturday", "sunday") else "workday"
        lines.append(f"{user}\t{item}\t1\t{daytime}\t{weekday}\t{weekend}\t{homework}\tfree\t{weather}\t{country}\t{city}")
    (src / "frappe.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = ["item\tpackage\tcategory\tname\tprice"]
    meta += [f"{item}\tcom.app{item}\t{cat}\tApp {item}\tFree" for item, cat in sorted(categories.items())]
    (src / "meta.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    return src


def planted(src: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    usages = []
    for user in range(USERS):
        first = (user % CATEGORIES) * PER_CATEGORY
        for _ in range(USES):
            item = first + int(rng.integers(PER_CATEGORY))
            context = [rng.choice(v) for v in (DAYTIMES, WEEKDAYS, ("home", "work", "unknown"), WEATHERS, COUNTRIES, CITIES)]
            usages.append((user, item, *context))
    apps = {item: f"Category{item // PER_CATEGORY}" for item in range(CATEGORIES * PER_CATEGORY)}
    return write_frappe(src, usages, apps)


def _positives(rows: list[tuple[int, int, int]]) -> dict[str, np.ndarray]:
    """(user, item, daytime) ids; every other context field 0."""
    out = {f: np.zeros(len(rows), np.int32) for f in repro.FIELDS}
    out["user"], out["item"], out["daytime"] = (np.array(c, np.int32) for c in zip(*rows, strict=True))
    return out


def test_negatives_by_hand():
    positives = _positives([(0, 0, 0), (0, 1, 0), (1, 0, 0), (0, 2, 1)])
    rows = repro.with_negatives(positives, n_items=3, rng=np.random.default_rng(7))
    assert rows.y.tolist() == [1, 1, 1, 1] + [0] * 8
    assert rows.x["item"][:4].tolist() == [0, 1, 0, 2]
    negatives = rows.x["item"][4:].reshape(4, 2)
    assert negatives[0].tolist() == [2, 2] and negatives[1].tolist() == [2, 2]  # user 0 used 0 and 1 in context A
    assert set(negatives[2]) <= {1, 2} and set(negatives[3]) <= {0, 1}
    # Each negative carries its positive's user and context: positive i's are rows 4 + 2i and 5 + 2i.
    assert rows.x["user"].tolist() == [0, 0, 1, 0] + [0, 0, 0, 0, 1, 1, 0, 0]  # noqa: RUF005 (positives + negatives)
    assert rows.x["daytime"].tolist() == [0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 1, 1]  # noqa: RUF005
    assert all(rows.x[f].sum() == 0 for f in repro.FIELDS[3:])
    # The same seed draws the same negatives.
    again = repro.with_negatives(positives, n_items=3, rng=np.random.default_rng(7))
    assert again.x["item"].tolist() == rows.x["item"].tolist()


def test_negatives_fail_when_a_user_used_every_item_in_a_context():
    positives = _positives([(0, 0, 0), (1, 0, 0), (1, 1, 0)])
    with pytest.raises(ValueError, match=r"positive row 1 \(user id 1\): the user used all 2 items in this context"):
        repro.with_negatives(positives, n_items=2, rng=np.random.default_rng(0))


def test_split_7_2_1_by_hand():
    train, valid, test = repro.split_indices(30, np.random.default_rng(1))
    assert (len(train), len(valid), len(test)) == (21, 6, 3)
    assert sorted(np.concatenate([train, valid, test]).tolist()) == list(range(30))  # disjoint, every row once
    again = repro.split_indices(30, np.random.default_rng(1))
    assert [a.tolist() for a in again] == [train.tolist(), valid.tolist(), test.tolist()]
    assert len(repro.split_indices(288_609, np.random.default_rng(1))[0]) == 202_027  # BARS: 202,027 / 57,722 / 28,860
    assert [len(a) for a in repro.split_indices(288_609, np.random.default_rng(1))[1:]] == [57_722, 28_860]
    with pytest.raises(ValueError, match="9 rows leave no test row"):
        repro.split_indices(9, np.random.default_rng(1))


def test_positives_read_back_through_the_adapter(tmp_path):
    usages = [
        (7, 30, "night", "monday", "work", "rainy", "Spain", "369"),
        (5, 10, "morning", "sunday", "home", "sunny", "unknown", "unknown"),
        (7, 10, "evening", "monday", "home", "sunny", "Germany", "1014"),
    ]
    import_frappe(write_frappe(tmp_path / "src", usages, {10: "Games", 30: "Tools"}), str(tmp_path / "lake"), start=repro.START)
    raw = repro.read_positives(str(tmp_path / "lake"))
    assert raw["line"].tolist() == [2, 3, 4]  # file order, although Sunday's row is on another day
    assert raw["user"].tolist() == [7, 5, 7] and raw["item"].tolist() == [30, 10, 10]
    assert raw["weekday"].tolist() == ["monday", "sunday", "monday"] and raw["isweekend"].tolist() == [
        "workday",
        "weekend",
        "workday",
    ]
    assert raw["city"].tolist() == ["369", "unknown", "1014"] and raw["country"].tolist() == ["Spain", "unknown", "Germany"]
    ids, vocabularies = repro.encode(raw)
    assert vocabularies["user"].tolist() == [5, 7] and ids["user"].tolist() == [1, 0, 1]
    assert vocabularies["city"].tolist() == ["1014", "369", "unknown"] and ids["city"].tolist() == [1, 2, 0]


def test_main_deep_models_beat_lr_on_planted_categories(tmp_path, capsys):
    out = tmp_path / "results.json"
    args = ["--src", str(planted(tmp_path / "frappe")), "--epochs", "2", "--batch-size", "64", "--learning-rate", "0.01"]
    # No dropout, batch norm or embedding penalty: the published runs' settings are sized for 200,000 rows.
    args += ["--dropout", "0", "--embedding-l2", "0", "--no-batch-norm"]
    assert repro.main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["data"]["positives"] == USERS * USES and result["data"]["rows"] == 3 * USERS * USES
    assert (result["data"]["train"], result["data"]["valid"], result["data"]["test"]) == (5040, 1440, 720)
    assert result["data"]["vocab_user"] == USERS and result["data"]["vocab_isweekend"] == 2
    auc = {name: m["auc"] for name, m in result["results"].items()}
    assert auc["lr"] < 0.6
    for name in ("deepfm", "wide_deep", "ipnn", "dnn"):
        assert auc[name] > 0.75 and auc[name] > auc["lr"] + 0.2, auc
        assert result["results"][name]["epochs"] == 2
        assert not result["results"][name]["batch_norm"] and result["results"][name]["embedding_l2"] == 0
    printed = capsys.readouterr().out
    assert result["table"] in printed
    for line in ("| DeepFM |", "| 0.9842 |", "| 0.9841 |", "| 0.9833 |", "| 0.9356 |", "| 0.3076 |"):
        assert line in printed


def test_each_deep_model_defaults_to_its_published_runs_settings():
    args = repro.build_parser().parse_args(["--lake", "x"])
    got = {name: repro.settings(name, args) for name in ("deepfm", "wide_deep", "ipnn", "dnn")}
    assert got["deepfm"] == {"dropout": 0.2, "embedding_l2": 0.05, "batch_norm": True, "patience": 2}
    assert got["wide_deep"] == {"dropout": 0.6, "embedding_l2": 0.1, "batch_norm": True, "patience": 2}
    assert got["ipnn"] == {"dropout": 0.3, "embedding_l2": 0.05, "batch_norm": False, "patience": 3}
    assert got["dnn"] == {"dropout": 0.2, "embedding_l2": 0.05, "batch_norm": True, "patience": 2}
    assert args.embedding_l2_scope == "table" and args.embedding_init_stddev == 1e-4
    over = repro.build_parser().parse_args(["--lake", "x", "--no-batch-norm", "--dropout", "0", "--patience", "5"])
    assert repro.settings("ipnn", over) == {"dropout": 0.0, "embedding_l2": 0.05, "batch_norm": False, "patience": 5}


def test_markdown_out_and_one_model_from_a_lake(tmp_path, capsys):
    import_frappe(planted(tmp_path / "frappe"), str(tmp_path / "lake"), start=repro.START)
    out = tmp_path / "repro.md"
    assert repro.main(["--lake", str(tmp_path / "lake"), "--models", "lr", "--out", str(out)]) == 0
    table = out.read_text()
    assert "| LR |" in table and "| 0.9356 |" in table and "DeepFM" not in table


def test_a_missing_source_file_names_the_expected_format(tmp_path, capsys):
    # The lake and --models errors, shared with the MovieLens command, are in test_repro.py.
    src = write_frappe(tmp_path / "src", [(1, 2, "night", "monday", "work", "rainy", "Spain", "369")], {2: "Games"})
    (src / "frappe.csv").unlink()
    assert repro.main(["--src", str(src)]) == 2
    assert f"{src}/frappe.csv: no such file (expected Frappe usage log" in capsys.readouterr().err
