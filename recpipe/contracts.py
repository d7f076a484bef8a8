"""Dataset contracts: one frozen object per dataset, shared by Spark jobs, GX suites and training input.

A contract lists the columns with their logical types, the keys, and the partition column. Spark jobs
end with ``select(*CONTRACT.columns)``; ``validation.data_checks`` builds its suites from the same
object; ``training`` reads the declared feature specs.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

# Logical type -> (Spark DDL type, pyarrow type name).
_TYPES: dict[str, tuple[str, str]] = {
    "string": ("string", "string"),
    "int32": ("int", "int32"),
    "int64": ("bigint", "int64"),
    "float32": ("float", "float32"),
    "float64": ("double", "float64"),
    "bool": ("boolean", "bool"),
    "array<int64>": ("array<bigint>", "list<int64>"),
    "array<float32>": ("array<float>", "list<float32>"),
    "array<string>": ("array<string>", "list<string>"),
}

EVENT_TYPES = ("expose", "click", "collect", "apply", "call", "im")
USER_TYPES = ("B", "C")
DEVICES = ("android", "ios", "pc", "h5")
PAGES = ("home", "list", "search", "detail")
CATEGORIES = ("jobs", "housing", "cars", "services", "secondhand", "pets")
SPLITS = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class Column:
    """One column: name, logical type, nullability."""

    name: str
    type: str
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"column {self.name!r}: unknown type {self.type!r}; expected one of {sorted(_TYPES)}")

    @property
    def spark_type(self) -> str:
        return _TYPES[self.type][0]


@dataclasses.dataclass(frozen=True)
class Contract:
    """A dataset: name, columns, primary key, partition column."""

    name: str
    schema: tuple[Column, ...]
    keys: tuple[str, ...] = ()
    partition: str = "ds"

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.schema]

    def column(self, name: str) -> Column:
        for col in self.schema:
            if col.name == name:
                return col
        raise KeyError(f"{self.name}: no column {name!r}; columns are {self.columns}")

    def spark_ddl(self) -> str:
        """Spark DDL schema string, e.g. ``"event_id string, ts bigint"``."""
        return ", ".join(f"`{c.name}` {c.spark_type}" for c in self.schema)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One model input: name, kind, vocabulary size (categorical), embedding size, source."""

    name: str
    kind: Literal["categorical", "numeric"]
    source: Literal["user", "item", "context", "cross"]
    vocab_size: int = 0
    embedding_dim: int = 0

    def __post_init__(self) -> None:
        if self.kind == "categorical" and self.vocab_size <= 0:
            raise ValueError(f"feature {self.name!r}: categorical features need vocab_size > 0")


def _cols(*specs: str) -> tuple[Column, ...]:
    out = []
    for spec in specs:
        name, _, typ = spec.partition(":")
        nullable = typ.endswith("?")
        out.append(Column(name, typ.rstrip("?"), nullable))
    return tuple(out)


# One logged event. ``city_id`` is the city the request was made in (the city the user browses, which
# may differ from the item's); ``category_id`` is the item's category at logging time. Features about
# the item's own city and category come from the item snapshot.
RAW_EVENTS = Contract(
    "raw/events",
    _cols(
        "event_id:string",
        "ts:int64",
        "user_id:int64",
        "item_id:int64",
        "event:string",
        "city_id:int32",
        "category_id:int32",
        "page:string",
        "position:int32",
        "device:string",
        "request_id:string",
    ),
    keys=("event_id",),
)
RAW_USERS = Contract(
    "raw/users",
    _cols("user_id:int64", "city_id:int32", "user_type:string", "device:string", "registered_ts:int64"),
    keys=("user_id",),
)
RAW_ITEMS = Contract(
    "raw/items",
    _cols(
        "item_id:int64",
        "city_id:int32",
        "category_id:int32",
        "price:float64",
        "created_ts:int64",
        "image:string",
    ),
    keys=("item_id",),
)
STAGED_EVENTS = Contract(
    "staged/events",
    _cols(*[f"{c.name}:{c.type}" for c in RAW_EVENTS.schema], "hour:int32"),
    keys=("event_id",),
)
QUARANTINE_EVENTS = Contract("quarantine/events", _cols("value:string", "reason:string", "detail:string?"))
SESSIONS = Contract(
    "sessions",
    _cols(
        "session_id:string",
        "user_id:int64",
        "start_ts:int64",
        "end_ts:int64",
        "n_events:int64",
        "click_items:array<int64>",
        "click_ts:array<int64>",
    ),
    keys=("session_id",),
)
# Daily aggregates of one day's staged events: ranking features sum them over windows, so a nightly run
# reads 30 small daily partitions instead of rescanning 30 days of logs.
USER_DAILY = Contract(
    "features/user_daily",
    _cols("user_id:int64", *[f"n_{e}:int64" for e in EVENT_TYPES]),
    keys=("user_id",),
)
ITEM_DAILY = Contract("features/item_daily", _cols("item_id:int64", "n_expose:int64", "n_click:int64"), keys=("item_id",))
USER_CROSS_DAILY = Contract(
    "features/user_cross_daily",
    _cols("user_id:int64", "category_id:int32", "city_id:int32", "clicks:int64"),
    keys=("user_id", "category_id", "city_id"),
)
# Negative kinds: "global" by popularity^0.75, "city" uniform in the target's city, "hard" uniform in the
# target's city among items of another category. ``prob`` is the probability the kind's sampler draws
# that item (positives carry the global sampler's probability of their context, null for a context
# missing from the item snapshot), for logQ correction.
NEGATIVE_KINDS = ("global", "city", "hard")
ITEM2VEC_PAIRS = Contract(
    "training/item2vec_pairs",
    _cols("target:int64", "context:int64", "label:float32", "kind:string", "prob:float32?"),
)
ITEM2VEC_CBOW = Contract(
    "training/item2vec_cbow",
    _cols("session_id:string", "target:int64", "context:array<int64>"),
)
ITEM_POPULARITY = Contract(
    "training/item_popularity", _cols("item_id:int64", "clicks:int64", "neg_prob:float64"), keys=("item_id",)
)
# Positive actions of retrieval samples; each has a weight from the configured cost matrix.
POSITIVE_ACTIONS = ("click", "collect", "apply", "call", "im")
RETRIEVAL_SAMPLES = Contract(
    "training/retrieval_samples",
    _cols(
        "split:string",
        "event_id:string",
        "ts:int64",
        "user_id:int64",
        "item_id:int64",
        "event:string",
        "weight:float32",
        "history:array<int64>",
        "user_city:int32",
        "user_type:int32",
        "device:int32",
        "hour:int32",
        "weekday:int32",
        "city_id:int32",
        "item_city:int32",
        "category_id:int32",
        "hard_negatives:array<int64>",
        "hard_negative_prob:float32",
    ),
    keys=("event_id",),
)
RECALL_EVAL = Contract(
    "training/recall_eval",
    _cols(
        "user_id:int64",
        "history:array<int64>",
        "targets:array<int64>",
        "action_items:array<int64>",
        "action_events:array<string>",
        "user_city:int32",
        "user_type:int32",
        "device:int32",
        "hour:int32",
        "weekday:int32",
        "city_id:int32",
    ),
    keys=("user_id",),
)
# Behaviour windows of the ranking features, in days before the example's day. Part of the contract (not
# the config): changing them changes the schema of the ranking samples and the inputs of every model.
FEATURE_WINDOWS = (1, 3, 5, 7, 15, 30)


def window_features() -> list[str]:
    """Names of the windowed numeric ranking features, grouped by kind then window."""
    user = [f"user_{e}_{w}d" for e in EVENT_TYPES for w in FEATURE_WINDOWS]
    item = [f"item_ctr_{w}d" for w in FEATURE_WINDOWS]
    cross = [f"user_{k}_clicks_{w}d" for k in ("cat", "city") for w in FEATURE_WINDOWS]
    return user + item + cross


RANKING_SAMPLES = Contract(
    "training/ranking_samples",
    _cols(
        "split:string",
        "event_id:string",
        "ts:int64",
        "user_id:int64",
        "item_id:int64",
        "label:float32",
        "user_city:int32",
        "user_type:int32",
        "device:int32",
        "item_city:int32",
        "category_id:int32",
        "price_bucket:int32",
        "position:int32",
        "hour:int32",
        "city_match:int32",
        *[f"{name}:float32" for name in window_features()],
    ),
    keys=("event_id",),
)
ORACLE_EXPOSURES = Contract("oracle/exposures", _cols("event_id:string", "p_click:float64"), keys=("event_id",))
ORACLE_TOPK = Contract("oracle/topk", _cols("user_id:int64", "items:array<int64>"), keys=("user_id",))

PRICE_BUCKETS = 10
MAX_POSITION = 20
N_CITIES_MAX = 64


def _window_source(name: str) -> Literal["user", "item", "cross"]:
    if name.startswith(("user_cat_", "user_city_")):
        return "cross"
    return "user" if name.startswith("user_") else "item"


def ranking_features(n_items: int, n_cities: int = N_CITIES_MAX, n_categories: int = len(CATEGORIES)) -> tuple[FeatureSpec, ...]:
    """Feature specs of the ranking samples; the vocabulary sizes come from the day's snapshots."""
    return (
        FeatureSpec("item_id", "categorical", "item", vocab_size=n_items),
        FeatureSpec("user_city", "categorical", "user", vocab_size=n_cities),
        FeatureSpec("user_type", "categorical", "user", vocab_size=len(USER_TYPES)),
        FeatureSpec("device", "categorical", "user", vocab_size=len(DEVICES)),
        FeatureSpec("item_city", "categorical", "item", vocab_size=n_cities),
        FeatureSpec("category_id", "categorical", "item", vocab_size=n_categories),
        FeatureSpec("price_bucket", "categorical", "item", vocab_size=PRICE_BUCKETS),
        FeatureSpec("position", "categorical", "context", vocab_size=MAX_POSITION),
        FeatureSpec("hour", "categorical", "context", vocab_size=24),
        FeatureSpec("city_match", "categorical", "cross", vocab_size=2),
        *[FeatureSpec(name, "numeric", _window_source(name)) for name in window_features()],
    )


# Crossed features of the wide part: pairs of categorical feature names. Each is an interaction the
# business knows of: local posts, business users' lines, devices' lines, each line's time of day
# (jobs in the morning, housing after work), and how fast attention falls down the list on each device.
WIDE_CROSSES: tuple[tuple[str, str], ...] = (
    ("user_city", "item_city"),
    ("user_type", "category_id"),
    ("device", "category_id"),
    ("hour", "category_id"),
    ("device", "position"),
)


# --- The dataset registry --------------------------------------------------------------------------------
# Which job writes each dataset, which check reads it, whether it is published and whether it is history.
# The nightly DAG's Spark chain, its assets, the GX suites, the run card's data checks and ``recpipe etl``
# are derived from these two lists: adding a dataset is its contract, one ``Dataset`` entry, the job that
# writes it (a ``Job`` entry naming what it reads) and, if it is checked, its suite in validation.data_checks.
CheckStage = Literal["events", "features"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Dataset:
    """A lake dataset's place in the nightly run.

    Attributes:
        contract: its contract.
        job: the ``spark_jobs`` module that writes it each night, or None (raw logs and snapshots arrive from the
            site's loggers; oracle files from the generator).
        suite: the Great Expectations suite that checks it (``validation.data_checks.SUITES``), or None.
        check: when the suite runs: ``events`` right after its job, before any job reads it (``validate_events``);
            ``features`` with the other training sets, before any model trains (``validate_features``).
        asset: published as an Airflow asset (``x-recpipe://lake/<name>``) when its job succeeds.
        history: needed for past days too (the windows of later jobs read it): ``recpipe etl`` writes it.
    """

    contract: Contract
    job: str | None = None
    suite: str | None = None
    check: CheckStage | None = None
    asset: bool = False
    history: bool = False

    def __post_init__(self) -> None:
        if (self.suite is None) != (self.check is None):
            raise ValueError(f"{self.contract.name}: a suite needs its check stage and a check stage its suite")
        if (self.asset or self.history) and self.job is None:
            raise ValueError(f"{self.contract.name}: only a dataset some job writes can be published or history")

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def check_artifact(self) -> str | None:
        """Where the night's ``data`` MLflow run keeps this dataset's check summary (``data/<suite>_check.json``)."""
        return None if self.suite is None else f"data/{self.suite}_check.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job:
    """A Spark job of the nightly run (``spark_jobs/<name>.py``) and the datasets it reads (by name)."""

    name: str
    reads: tuple[str, ...]


DATASETS: tuple[Dataset, ...] = (
    Dataset(contract=RAW_EVENTS),
    Dataset(contract=RAW_USERS),
    Dataset(contract=RAW_ITEMS),
    Dataset(contract=STAGED_EVENTS, job="stage_events", suite="staged_events", check="events", history=True),
    Dataset(contract=QUARANTINE_EVENTS, job="stage_events", history=True),
    Dataset(contract=SESSIONS, job="sessions", history=True),
    Dataset(contract=USER_DAILY, job="daily_aggregates", history=True),
    Dataset(contract=ITEM_DAILY, job="daily_aggregates", history=True),
    Dataset(contract=USER_CROSS_DAILY, job="daily_aggregates", history=True),
    Dataset(contract=RANKING_SAMPLES, job="ranking_samples", suite="ranking_samples", check="features", asset=True),
    Dataset(contract=ITEM2VEC_PAIRS, job="item2vec_samples", suite="item2vec_pairs", check="features", asset=True),
    Dataset(contract=ITEM2VEC_CBOW, job="item2vec_samples", asset=True),
    Dataset(contract=ITEM_POPULARITY, job="item2vec_samples", asset=True),
    Dataset(contract=RETRIEVAL_SAMPLES, job="retrieval_samples", suite="retrieval_samples", check="features", asset=True),
    Dataset(contract=RECALL_EVAL, job="retrieval_samples", asset=True),
    Dataset(contract=ORACLE_EXPOSURES),
    Dataset(contract=ORACLE_TOPK),
)
JOBS: tuple[Job, ...] = (
    Job(name="stage_events", reads=(RAW_EVENTS.name,)),
    Job(name="sessions", reads=(STAGED_EVENTS.name,)),
    Job(name="daily_aggregates", reads=(STAGED_EVENTS.name, RAW_ITEMS.name)),
    Job(name="item2vec_samples", reads=(SESSIONS.name,)),
    Job(name="retrieval_samples", reads=(STAGED_EVENTS.name, SESSIONS.name, RAW_USERS.name, RAW_ITEMS.name)),
    Job(
        name="ranking_samples",
        reads=(STAGED_EVENTS.name, USER_DAILY.name, ITEM_DAILY.name, USER_CROSS_DAILY.name, RAW_USERS.name, RAW_ITEMS.name),
    ),
)


def dataset(name: str) -> Dataset:
    """The registry entry of dataset ``name`` (e.g. ``training/ranking_samples``)."""
    for entry in DATASETS:
        if entry.name == name:
            return entry
    raise KeyError(f"no dataset {name!r} in the registry; datasets are {[d.name for d in DATASETS]}")


def written_by(job: str) -> tuple[Dataset, ...]:
    """The datasets job ``job`` writes, in registry order."""
    return tuple(d for d in DATASETS if d.job == job)


def checked(stage: CheckStage) -> tuple[Dataset, ...]:
    """The datasets whose suite runs at ``stage`` (``events`` or ``features``), in registry order."""
    return tuple(d for d in DATASETS if d.check == stage)


def _check_registry() -> None:
    """Fail at import on a registry that contradicts itself: unknown names, a job without an entry, a cycle."""
    names = {d.name for d in DATASETS}
    jobs = {j.name for j in JOBS}
    for job in JOBS:
        unknown = sorted(set(job.reads) - names)
        if unknown:
            raise ValueError(f"job {job.name} reads datasets that are not in the registry: {unknown}")
    writers = {d.job for d in DATASETS if d.job is not None}
    if writers != jobs:
        raise ValueError(
            f"datasets name jobs {sorted(writers - jobs)} without a Job entry; jobs {sorted(jobs - writers)} write nothing"
        )
    order = [j.name for j in JOBS]
    for job in JOBS:  # listed in a runnable order: every job after the jobs it reads from
        late = [d.job for d in map(dataset, job.reads) if d.job is not None and order.index(d.job) >= order.index(job.name)]
        if late:
            raise ValueError(f"job {job.name} is listed before (or is) the job(s) it reads from: {late}")
    suites = [d.suite for d in DATASETS if d.suite]
    if len(suites) != len(set(suites)):
        raise ValueError(f"suite names must be unique; received {suites}")


_check_registry()
