"""MovieLens-1M (``ratings.dat``, ``users.dat``, ``movies.dat``) as raw click logs.

Source: https://grouplens.org/datasets/movielens/1m/ — ``::``-separated, latin-1 encoded:
``UserID::MovieID::Rating::Timestamp`` (seconds), ``UserID::Gender::Age::Occupation::Zip-code`` and
``MovieID::Title::Genres`` (``|``-separated genres).

Mapping decisions:

- **Time.** Real timestamps: ``ts`` is the rating's second in milliseconds and ``ds`` its UTC day, so the
  import spans the dataset's own dates (2000-04 to 2003-02 for ML-1M); ``--start`` is ignored.
- **Events.** Every rating is an ``expose`` of the movie to the user; a rating of 4 or 5 adds a ``click``
  on the same request 1 ms later (``ts + 1``, still the same second and UTC day). ``rating`` is kept on
  both rows as an extra field.
- **Requests.** One request per (user, second): ``request_id = "ml-<user>-<second>"``. ``position`` is the
  order of that user's ratings within that second, in file order. ``event_id`` is
  ``<request_id>-<position>-<event>``. ``page`` is ``list`` and ``device`` is ``pc`` (a web site, 2000-2003).
- **Cities.** The first character of the zip code, when it is a digit, is the US zip region and the city:
  ``city_id`` 0-9. Any other zip code (Canadian ``T8H1N``, empty…) is the unknown city, ``city_id`` 10.
  An event's city is its user's city; movies have no city, so items get the unknown city 10.
- **Categories.** The movie's first genre, as its index in the 18 genres of the ML-1M README, in that
  order: Action 0, Adventure 1, Animation 2, Children's 3, Comedy 4, Crime 5, Documentary 6, Drama 7,
  Fantasy 8, Film-Noir 9, Horror 10, Musical 11, Mystery 12, Romance 13, Sci-Fi 14, Thriller 15, War 16,
  Western 17; a first genre outside that list is the unknown category 18.
- **Snapshots** (at the first day of the import): every user of ``users.dat`` (``user_type`` C, device
  pc, ``registered_ts`` = the user's first rating; gender, age, occupation and zip as extras) and every
  movie of ``movies.dat`` (price 0.0, ``created_ts`` = the movie's first rating, empty image; title,
  genres and year as extras). A user or movie without ratings gets the first day's midnight.
- A rating of a user or movie missing from ``users.dat`` / ``movies.dat`` is an input error.

Ratings are not sorted by time in ``ratings.dat``: they are streamed into per-day spool files inside the
lake's import scratch directory, then each day is sorted and written on its own, so memory holds one day.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from recpipe import contracts, lake
from recpipe.adapters.common import (
    ImportSummary,
    InputError,
    LakeImport,
    ds_of_ms,
    event_lines,
    input_error,
    parse_int,
    read_lines,
    require_file,
    split_fields,
)

GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
UNKNOWN_CATEGORY = len(GENRES)
UNKNOWN_CITY = 10
ENCODING = "latin-1"
PAGE = "list"
DEVICE = "pc"
CLICK_MIN_RATING = 4
_SPOOL_FLUSH_ROWS = 200_000
_YEAR = re.compile(r"\((\d{4})\)\s*$")


@dataclasses.dataclass(frozen=True)
class _Movie:
    category: int
    title: str
    genres: str
    year: int | None


@dataclasses.dataclass(frozen=True)
class _User:
    city: int
    gender: str
    age: int
    occupation: int
    zip: str


def zip_city(zip_code: str) -> int:
    """City id of a zip code: its first digit (US zip region 0-9), else the unknown city 10."""
    return int(zip_code[0]) if zip_code[:1].isdigit() else UNKNOWN_CITY


def genre_category(genres: str) -> int:
    """Category id of a ``|``-separated genre list: the first genre's index in ``GENRES``, else 18."""
    first = genres.split("|", 1)[0]
    return GENRES.index(first) if first in GENRES else UNKNOWN_CATEGORY


def _read_movies(path: Path) -> dict[int, _Movie]:
    movies: dict[int, _Movie] = {}
    for line_no, text in read_lines(path, ENCODING):
        movie_id, title, genres = split_fields(path, line_no, text, "::", 3, "MovieID::Title::Genres")
        mid = parse_int(path, line_no, "MovieID", movie_id)
        if mid in movies:
            raise input_error(path, line_no, f"MovieID {mid} appears twice")
        year = _YEAR.search(title)
        movies[mid] = _Movie(genre_category(genres), title, genres, int(year.group(1)) if year else None)
    return movies


def _read_users(path: Path) -> dict[int, _User]:
    users: dict[int, _User] = {}
    for line_no, text in read_lines(path, ENCODING):
        user_id, gender, age, occupation, zip_code = split_fields(
            path, line_no, text, "::", 5, "UserID::Gender::Age::Occupation::Zip-code"
        )
        uid = parse_int(path, line_no, "UserID", user_id)
        if uid in users:
            raise input_error(path, line_no, f"UserID {uid} appears twice")
        users[uid] = _User(
            zip_city(zip_code),
            gender,
            parse_int(path, line_no, "Age", age),
            parse_int(path, line_no, "Occupation", occupation),
            zip_code,
        )
    return users


def _ratings(path: Path, users: dict[int, _User], movies: dict[int, _Movie]) -> Iterator[tuple[int, int, int, int, int]]:
    """Validated ``(second, user, movie, rating, line number)`` of ``ratings.dat``, in file order."""
    for line_no, text in read_lines(path, ENCODING):
        fields = split_fields(path, line_no, text, "::", 4, "UserID::MovieID::Rating::Timestamp")
        names = ("UserID", "MovieID", "Rating", "Timestamp")
        user, movie, rating, second = (parse_int(path, line_no, name, value) for name, value in zip(names, fields, strict=True))
        if user not in users:
            raise input_error(path, line_no, f"UserID {user} is not in users.dat")
        if movie not in movies:
            raise input_error(path, line_no, f"MovieID {movie} is not in movies.dat")
        if not 1 <= rating <= 5:
            raise input_error(path, line_no, f"Rating must be 1 to 5, received {rating}")
        if second < 0:
            raise input_error(path, line_no, f"Timestamp must be non-negative seconds, received {second}")
        yield second, user, movie, rating, line_no


class _DaySpool:
    """Rows routed to one text file per day, buffered in memory and appended in batches."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.buffers: dict[str, list[str]] = {}
        self.buffered = 0

    def add(self, ds: str, row: tuple[int, ...]) -> None:
        self.buffers.setdefault(ds, []).append("\t".join(map(str, row)))
        self.buffered += 1
        if self.buffered >= _SPOOL_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        for ds, rows in self.buffers.items():
            if rows:
                with open(self.directory / f"{ds}.tsv", "a", encoding="ascii") as fh:
                    fh.write("\n".join(rows) + "\n")
                rows.clear()
        self.buffered = 0

    def read(self, ds: str) -> list[tuple[int, ...]]:
        with open(self.directory / f"{ds}.tsv", encoding="ascii") as fh:
            return [tuple(map(int, line.split("\t"))) for line in fh]


def import_movielens(src: str | Path, lake_root: str, *, overwrite: bool = False) -> ImportSummary:
    """Import an ML-1M directory (``ratings.dat``, ``users.dat``, ``movies.dat``) into the lake's raw datasets."""
    src = Path(src)
    movies = _read_movies(require_file(src / "movies.dat", "MovieLens-1M MovieID::Title::Genres"))
    users = _read_users(require_file(src / "users.dat", "MovieLens-1M UserID::Gender::Age::Occupation::Zip-code"))
    ratings_path = require_file(src / "ratings.dat", "MovieLens-1M UserID::MovieID::Rating::Timestamp")
    first_user: dict[int, int] = {}
    first_movie: dict[int, int] = {}
    with LakeImport(lake_root, overwrite=overwrite) as imp:
        spool = _DaySpool(imp.scratch_dir())
        for second, user, movie, rating, line_no in _ratings(ratings_path, users, movies):
            ms = second * 1000
            ds = ds_of_ms(ms)
            if ds not in spool.buffers:
                imp.partition_dir(contracts.RAW_EVENTS.name, ds)  # fails fast on an existing partition
            spool.add(ds, (second, user, movie, rating, line_no))
            first_user[user] = min(ms, first_user.get(user, ms))
            first_movie[movie] = min(ms, first_movie.get(movie, ms))
        if not spool.buffers:
            raise InputError(f"{ratings_path}: holds no ratings; nothing to import")
        spool.flush()
        days = sorted(spool.buffers)
        for ds in days:
            _write_day(imp, ds, spool.read(ds), users, movies)
        midnight, _ = lake.day_bounds_ms(days[0])
        imp.write_snapshot(
            contracts.RAW_USERS,
            days[0],
            (
                {
                    "user_id": uid,
                    "city_id": u.city,
                    "user_type": "C",
                    "device": DEVICE,
                    "registered_ts": first_user.get(uid, midnight),
                    "gender": u.gender,
                    "age": u.age,
                    "occupation": u.occupation,
                    "zip": u.zip,
                }
                for uid, u in sorted(users.items())
            ),
        )
        imp.write_snapshot(
            contracts.RAW_ITEMS,
            days[0],
            (
                {
                    "item_id": mid,
                    "city_id": UNKNOWN_CITY,
                    "category_id": m.category,
                    "price": 0.0,
                    "created_ts": first_movie.get(mid, midnight),
                    "image": "",
                    "title": m.title,
                    "genres": m.genres,
                    "year": m.year,
                }
                for mid, m in sorted(movies.items())
            ),
        )
        return imp.commit("movielens")


def _write_day(imp: LakeImport, ds: str, rows: list[tuple[int, ...]], users: dict[int, _User], movies: dict[int, _Movie]) -> None:
    """One day's ratings, sorted by (second, user, file line), as exposures and clicks."""
    rows.sort(key=lambda r: (r[0], r[1], r[4]))
    request, position = None, 0
    for second, user, movie, rating, _ in rows:
        position = position + 1 if request == (user, second) else 0
        request = (user, second)
        request_id = f"ml-{user}-{second}"
        fields = {
            "user_id": user,
            "item_id": movie,
            "city_id": users[user].city,
            "category_id": movies[movie].category,
            "page": PAGE,
            "position": position,
            "device": DEVICE,
            "request_id": request_id,
            "rating": rating,
        }
        imp.add_exposure(ds, event_lines(request_id, position, second * 1000, fields, click=rating >= CLICK_MIN_RATING))
    imp.close_day(ds)
