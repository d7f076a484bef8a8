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
    ),
    keys=("session_id",),
)
ITEM2VEC_PAIRS = Contract(
    "training/item2vec_pairs",
    _cols("target:int64", "context:int64", "label:float32", "kind:string"),
)
ITEM_POPULARITY = Contract("training/item_popularity", _cols("item_id:int64", "clicks:int64"), keys=("item_id",))
RECALL_EVAL = Contract(
    "training/recall_eval",
    _cols("user_id:int64", "history:array<int64>", "targets:array<int64>"),
    keys=("user_id",),
)
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
        "user_clicks_prior:float32",
        "user_exposures_prior:float32",
        "user_cat_clicks_prior:float32",
        "item_ctr_prior:float32",
    ),
    keys=("event_id",),
)
ORACLE_EXPOSURES = Contract("oracle/exposures", _cols("event_id:string", "p_click:float64"), keys=("event_id",))
ORACLE_TOPK = Contract("oracle/topk", _cols("user_id:int64", "items:array<int64>"), keys=("user_id",))

PRICE_BUCKETS = 10
MAX_POSITION = 20
N_CITIES_MAX = 64


def ranking_features(n_items: int) -> tuple[FeatureSpec, ...]:
    """Feature specs of the ranking samples; ``n_items`` sizes the item-id vocabulary."""
    return (
        FeatureSpec("item_id", "categorical", "item", vocab_size=n_items),
        FeatureSpec("user_city", "categorical", "user", vocab_size=N_CITIES_MAX),
        FeatureSpec("user_type", "categorical", "user", vocab_size=len(USER_TYPES)),
        FeatureSpec("device", "categorical", "user", vocab_size=len(DEVICES)),
        FeatureSpec("item_city", "categorical", "item", vocab_size=N_CITIES_MAX),
        FeatureSpec("category_id", "categorical", "item", vocab_size=len(CATEGORIES)),
        FeatureSpec("price_bucket", "categorical", "item", vocab_size=PRICE_BUCKETS),
        FeatureSpec("position", "categorical", "context", vocab_size=MAX_POSITION),
        FeatureSpec("hour", "categorical", "context", vocab_size=24),
        FeatureSpec("city_match", "categorical", "cross", vocab_size=2),
        FeatureSpec("user_clicks_prior", "numeric", "user"),
        FeatureSpec("user_exposures_prior", "numeric", "user"),
        FeatureSpec("user_cat_clicks_prior", "numeric", "cross"),
        FeatureSpec("item_ctr_prior", "numeric", "item"),
    )


# Crossed features of the wide part: pairs of categorical feature names.
WIDE_CROSSES: tuple[tuple[str, str], ...] = (
    ("user_city", "item_city"),
    ("user_type", "category_id"),
    ("device", "category_id"),
)
