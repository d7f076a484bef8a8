"""Typed configuration: frozen keyword-only dataclasses loaded from one YAML file per environment.

Unknown keys are an error, so a misspelt setting fails loudly instead of being ignored.
String values may reference environment variables as ``${NAME}``; ``RECPIPE_HOME`` defaults to the
repository root so the embedded defaults work from a fresh clone.

Secrets never live in a config file: a password written into a URI (``postgresql://mlflow:<password>@db/mlflow``) or a
secret query parameter (``?password=``, ``?token=``, ...) in the file's text is an error naming the key.
Take the whole URI from the environment (``mlflow_tracking_uri: ${MLFLOW_TRACKING_URI}``) or just the secret
(``postgresql://mlflow:${MLFLOW_DB_PASSWORD}@db/mlflow``); MLflow itself also reads
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``/``MLFLOW_TRACKING_TOKEN``. Expanded values may carry
credentials; ``Config.flat()`` and ``repr(config)`` mask them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE_DIR / "conf" / "local.yaml"
CONFIG_ENV = "RECPIPE_CONFIG"
HOME_ENV = "RECPIPE_HOME"


class ConfigError(ValueError):
    """The configuration file or a value in it is invalid."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ActionWeights:
    """Cost matrix of retrieval positives: how much one action of each type counts in the loss."""

    click: float = 1.0
    collect: float = 2.0
    call: float = 3.0
    im: float = 3.0
    apply: float = 4.0

    def __post_init__(self) -> None:
        bad = {k: v for k, v in dataclasses.asdict(self).items() if not v > 0}
        if bad:
            raise ValueError(f"action weights must be positive, received {bad}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EtlConfig:
    """Spark ETL settings."""

    # Training examples come from the days [D - lookback_days, D - 1]; D is the eval day.
    lookback_days: int = 3
    # Users and items snapshots: the latest one at or before D, at most this old (imported datasets with
    # one static snapshot need a large value).
    max_snapshot_age_days: int = 2
    # Raw events up to this long before the day's start or after its end still belong to the day.
    lateness_minutes: int = 60
    # A user with more events than this in one minute is a crawler: removed and counted.
    max_events_per_minute: int = 120
    # Share of raw rows allowed to be invalid (quarantined with a reason); above it the night fails.
    max_invalid_fraction: float = 0.01
    session_gap_minutes: int = 30
    max_session_minutes: int = 1440
    # Context window (positions on each side) of skip-gram pairs and of CBOW contexts.
    skipgram_window: int = 2
    cbow_window: int = 2
    # Negatives per positive pair, by kind (see contracts.NEGATIVE_KINDS).
    negatives_city: int = 2
    negatives_global: int = 2
    negatives_hard: int = 1
    # Retrieval samples: hard negatives per positive, history length cap, days of history before the
    # first example day that still count, and the cost matrix of the positive actions.
    retrieval_hard_negatives: int = 4
    history_max_len: int = 50
    history_days: int = 7
    action_weights: ActionWeights = dataclasses.field(default_factory=ActionWeights)
    ctr_smoothing_clicks: float = 1.0
    ctr_smoothing_exposures: float = 20.0
    seed: int = 7


ITEM2VEC_MODES = ("skipgram", "cbow")
USER_VECTORS = ("mean", "recency")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Item2VecConfig:
    """Item2Vec settings: training mode, user vectors and business-line recall."""

    # "skipgram": (target, context) pairs with the Spark-made negatives; "cbow": the mean of a click's
    # context items predicts it, against ``cbow_negatives`` items drawn by popularity^0.75 per batch.
    mode: str = "skipgram"
    cbow_negatives: int = 16
    embedding_dim: int = 32
    epochs: int = 2
    batch_size: int = 1024
    learning_rate: float = 0.01
    top_k: int = 50
    # A user's vector: the "mean" of their history's item vectors, or a "recency"-weighted mean in which
    # a click ``age`` clicks before the newest one weighs 0.5 ** (age / recency_half_life).
    user_vector: str = "mean"
    recency_half_life: float = 10.0
    # One vector per business line (item category) of the user's history, each searching its own line's
    # items; the lists are merged with a quota per line proportional to its share of the history.
    multi_line: bool = False
    seed: int = 11

    def __post_init__(self) -> None:
        if self.mode not in ITEM2VEC_MODES:
            raise ValueError(f"mode must be one of {', '.join(ITEM2VEC_MODES)}; received {self.mode!r}")
        if self.user_vector not in USER_VECTORS:
            raise ValueError(f"user_vector must be one of {', '.join(USER_VECTORS)}; received {self.user_vector!r}")
        if not self.recency_half_life > 0:
            raise ValueError(f"recency_half_life must be positive (in clicks), received {self.recency_half_life}")
        if self.cbow_negatives <= 0:
            raise ValueError(f"cbow_negatives must be positive, received {self.cbow_negatives}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class YouTubeDNNConfig:
    """YouTube DNN settings (sampled softmax over all items with logQ correction)."""

    embedding_dim: int = 32
    hidden_units: tuple[int, ...] = (128, 64)
    num_negatives: int = 200
    # Cosine / temperature between L2-normalised vectors; null: the paper's dot product plus an item bias.
    temperature: float | None = 0.1
    # Also the batch's other positives as negatives (mixed negative sampling, logQ by the mixture).
    in_batch_negatives: bool = True
    # Item vectors add the item's city and category embeddings; the user tower pools its history's categories.
    item_features: bool = True
    dropout: float = 0.0
    epochs: int = 3
    batch_size: int = 512
    learning_rate: float = 0.003
    seed: int = 17

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"youtube_dnn.temperature must be positive or null, received {self.temperature}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TwoTowerConfig:
    """Two-tower settings (in-batch softmax plus hard negatives, logQ-corrected, cost-weighted)."""

    embedding_dim: int = 32
    hidden_units: tuple[int, ...] = (128, 64)
    tower: str = "mlp"
    temperature: float = 0.05
    # Feed the Item2Vec champion's item vectors to the item tower (frozen), when a champion exists.
    pretrained_item2vec: bool = True
    dropout: float = 0.0
    epochs: int = 3
    batch_size: int = 512
    learning_rate: float = 0.003
    seed: int = 19

    def __post_init__(self) -> None:
        if self.tower not in ("mlp", "dcn", "pnn"):
            raise ValueError(f"tower must be one of mlp, dcn, pnn; received {self.tower!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, received {self.temperature}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecallEvalConfig:
    """How every recall model is evaluated: exact search over all items of the eval day's snapshot."""

    ks: tuple[int, ...] = (10, 50, 100)
    # Drop items of the user's history from their recommendations before cutting at K.
    exclude_seen: bool = False
    # K of the per-city and per-category slices.
    slice_k: int = 50
    # The item-kNN reference (``itemknn_recall_at_K``): cosine over the train window's co-occurrences, scored from
    # each user's last this-many history items; 0 turns it off.
    itemknn_history: int = 50

    def __post_init__(self) -> None:
        if self.itemknn_history < 0:
            raise ValueError(f"itemknn_history must be 0 (off) or positive, received {self.itemknn_history}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RankingConfig:
    """Settings every ranking (click) model shares: feature embeddings, the MLP, training, warm starts."""

    embedding_dim: int = 8
    hidden_units: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    epochs: int = 3
    batch_size: int = 512
    learning_rate: float = 0.002
    # Hashed out-of-vocabulary rows per categorical feature: ids newer than the model share them.
    oov_buckets: int = 8
    # L2 penalty of the embedding tables and wide weights (id features overfit without it). Scope "table": the
    # whole tables at every step, ``l2 / 2 * ||W||^2`` (FuxiCTR's embedding_regularizer); "batch": only the rows
    # each batch looks up (cheaper for tables of millions of rows).
    embedding_l2: float = 0.0
    embedding_l2_scope: str = "table"
    # Tables start normal with this deviation (FuxiCTR's 1e-4); 0 keeps Keras's uniform +-0.05.
    embedding_init_stddev: float = 1e-4
    # Batch normalisation in each MLP layer, before its ReLU (FuxiCTR's MLP block).
    batch_norm: bool = False
    # Early stopping: the newest ``validation_fraction`` of the train rows (by time) are held out; after each
    # epoch their AUC is measured, the learning rate is divided by 10 when it did not improve, training stops
    # after ``patience`` such epochs in a row (``epochs`` is the most), and the best epoch's weights are kept.
    # 0 turns it off: ``epochs`` epochs on every train row.
    validation_fraction: float = 0.05
    patience: int = 2
    # Warm-start from the champion's weights (its vocabularies kept; newer ids go to the OOV buckets) and
    # train on the newest ``incremental_days`` days of the train split only. Without a compatible champion
    # (none yet, or other features) the run trains from scratch and says why in its tags.
    incremental: bool = False
    incremental_days: int = 1
    # Fit the logistic-regression baseline on the same rows and log it beside every model as lr_*.
    lr_baseline: bool = True
    seed: int = 13

    def __post_init__(self) -> None:
        bad = {
            k: getattr(self, k)
            for k in ("embedding_dim", "epochs", "batch_size", "oov_buckets", "incremental_days", "patience")
            if getattr(self, k) <= 0
        }
        if bad or not self.hidden_units or min(self.hidden_units) <= 0:
            raise ValueError(f"sizes must be positive, received {bad or {'hidden_units': list(self.hidden_units)}}")
        if not 0.0 <= self.dropout < 1.0 or not self.learning_rate > 0:
            raise ValueError(
                f"dropout must be in [0, 1) and learning_rate positive, received {self.dropout}, {self.learning_rate}"
            )
        if self.embedding_l2 < 0 or self.embedding_init_stddev < 0 or self.embedding_l2_scope not in ("table", "batch"):
            raise ValueError(
                "embedding_l2 and embedding_init_stddev must be >= 0 and embedding_l2_scope table or batch, received "
                f"{self.embedding_l2}, {self.embedding_init_stddev}, {self.embedding_l2_scope!r}"
            )
        if not 0.0 <= self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in [0, 0.5), received {self.validation_fraction}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class WideDeepConfig:
    """Wide&Deep (and the wide part of XGBoost+Wide&Deep and Wide&ResNet): size of each crossed feature's id space."""

    cross_bins: int = 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class FNNConfig:
    """FNN: epochs of the factorization machine whose vectors initialise the network."""

    fm_epochs: int = 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class XGBWideDeepConfig:
    """XGBoost+Wide&Deep: the GBDT whose leaves feed the wide part."""

    n_trees: int = 30
    max_depth: int = 4
    learning_rate: float = 0.3
    # Also embed each tree's leaf in the deep part.
    leaves_to_deep: bool = False

    def __post_init__(self) -> None:
        if self.n_trees <= 0 or self.max_depth <= 0 or not self.learning_rate > 0:
            raise ValueError(
                "n_trees, max_depth and learning_rate must be positive, "
                f"received {self.n_trees}, {self.max_depth}, {self.learning_rate}"
            )


CNN_BACKBONES = ("small", "mobilenet_v3_small", "efficientnet_b0")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CNNDNNConfig:
    """CNN+DNN: the frozen image encoder of the items' pictures."""

    # "small": a small CNN pre-trained on the day's item images to predict their category, then frozen.
    # Or a Keras Applications backbone read from ``backbone_weights``, a local file (nothing is downloaded).
    backbone: str = "small"
    backbone_weights: str = ""
    image_embedding_dim: int = 16
    pretrain_epochs: int = 5

    def __post_init__(self) -> None:
        if self.backbone not in CNN_BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(CNN_BACKBONES)}; received {self.backbone!r}")
        if self.backbone != "small" and not self.backbone_weights:
            raise ValueError(f"backbone {self.backbone!r} needs backbone_weights: the path of a local weights file")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PNNConfig:
    """PNN: which product layer."""

    product: str = "inner"

    def __post_init__(self) -> None:
        if self.product not in ("inner", "outer"):
            raise ValueError(f"product must be inner or outer; received {self.product!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class WideResNetConfig:
    """Wide&ResNet: the residual deep part."""

    width: int = 64
    blocks: int = 2
    batch_norm: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """FAISS index settings: what to build, how far to tune it, and what it must reach to be registered."""

    # Any FAISS index_factory string over inner product: "Flat", "IVF1024,Flat", "IVF1024,PQ16", "HNSW32".
    factory: str = "IVF16,Flat"
    # Tuning picks the cheapest search setting (nprobe, efSearch) whose recall@k against exact search
    # reaches this; an index that cannot reach it even at the most expensive setting is not registered.
    target_recall: float = 0.95
    # At most this many vectors train the index (a seeded sample); all of them are added.
    train_sample: int = 200_000
    # Queries used to tune and validate (a seeded sample of the eval users' query vectors).
    tune_queries: int = 1000
    # "auto": build on GPU when faiss sees one, else CPU; "cpu": always CPU.
    device: str = "auto"
    # One extra index per item category, for multi-category recall.
    per_category: bool = True
    seed: int = 7

    def __post_init__(self) -> None:
        if not 0 < self.target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], received {self.target_recall}")
        if self.device not in ("auto", "cpu"):
            raise ValueError(f"device must be 'auto' or 'cpu', received {self.device!r}")
        if self.train_sample < 1 or self.tune_queries < 1:
            raise ValueError(f"train_sample and tune_queries must be positive, received {self.train_sample}, {self.tune_queries}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GateConfig:
    """Metric gate thresholds: absolute floors and maximum regressions against the champion.

    Slice thresholds apply to every slice of the headline metric (``auc__city_3``, ``recall_at_50__category_1``)
    with at least ``min_slice_rows`` eval rows (ranking: exposures; recall: users or targets). Slices are
    smaller and noisier, so their regression allowance is wider. A slice the champion never had is not
    compared.
    """

    min_auc: float = 0.55
    max_auc_regression: float = 0.01
    min_recall_at_k: float = 0.05
    max_recall_regression: float = 0.02
    min_index_recall_at_k: float = 0.9
    min_slice_auc: float = 0.5
    max_slice_auc_regression: float = 0.03
    min_slice_recall_at_k: float | None = None
    max_slice_recall_regression: float = 0.05
    min_slice_rows: int = 200
    # Index latency at batch 1, 99th percentile; None: not gated.
    max_index_latency_ms_p99: float | None = 50.0
    # A recall model's recall@K must reach this multiple of the item-kNN reference's on the same users
    # (``itemknn_recall_at_K``; 1.0: at least as good); None: not gated.
    min_lift_over_itemknn: float | None = None

    def __post_init__(self) -> None:
        if self.min_lift_over_itemknn is not None and not self.min_lift_over_itemknn > 0:
            raise ValueError(f"min_lift_over_itemknn must be positive or null, received {self.min_lift_over_itemknn}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ValidationConfig:
    """Data check settings."""

    min_event_rows: int = 100
    min_feature_rows: int = 100


PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ComputeConfig:
    """Accelerator switches of every training task; "auto" turns each on only where it helps."""

    # "auto": mixed_float16 when a GPU is visible, float32 otherwise (CPUs gain nothing from float16).
    # Or a Keras dtype policy name: "float32", "mixed_float16", "mixed_bfloat16".
    precision: str = "auto"
    # "auto": tf.distribute.MirroredStrategy over the visible GPUs when there are two or more; "off": never.
    distribute: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; received {self.precision!r}")
        if self.distribute not in ("auto", "off"):
            raise ValueError(f"distribute must be auto or off; received {self.distribute!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The whole resolved configuration of one environment."""

    lake_root: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    mlflow_experiment: str = "recpipe-nightly"
    registry_prefix: str = "recpipe"
    etl: EtlConfig = dataclasses.field(default_factory=EtlConfig)
    item2vec: Item2VecConfig = dataclasses.field(default_factory=Item2VecConfig)
    youtube_dnn: YouTubeDNNConfig = dataclasses.field(default_factory=YouTubeDNNConfig)
    two_tower: TwoTowerConfig = dataclasses.field(default_factory=TwoTowerConfig)
    recall_eval: RecallEvalConfig = dataclasses.field(default_factory=RecallEvalConfig)
    ranking: RankingConfig = dataclasses.field(default_factory=RankingConfig)
    wide_deep: WideDeepConfig = dataclasses.field(default_factory=WideDeepConfig)
    fnn: FNNConfig = dataclasses.field(default_factory=FNNConfig)
    xgb_wide_deep: XGBWideDeepConfig = dataclasses.field(default_factory=XGBWideDeepConfig)
    cnn_dnn: CNNDNNConfig = dataclasses.field(default_factory=CNNDNNConfig)
    pnn: PNNConfig = dataclasses.field(default_factory=PNNConfig)
    wide_resnet: WideResNetConfig = dataclasses.field(default_factory=WideResNetConfig)
    index: IndexConfig = dataclasses.field(default_factory=IndexConfig)
    gates: GateConfig = dataclasses.field(default_factory=GateConfig)
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)
    compute: ComputeConfig = dataclasses.field(default_factory=ComputeConfig)

    def flat(self) -> dict[str, Any]:
        """Flattened ``section.key -> value`` view with credentials in URIs masked (logged as run params)."""
        return {k: mask_credentials(v) for k, v in _flatten(dataclasses.asdict(self)).items()}

    def __repr__(self) -> str:
        # Replaces the dataclass repr, which would print the expanded URIs with their credentials.
        return f"Config({', '.join(f'{k}={v!r}' for k, v in self.flat().items())})"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
# Query parameters that carry secrets in database, object-store and tracking URIs.
_SECRET_PARAM = re.compile(
    r"(?i)(?<=[?&;])([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|signature)[\w.-]*)=([^&;\s#]*)"
)
# A password inside a URI's userinfo: ``scheme://user:<password>@host``.
_USERINFO_PASSWORD = re.compile(r"://[^/@\s:]*:([^/@\s]+)@")


def mask_credentials(value: Any, userinfo: str = "***@") -> Any:
    """Mask a URI's userinfo and secret query parameters (``?password=``, ``?token=``, ...): the one masker of
    everything logged, shown or recorded. ``userinfo`` replaces ``user:password@`` (``""`` drops it, for a link
    a reader follows). Values that are not strings come back unchanged."""
    if not isinstance(value, str):
        return value
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", _USERINFO.sub(userinfo, value))


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _refuse_literal_secret(value: str, where: str) -> None:
    """Refuse a password or secret parameter written into the config file itself (before ``${NAME}`` expansion)."""
    secrets = [m.group(1) for m in _USERINFO_PASSWORD.finditer(value)]
    secrets += [m.group(2) for m in _SECRET_PARAM.finditer(value)]
    if any(secret and not _VAR.fullmatch(secret) for secret in secrets):
        raise ConfigError(
            f"{where}: a credential is written in the config file ({mask_credentials(value)}); secrets come from the "
            "environment or Airflow connections: write ${NAME} for the whole URI or for the secret"
        )


def _expand(value: str, where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == HOME_ENV:
            return os.environ.get(HOME_ENV) or str(PACKAGE_DIR.parent)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable ${{{name}}} is not set")
        return os.environ[name]

    return _VAR.sub(sub, value)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, received {type(raw).__name__}: {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; expected some of {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):  # ``X | None``: null (YAML ``~``, ``null`` or empty), or an X
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(hint)):
            return None
        if len(args) != 1:
            raise ConfigError(f"{where}: unsupported setting type {hint}")
        try:
            return _coerce(args[0], value, where)
        except ConfigError:
            raise ConfigError(f"{where}: expected {getattr(args[0], '__name__', args[0])} or null, received {value!r}") from None
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, received {value!r}")
        return tuple(_coerce(item_type, v, f"{where}[]") for v in value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, received {value!r}")
        _refuse_literal_secret(value, where)
        return _expand(value, where)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, received {value!r}")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a config file (default: ``$RECPIPE_CONFIG``, else the embedded local one).

    Raises:
        ConfigError: the file is missing, is not YAML, or holds unknown keys or wrong types.
    """
    path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return _build(Config, raw, str(path))
