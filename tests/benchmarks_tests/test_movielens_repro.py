"""The MovieLens-1M reproduction on generated files in the ML-1M format (no licensed data in the repo).

- The split, by hand, on two users imported through the adapter. User 1 rates movie 12 (3 stars) at
  second 3, movies 10 (2 stars) and 11 (5 stars) in the same second 5, in that file order, and 13 at
  second 9: its order is 12, 10, 11, 13, every rating counting whatever its stars. User 2 rates movies
  100..152, one a second.
- End to end (the models and the item-kNN reference): 200 users in 10 groups; each group has 40 movies
  in a fixed order and a user watches a run of 15-25 consecutive movies of its group. The last movie of
  a run is in the group, so a model that learns the groups from histories finds it among its top 50,
  while the 50 most popular movies cover only a few of each group.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks import movielens_repro as repro
from recpipe.adapters.movielens import import_movielens

GROUPS, PER_GROUP, USERS = 10, 40, 200
T0 = 978_300_000  # 2000-12-31 22:00 UTC


def write_ml1m(src: Path, users: list[int], movies: list[int], ratings: list[tuple[int, int, int, int]]) -> Path:
    """ML-1M files: ``users.dat``, ``movies.dat`` and ``ratings.dat`` (user, movie, stars, second), in that order."""
    src.mkdir(parents=True, exist_ok=True)
    genres = ("Action", "Comedy|Drama", "Drama", "Sci-Fi|Thriller")
    zips = ("48067", "70072", "55117", "T8H1N")
    (src / "users.dat").write_text("".join(f"{u}::M::25::{u % 21}::{zips[u % 4]}\n" for u in users), encoding="latin-1")
    (src / "movies.dat").write_text("".join(f"{m}::Movie {m} (1999)::{genres[m % 4]}\n" for m in movies), encoding="latin-1")
    (src / "ratings.dat").write_text("".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ratings), encoding="latin-1")
    return src


def planted(src: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    ratings = []
    for user in range(1, USERS + 1):
        group = user % GROUPS
        length = int(rng.integers(15, 26))
        first = int(rng.integers(0, PER_GROUP - length + 1))
        start = T0 + int(rng.integers(0, 400 * 86_400))
        for step in range(length):
            movie = 1 + group * PER_GROUP + first + step
            ratings.append((user, movie, int(rng.integers(1, 6)), start + 60 * step))
    order = rng.permutation(len(ratings))  # ratings.dat is not sorted by time
    return write_ml1m(src, list(range(1, USERS + 1)), list(range(1, GROUPS * PER_GROUP + 1)), [ratings[i] for i in order])


def _pad(items: list[int]) -> list[int]:
    return items + [-1] * (50 - len(items))


def test_leave_last_out_by_hand(tmp_path):
    ratings = [(1, 10, 2, T0 + 5), (1, 11, 5, T0 + 5), (1, 12, 3, T0 + 3), (1, 13, 4, T0 + 9)]
    ratings += [(2, 100 + k, 1 + k % 5, T0 + k) for k in range(53)]
    src = write_ml1m(tmp_path / "src", [1, 2], [10, 11, 12, 13, *range(100, 153)], ratings)
    import_movielens(src, str(tmp_path / "lake"))
    r = repro.read_ratings(str(tmp_path / "lake"))
    assert len(r["user_id"]) == 57  # every rating, 1 to 5 stars
    train, test = repro.leave_last_out(r["user_id"], r["item_id"], r["ts"], r["position"])

    assert train["user_id"].tolist() == [1, 1] + [2] * 51
    assert train["item_id"].tolist() == [10, 11, *range(101, 152)]
    assert train["history"].shape == (53, 50)
    assert train["history"][0].tolist() == _pad([12])
    assert train["history"][1].tolist() == _pad([12, 10])
    assert train["history"][2].tolist() == _pad([100])  # user 2's first row: target 101
    assert train["history"][51].tolist() == list(range(100, 150))  # target 150: 50 items before it
    assert train["history"][52].tolist() == list(range(101, 151))  # target 151: capped at the last 50
    assert test["user_id"].tolist() == [1, 2] and test["item_id"].tolist() == [13, 152]
    assert test["history"][0].tolist() == _pad([12, 10, 11])
    assert test["history"][1].tolist() == list(range(102, 152))
    # ``row`` points back at the targets in the input arrays.
    assert r["item_id"][train["row"]].tolist() == train["item_id"].tolist()
    assert r["item_id"][test["row"]].tolist() == [13, 152]


def test_main_beats_popularity_on_planted_groups(tmp_path, capsys):
    src = planted(tmp_path / "ml-1m")
    out = tmp_path / "results.json"
    args = ["--src", str(src), "--epochs", "4", "--batch-size", "64", "--learning-rate", "0.01", "--out", str(out)]
    assert repro.main(args) == 0
    result = json.loads(out.read_text())
    assert result["data"]["test_users"] == USERS and result["data"]["items_rated"] <= GROUPS * PER_GROUP
    hr = {name: m["hr_at_50"] for name, m in result["results"].items()}
    assert hr["popularity"] < 0.4
    assert hr["youtube_dnn"] > hr["popularity"] + 0.3
    assert hr["two_tower"] > hr["popularity"] + 0.3
    # Item-kNN learns the groups from co-occurrences (each run's movies follow one another).
    assert hr["itemknn"] > hr["popularity"] + 0.3
    printed = capsys.readouterr().out
    assert "| YouTube DNN |" in printed and "| 0.337 |" in printed and "| 0.355 |" in printed
    knn_row = next(line for line in printed.splitlines() if line.startswith("| item-kNN"))
    assert knn_row.split("|")[3].strip() == "1.00"  # the "x item-kNN" column: each HR@50 over item-kNN's
    yt_row = next(line for line in printed.splitlines() if line.startswith("| YouTube DNN"))
    assert float(yt_row.split("|")[3]) == round(hr["youtube_dnn"] / hr["itemknn"], 2)
    assert result["table"] in printed


def test_main_markdown_out_and_one_model_from_a_lake(tmp_path, capsys):
    import_movielens(planted(tmp_path / "ml-1m"), str(tmp_path / "lake"))
    out = tmp_path / "repro.md"
    assert repro.main(["--lake", str(tmp_path / "lake"), "--models", "youtube_dnn", "--epochs", "1", "--out", str(out)]) == 0
    table = out.read_text()
    assert "| YouTube DNN |" in table and "| popularity |" in table and "DSSM" not in table


def test_a_missing_source_file_names_the_expected_format(tmp_path, capsys):
    # The lake and --models errors, shared with the Frappe command, are in test_repro.py.
    src = write_ml1m(tmp_path / "src", [1], [10], [(1, 10, 5, T0)])
    (src / "ratings.dat").unlink()
    assert repro.main(["--src", str(src)]) == 2
    err = capsys.readouterr().err
    assert f"{src}/ratings.dat: no such file" in err and "UserID::MovieID::Rating::Timestamp" in err
