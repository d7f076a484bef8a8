"""Synthetic click logs of a classifieds site: the embedded default data.

Users have a home city, a B (business) or C (consumer) type, a device and a per-category affinity;
items (posts) have a city, a category (business line), a price, a creation time and a small image
whose colour and stripes depend on the category. Each active user browses in sessions separated by
idle gaps; every request exposes up to ten items chosen by the site's current recommender (popular
items of the user's city on the home feed, of one category on list pages); a click follows with a
known probability, then sometimes a collect, apply, call or IM.

The true click probability of every exposure goes to ``oracle/exposures`` and each active user's
top items by true expected clicks to ``oracle/topk``; training never reads ``oracle/``, evaluation
uses it to report the Bayes-optimal AUC and an oracle recall. Same arguments, same bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recpipe import contracts, lake

N_CITIES = 8
LATENT_DIM = 8
EXPOSURES_PER_REQUEST = 10
ORACLE_TOPK = 100
IMAGE_SIZE = 12
# Hour of the day (UTC) at which each business line's items draw the most clicks, and the size of that effect
# (jobs in the morning, services at noon, housing and cars after work, second-hand and pets late evening).
CATEGORY_PEAK_HOUR = (9, 19, 18, 12, 21, 20)
HOUR_EFFECT = 1.0
# Extra logit lost per position further down the list on a phone (android, ios, h5) than on a pc.
MOBILE_POSITION_DECAY = 0.12
# After a click, per category: probabilities of collect, apply, call, im.
FOLLOW_UPS = {
    "jobs": (0.10, 0.35, 0.05, 0.10),
    "housing": (0.20, 0.0, 0.25, 0.20),
    "cars": (0.15, 0.0, 0.25, 0.15),
    "services": (0.10, 0.0, 0.30, 0.15),
    "secondhand": (0.20, 0.0, 0.10, 0.30),
    "pets": (0.25, 0.0, 0.10, 0.20),
}


@dataclasses.dataclass(frozen=True)
class World:
    """The static part of the simulation: users, items and the true preference model."""

    user_city: np.ndarray
    user_type: np.ndarray  # 0 = B, 1 = C
    user_device: np.ndarray
    user_activity: np.ndarray
    user_affinity: np.ndarray  # users x categories, rows sum to 1
    user_latent: np.ndarray
    item_city: np.ndarray
    item_category: np.ndarray
    item_price: np.ndarray
    item_created: np.ndarray
    item_latent: np.ndarray
    item_popularity: np.ndarray  # sums to 1

    @property
    def n_users(self) -> int:
        return len(self.user_city)

    @property
    def n_items(self) -> int:
        return len(self.item_city)


def build_world(n_users: int, n_items: int, seed: int, start_ms: int) -> World:
    """Draw users and items; the same seed always gives the same world."""
    if n_users < 1 or n_items < N_CITIES * len(contracts.CATEGORIES):
        raise ValueError(
            f"need at least 1 user and {N_CITIES * len(contracts.CATEGORIES)} items, received users={n_users}, items={n_items}"
        )
    rng = np.random.default_rng([seed, 0])
    n_cat = len(contracts.CATEGORIES)
    city_w = 1.0 / np.arange(1, N_CITIES + 1) ** 0.8
    city_w /= city_w.sum()
    user_city = rng.choice(N_CITIES, n_users, p=city_w)
    user_type = (rng.random(n_users) > 0.15).astype(np.int64)
    user_device = rng.choice(len(contracts.DEVICES), n_users, p=[0.5, 0.3, 0.1, 0.1])
    user_activity = rng.beta(2.0, 3.0, n_users)
    affinity = rng.dirichlet(np.full(n_cat, 0.35), n_users)
    # Business users mostly hire and sell services.
    b_bias = np.array([3.0, 0.5, 0.5, 2.0, 0.5, 0.3])
    affinity[user_type == 0] *= b_bias
    affinity /= affinity.sum(axis=1, keepdims=True)
    cat_centroid = rng.normal(0, 1, (n_cat, LATENT_DIM))
    user_latent = rng.normal(0, 1, (n_users, LATENT_DIM))
    item_city = rng.choice(N_CITIES, n_items, p=city_w)
    item_city[: N_CITIES * n_cat] = np.repeat(np.arange(N_CITIES), n_cat)  # every (city, category) exists
    item_category = rng.choice(n_cat, n_items, p=[0.25, 0.2, 0.15, 0.15, 0.15, 0.1])
    item_category[: N_CITIES * n_cat] = np.tile(np.arange(n_cat), N_CITIES)
    base_price = np.array([8_000.0, 3_000.0, 90_000.0, 300.0, 800.0, 1_500.0])
    item_price = np.round(base_price[item_category] * rng.lognormal(0, 0.5, n_items), 2)
    item_created = start_ms - rng.integers(1, 60, n_items) * 86_400_000
    item_latent = cat_centroid[item_category] + rng.normal(0, 0.7, (n_items, LATENT_DIM))
    popularity = 1.0 / rng.permutation(np.arange(1, n_items + 1)) ** 1.05
    return World(
        user_city,
        user_type,
        user_device,
        user_activity,
        affinity,
        user_latent,
        item_city,
        item_category,
        item_price,
        item_created,
        item_latent,
        popularity / popularity.sum(),
    )


def click_logit(
    world: World,
    users: np.ndarray,
    items: np.ndarray,
    position: np.ndarray | float,
    hour: int | None = None,
    mobile: bool | None = None,
) -> np.ndarray:
    """True click logit of users[k] shown items[k] at position[k] (broadcasts).

    With the request's context: each business line draws clicks at its own time of day (``CATEGORY_PEAK_HOUR``,
    a cosine of amplitude ``HOUR_EFFECT``), and on a phone attention falls faster down the list. Both
    are interactions (hour x category, device x position) that no single feature carries. Without a
    context (the oracle's top items) they are left out: the hour term averages to zero over the day and
    the device term shifts every item of a user alike.
    """
    aff = world.user_affinity[users, world.item_category[items]]
    latent = np.sum(world.user_latent[users] * world.item_latent[items], axis=-1) / np.sqrt(LATENT_DIM)
    same_city = world.user_city[users] == world.item_city[items]
    logit = -3.4 + 1.1 * np.log(aff * len(contracts.CATEGORIES) + 1e-3) + 1.3 * same_city + 0.5 * latent - 0.07 * position
    if hour is not None:
        peak = np.asarray(CATEGORY_PEAK_HOUR)[world.item_category[items]]
        logit = logit + HOUR_EFFECT * np.cos(2 * np.pi * (hour - peak) / 24)
    if mobile:
        logit = logit - MOBILE_POSITION_DECAY * np.asarray(position)
    return logit


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


class _Sampler:
    """Inverse-CDF samplers of the site's exposure policy."""

    def __init__(self, world: World) -> None:
        self.world = world
        pop = world.item_popularity
        self.global_cdf = _cdf(pop)
        self.city = {}
        self.city_cat = {}
        for c in range(N_CITIES):
            idx = np.flatnonzero(world.item_city == c)
            self.city[c] = (idx, _cdf(pop[idx]))
            for k in range(len(contracts.CATEGORIES)):
                sub = idx[world.item_category[idx] == k]
                self.city_cat[c, k] = (sub, _cdf(pop[sub]))
        self.cat = {}
        for k in range(len(contracts.CATEGORIES)):
            idx = np.flatnonzero(world.item_category == k)
            self.cat[k] = (idx, _cdf(pop[idx]))

    @staticmethod
    def _draw(rng: np.random.Generator, pool: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
        idx, cdf = pool
        return idx[np.searchsorted(cdf, rng.random(n), side="right").clip(max=len(idx) - 1)]

    def request(self, rng: np.random.Generator, city: int, category: int | None) -> np.ndarray:
        n = EXPOSURES_PER_REQUEST
        if category is None:  # home feed: 75% the user's city, 25% everywhere
            local = rng.random(n) < 0.75
            items = np.where(
                local, self._draw(rng, self.city[city], n), self._draw(rng, (np.arange(len(self.global_cdf)), self.global_cdf), n)
            )
        else:  # list page of one category: 90% the user's city
            local = rng.random(n) < 0.9
            items = np.where(local, self._draw(rng, self.city_cat[city, category], n), self._draw(rng, self.cat[category], n))
        _, first = np.unique(items, return_index=True)
        return items[np.sort(first)]

    def exposure_rate(self, users: np.ndarray) -> np.ndarray:
        """Expected share of a user's exposure slots that show each item (users x items)."""
        w = self.world
        pop = w.item_popularity
        n_items = w.n_items
        city_mass = np.bincount(w.item_city, weights=pop, minlength=N_CITIES)
        n_cat = len(contracts.CATEGORIES)
        cc_mass = np.zeros((N_CITIES, n_cat))
        np.add.at(cc_mass, (w.item_city, w.item_category), pop)
        cat_mass = np.bincount(w.item_category, weights=pop, minlength=n_cat)
        same_city = w.user_city[users][:, None] == w.item_city[None, :]
        home = 0.75 * same_city * pop / city_mass[w.user_city[users]][:, None] + 0.25 * pop[None, :]
        aff_item = w.user_affinity[users][:, w.item_category]  # users x items
        local_list = same_city * pop / cc_mass[w.user_city[users][:, None], w.item_category[None, :]]
        listing = aff_item * (0.9 * local_list + 0.1 * pop / cat_mass[w.item_category][None, :])
        assert home.shape == (len(users), n_items)
        return 0.4 * home + 0.6 * listing


def _image(rng: np.random.Generator, category: int) -> str:
    """A tiny RGB image whose base colour and stripe direction depend on the category."""
    palette = np.array([[200, 60, 60], [60, 160, 60], [60, 60, 200], [200, 160, 40], [140, 60, 180], [40, 170, 170]])
    img = np.tile(palette[category], (IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.float64)
    grid = np.arange(IMAGE_SIZE)
    stripes = (grid[:, None] + category * grid[None, :]) % 4 < 2
    img[stripes] *= 0.55
    img += rng.normal(0, 18, img.shape)
    return base64.b64encode(np.clip(img, 0, 255).astype(np.uint8).tobytes()).decode("ascii")


def simulate_day(
    world: World, sampler: _Sampler, ds: str, day_index: int, seed: int
) -> tuple[list[dict], list[dict], list[dict]]:
    """One day of events plus its oracle rows: (events, oracle exposures, oracle top-k)."""
    rng = np.random.default_rng([seed, 1, day_index])
    day_start, _ = lake.day_bounds_ms(ds)
    compact = ds.replace("-", "")
    events: list[dict] = []
    oracle: list[dict] = []
    active = np.flatnonzero(rng.random(world.n_users) < world.user_activity * 0.8)
    n_cat = len(contracts.CATEGORIES)
    req_no = 0
    for user in active:
        city = int(world.user_city[user])
        device = contracts.DEVICES[world.user_device[user]]
        n_sessions = 1 + rng.binomial(2, 0.3)
        starts = np.sort(rng.uniform(0, 19.5 * 3600, n_sessions)) + np.arange(n_sessions) * 45 * 60
        for start in starts:
            ts = day_start + int(start * 1000)
            intent = int(rng.choice(n_cat, p=world.user_affinity[user]))
            for _ in range(2 + rng.poisson(3)):
                page_list = rng.random() < 0.6
                items = sampler.request(rng, city, intent if page_list else None)
                page = "list" if page_list else "home"
                req_no += 1
                request_id = f"r{compact}-{req_no:07d}"
                positions = np.arange(len(items))
                hour = (ts - day_start) // 3_600_000 % 24
                p = _sigmoid(click_logit(world, np.full(len(items), user), items, positions, hour, device != "pc"))
                clicked = rng.random(len(items)) < p
                for pos, item, p_click, hit in zip(positions, items, p, clicked, strict=True):
                    base = _event(world, user, int(item), city, device, page, int(pos), request_id)
                    eid = f"e{compact}-{len(events):08d}"
                    events.append({"event_id": eid, "ts": ts + int(pos) * 50, "event": "expose", **base})
                    oracle.append({"event_id": eid, "p_click": round(float(p_click), 6)})
                    if not hit:
                        continue
                    t_click = ts + int(rng.integers(2_000, 30_000))
                    events.append({"event_id": f"e{compact}-{len(events):08d}", "ts": t_click, "event": "click", **base})
                    follow = FOLLOW_UPS[contracts.CATEGORIES[world.item_category[item]]]
                    for name, prob in zip(("collect", "apply", "call", "im"), follow, strict=True):
                        if rng.random() < prob:
                            t = t_click + int(rng.integers(5_000, 60_000))
                            events.append({"event_id": f"e{compact}-{len(events):08d}", "ts": t, "event": name, **base})
                ts += int(rng.integers(20_000, 90_000))
    events.sort(key=lambda e: (e["ts"], e["event_id"]))
    topk = _oracle_topk(world, sampler, active)
    return [{k: e[k] for k in contracts.RAW_EVENTS.columns} for e in events], oracle, topk


def _event(world: World, user: int, item: int, city: int, device: str, page: str, position: int, request_id: str) -> dict:
    # city_id is the request's city (where the user browses), as the raw contract defines it.
    return {
        "user_id": int(user),
        "item_id": item,
        "city_id": city,
        "category_id": int(world.item_category[item]),
        "page": page,
        "position": position,
        "device": device,
        "request_id": request_id,
    }


def _oracle_topk(world: World, sampler: _Sampler, users: np.ndarray) -> list[dict]:
    rows = []
    items = np.arange(world.n_items)
    for chunk in np.array_split(users, max(1, len(users) // 512)):
        if len(chunk) == 0:
            continue
        p = _sigmoid(click_logit(world, chunk[:, None], items[None, :], 4.5))
        score = sampler.exposure_rate(chunk) * p
        k = min(ORACLE_TOPK, world.n_items)
        top = np.argsort(-score, axis=1, kind="stable")[:, :k]
        rows.extend({"user_id": int(u), "items": [int(i) for i in t]} for u, t in zip(chunk, top, strict=True))
    return rows


def _write_partition(root: Path, dataset: str, ds: str, name: str, rows: Iterable[dict]) -> None:
    """Write one JSON-lines partition into a temporary directory, then swap it into place whole."""
    final = root / dataset / f"ds={ds}"
    tmp = root / dataset / f".ds={ds}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with open(tmp / name, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")))
            fh.write("\n")
    (tmp / lake.SUCCESS).touch()
    # Swap: the old partition is moved aside before the new one takes its name, and deleted last.
    old = root / dataset / f".ds={ds}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def generate(lake_root: str, *, days: int, users: int, items: int, seed: int, start: str) -> list[str]:
    """Write ``days`` days of raw events, user and item snapshots and oracle files; return the days."""
    if days < 1:
        raise ValueError(f"days must be at least 1, received {days}")
    root = Path(lake.local_path(lake_root))
    day_list = lake.day_range(start, lake.shift_ds(start, days - 1))
    start_ms, _ = lake.day_bounds_ms(start)
    world = build_world(users, items, seed, start_ms)
    sampler = _Sampler(world)
    img_rng = np.random.default_rng([seed, 2])
    item_rows = [
        {
            "item_id": i,
            "city_id": int(world.item_city[i]),
            "category_id": int(world.item_category[i]),
            "price": float(world.item_price[i]),
            "created_ts": int(world.item_created[i]),
            "image": _image(img_rng, int(world.item_category[i])),
        }
        for i in range(world.n_items)
    ]
    user_rows = [
        {
            "user_id": u,
            "city_id": int(world.user_city[u]),
            "user_type": contracts.USER_TYPES[world.user_type[u]],
            "device": contracts.DEVICES[world.user_device[u]],
            "registered_ts": start_ms - 86_400_000 * (1 + u % 365),
        }
        for u in range(world.n_users)
    ]
    for index, ds in enumerate(day_list):
        events, oracle, topk = simulate_day(world, sampler, ds, index, seed)
        _write_partition(root, contracts.RAW_USERS.name, ds, "users.jsonl", user_rows)
        _write_partition(root, contracts.RAW_ITEMS.name, ds, "items.jsonl", item_rows)
        _write_partition(root, contracts.ORACLE_EXPOSURES.name, ds, "part-00000.jsonl", oracle)
        _write_partition(root, contracts.ORACLE_TOPK.name, ds, "part-00000.jsonl", topk)
        # Events last: their _SUCCESS is what the nightly DAG waits for.
        _write_partition(root, contracts.RAW_EVENTS.name, ds, "part-00000.jsonl", events)
    return day_list
