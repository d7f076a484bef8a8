"""Frappe (context-aware mobile app usage: ``frappe.csv`` and ``meta.csv``) as raw click logs.

Source: Baltrunas et al., "Frappe: understanding the usage and perception of mobile app recommendations
in-the-wild" (2015). Both files are tab-separated with a header line. ``frappe.csv`` has
``user item cnt daytime weekday isweekend homework cost weather country city``; ``meta.csv`` describes
the apps (``item package category downloads developer icon language description name price rating
short desc``; only ``item`` and ``category`` are required, ``package``, ``name`` and ``price`` are used
when present). ``unknown`` marks a missing value in both files.

Mapping decisions:

- **Events.** Every row is one usage, which the BARS frappe_x1 protocol counts as a positive: it becomes
  an ``expose`` and a ``click`` (1 ms later) on its own request ``frappe-<line>``, position 0, page
  ``home``, device ``android`` (frappe is an Android app). Negatives are sampled downstream. ``cnt`` and
  the context columns (daytime, weekday, isweekend, homework, cost, weather, country) are kept as extra
  fields, and the source city label as ``source_city``.
- **Time.** Frappe has no timestamps, only a weekday and a part of the day. The import covers the 7 days
  from ``--start``: a row goes to the first of those days with the row's weekday (``unknown`` weekday:
  the start day itself). The part of the day is a window of hours: night 0-5, sunrise 5-7, morning 7-11,
  noon 11-13, afternoon 13-17, sunset 17-19, evening 19-24 (``unknown``: the whole day). The rows of one
  (day, window) are spread evenly over the window in file order: the k-th of n gets
  ``window start + k * window length // n``.
- **Cities.** ``city_id`` is the index of the row's ``city`` label in the sorted list of distinct known
  labels of ``frappe.csv`` (numerically when the labels are integers); ``unknown`` or empty is the
  unknown city, one past the last known index. An event's city is its row's city; a user's city is the
  known city of most of their rows (ties: the lower id; none: unknown). Apps have no city: items get the
  unknown city.
- **Categories.** ``category_id`` is the index of the app's ``meta.csv`` category in the sorted list of
  its distinct known categories; ``unknown``, empty, or an app missing from ``meta.csv`` is the unknown
  category, one past the last known index.
- **Snapshots** (at the first day with events): every user of ``frappe.csv`` (``user_type`` C, device
  android, ``registered_ts`` = their first event) and every app of ``meta.csv`` plus any app used but not
  described there (price: the first decimal number of ``meta.csv``'s price, 0.0 for ``Free``,
  ``unknown`` or none; ``created_ts`` = first use, else the first day's midnight; package, name and
  category name as extras).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from recpipe import contracts, lake
from recpipe.adapters.common import (
    UNKNOWN,
    ImportSummary,
    InputError,
    LakeImport,
    event_lines,
    input_error,
    parse_int,
    read_lines,
    require_file,
    spread_ms,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Part of the day -> [start hour, end hour) of its window.
DAYTIME_HOURS = {
    "night": (0, 5),
    "sunrise": (5, 7),
    "morning": (7, 11),
    "noon": (11, 13),
    "afternoon": (13, 17),
    "sunset": (17, 19),
    "evening": (19, 24),
    UNKNOWN: (0, 24),
}
COLUMNS = ("user", "item", "cnt", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")
CONTEXT = ("daytime", "weekday", "isweekend", "homework", "cost", "weather", "country")
PAGE = "home"
DEVICE = "android"
_HOUR_MS = 3_600_000
_PRICE = re.compile(r"\d+(?:\.\d+)?")


@dataclasses.dataclass(frozen=True)
class _App:
    category: str
    package: str | None
    name: str | None
    price: float


@dataclasses.dataclass(frozen=True)
class _Row:
    line_no: int
    user: int
    item: int
    cnt: int
    city: str  # "" when unknown
    context: dict[str, str]

    def slot(self, start: dt.date) -> tuple[str, str]:
        weekday, daytime = self.context["weekday"], self.context["daytime"]
        offset = 0 if weekday == UNKNOWN else (WEEKDAYS.index(weekday) - start.weekday()) % 7
        return (start + dt.timedelta(days=offset)).isoformat(), daytime


def _known(value: str) -> str:
    return "" if value.strip().lower() in ("", UNKNOWN) else value.strip()


def _header(path: Path, text: str, required: tuple[str, ...]) -> dict[str, int]:
    names = [n.strip() for n in text.split("\t")]
    missing = [c for c in required if c not in names]
    if missing:
        raise input_error(path, 1, f"header lacks columns {missing}; expected at least {list(required)}, found {names}")
    return {n: i for i, n in enumerate(names)}


def _read_meta(path: Path) -> dict[int, _App]:
    # Free-text columns (descriptions in many languages) are not used: a stray byte there is not an error.
    lines = read_lines(path, "utf-8-sig", errors="replace")
    first = next(lines, None)
    if first is None:
        raise InputError(f"{path}: empty file; expected a header line with item and category")
    cols = _header(path, first[1], ("item", "category"))
    apps: dict[int, _App] = {}
    for line_no, text in lines:
        fields = text.split("\t")
        # Only the leading columns are needed; free-text columns after them are not checked.
        if len(fields) <= max(cols["item"], cols["category"]):
            raise input_error(path, line_no, f"expected {len(cols)} tab-separated fields, found {len(fields)}: {text[:120]!r}")

        def get(name: str, fields: list[str] = fields) -> str | None:
            i = cols.get(name)
            return (_known(fields[i]) or None) if i is not None and i < len(fields) else None

        item = parse_int(path, line_no, "item", fields[cols["item"]])
        if item in apps:
            raise input_error(path, line_no, f"item {item} appears twice")
        price = _PRICE.search(get("price") or "")
        apps[item] = _App(get("category") or "", get("package"), get("name"), float(price.group()) if price else 0.0)
    return apps


def _rows(path: Path) -> Iterator[_Row]:
    """Validated rows of ``frappe.csv``, in file order."""
    lines = read_lines(path, "utf-8-sig")
    first = next(lines, None)
    if first is None:
        raise InputError(f"{path}: empty file; expected a header line {' '.join(COLUMNS)}")
    cols = _header(path, first[1], COLUMNS)
    n_cols = len(first[1].split("\t"))
    for line_no, text in lines:
        fields = text.split("\t")
        if len(fields) != n_cols:
            raise input_error(path, line_no, f"expected {n_cols} tab-separated fields, found {len(fields)}: {text[:120]!r}")
        context = {c: fields[cols[c]].strip() for c in CONTEXT}
        context["weekday"], context["daytime"] = context["weekday"].lower(), context["daytime"].lower()
        if context["weekday"] not in (*WEEKDAYS, UNKNOWN):
            raise input_error(path, line_no, f"weekday must be one of {[*WEEKDAYS, UNKNOWN]}, received {context['weekday']!r}")
        if context["daytime"] not in DAYTIME_HOURS:
            raise input_error(path, line_no, f"daytime must be one of {list(DAYTIME_HOURS)}, received {context['daytime']!r}")
        yield _Row(
            line_no,
            parse_int(path, line_no, "user", fields[cols["user"]]),
            parse_int(path, line_no, "item", fields[cols["item"]]),
            parse_int(path, line_no, "cnt", fields[cols["cnt"]]),
            _known(fields[cols["city"]]),
            context,
        )


def _sort_key(label: str) -> tuple[int, int, str]:
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)


def _index(labels: set[str]) -> dict[str, int]:
    return {label: i for i, label in enumerate(sorted(labels, key=_sort_key))}


def import_frappe(src: str | Path, lake_root: str, *, start: str, overwrite: bool = False) -> ImportSummary:
    """Import a Frappe directory (``frappe.csv``, ``meta.csv``) as 7 days of events from ``start``."""
    src = Path(src)
    first_day = lake.parse_ds(start)
    apps = _read_meta(require_file(src / "meta.csv", "Frappe app metadata, tab-separated with a header"))
    usage = require_file(src / "frappe.csv", "Frappe usage log, tab-separated with a header")
    # First pass: validate, and count what the second pass needs (city labels, rows per time window).
    city_labels: set[str] = set()
    per_slot: Counter[tuple[str, str]] = Counter()
    for row in _rows(usage):
        if row.city:
            city_labels.add(row.city)
        per_slot[row.slot(first_day)] += 1
    if not per_slot:
        raise InputError(f"{usage}: holds no usage rows; nothing to import")
    cities = _index(city_labels)
    unknown_city = len(cities)
    categories = _index({a.category for a in apps.values() if a.category})
    unknown_category = len(categories)

    def category(item: int) -> int:
        app = apps.get(item)
        return categories[app.category] if app is not None and app.category else unknown_category

    seen: Counter[tuple[str, str]] = Counter()
    user_cities: dict[int, Counter[int]] = {}
    first_use: dict[int, int] = {}
    first_event: dict[int, int] = {}
    with LakeImport(lake_root, overwrite=overwrite) as imp:
        for ds, _ in sorted(per_slot):
            imp.partition_dir(contracts.RAW_EVENTS.name, ds)  # fails fast on an existing partition
        for row in _rows(usage):
            ds, daytime = slot = row.slot(first_day)
            begin, end = DAYTIME_HOURS[daytime]
            midnight, _ = lake.day_bounds_ms(ds)
            ts = midnight + begin * _HOUR_MS + spread_ms(seen[slot], per_slot[slot], (end - begin) * _HOUR_MS)
            seen[slot] += 1
            city = cities[row.city] if row.city else unknown_city
            request_id = f"frappe-{row.line_no}"
            fields = {
                "user_id": row.user,
                "item_id": row.item,
                "city_id": city,
                "category_id": category(row.item),
                "page": PAGE,
                "position": 0,
                "device": DEVICE,
                "request_id": request_id,
                "cnt": row.cnt,
                **row.context,
                "source_city": row.city or UNKNOWN,
            }
            imp.add_exposure(ds, event_lines(request_id, 0, ts, fields, click=True))
            counts = user_cities.setdefault(row.user, Counter())
            if row.city:
                counts[city] += 1
            first_event[row.user] = min(ts, first_event.get(row.user, ts))
            first_use[row.item] = min(ts, first_use.get(row.item, ts))
        days = sorted(imp.exposes)
        midnight, _ = lake.day_bounds_ms(days[0])
        imp.write_snapshot(
            contracts.RAW_USERS,
            days[0],
            (
                {
                    "user_id": user,
                    "city_id": min(counts, key=lambda c: (-counts[c], c)) if counts else unknown_city,
                    "user_type": "C",
                    "device": DEVICE,
                    "registered_ts": first_event[user],
                }
                for user, counts in sorted(user_cities.items())
            ),
        )
        imp.write_snapshot(
            contracts.RAW_ITEMS,
            days[0],
            (
                {
                    "item_id": item,
                    "city_id": unknown_city,
                    "category_id": category(item),
                    "price": apps[item].price if item in apps else 0.0,
                    "created_ts": first_use.get(item, midnight),
                    "image": "",
                    "package": apps[item].package if item in apps else None,
                    "name": apps[item].name if item in apps else None,
                    "category_name": (apps[item].category if item in apps else "") or UNKNOWN,
                }
                for item in sorted(set(apps) | set(first_use))
            ),
        )
        return imp.commit("frappe")
