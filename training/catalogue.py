"""The one list of models: each model's name, kind, classes, fit recipe, index and config section.

Everything that iterates over models reads this list: the nightly DAG (a train/evaluate/gate/promote chain
per entry, an index step where ``has_index``), the command line's choices, the registered model names,
evaluation dispatch, the serving export, the run card and the tests. Adding a model is one model file under
``training/models/``, one entry here and, if it has settings of its own, its config section
(``recpipe.config``) with its keys in the YAMLs. ``tests/training_tests/test_catalogue.py`` fails when a
model file has no entry.

Importing this module is cheap (stdlib only, no Keras): classes and recipes are named as
``"module:attribute"`` and imported when first used, so DAG parsing and the CLI stay light.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable
from typing import Any, Literal

Kind = Literal["recall", "ranking"]
# How a champion is scored on the challenger's eval set (``training.evaluate``): its logged item vectors
# searched with history queries; its user tower's query vectors against its item vectors; or click probabilities.
Scoring = Literal["item_vectors", "user_tower", "click"]
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TARGET = re.compile(r"[a-z_][a-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One model of the nightly run.

    Attributes:
        name: the model's key: task ids (``train_<name>``), the registered model (``<prefix>-<name>``), CLI choices.
        kind: ``recall`` (gated on recall@K, served through a FAISS index) or ``ranking`` (gated on AUC).
        model_classes: the Keras classes a trained model may be, as ``"module:Class"``; the first is the default.
        trainer: ``"module:function"`` that fits, evaluates and registers it (``training.train``).
        recipe: ranking models: ``"module:function"`` of the fit recipe (``training.ranking``): a plain fit, or a
            pre-trained part first (an FM for FNN, a GBDT for XGBoost+Wide&Deep, an image encoder for CNN+DNN).
        scoring: how a champion is scored on the challenger's eval set (see ``Scoring``).
        has_index: whether a FAISS index release is built, gated and promoted with the model.
        config_section: the ``recpipe.config.Config`` section of its own settings, or None.
        hyperparameters: ranking models: the constructor arguments it takes from the config, beyond those
            every ranking model shares (``training.ranking.shared_arguments``).
        side_artifacts: MLflow artifact folders logged beside the network (the GBDT booster), carried over on a
            warm start.
    """

    name: str
    kind: Kind
    model_classes: tuple[str, ...]
    trainer: str
    scoring: Scoring
    recipe: str | None = None
    has_index: bool = False
    config_section: str | None = None
    hyperparameters: Callable[[Any], dict[str, Any]] | None = None
    side_artifacts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"model name must match {_NAME.pattern}; received {self.name!r}")
        if self.kind not in ("recall", "ranking"):
            raise ValueError(f"{self.name}: kind must be 'recall' or 'ranking'; received {self.kind!r}")
        targets = [*self.model_classes, self.trainer, *([self.recipe] if self.recipe else [])]
        bad = [t for t in targets if not _TARGET.fullmatch(t)]
        if bad or not self.model_classes:
            raise ValueError(f"{self.name}: classes and recipes are 'module:attribute' strings; received {bad or '()'}")
        if (self.kind == "ranking") != (self.recipe is not None):
            raise ValueError(f"{self.name}: ranking models need a fit recipe and recall models have none")
        if self.has_index and self.kind != "recall":
            raise ValueError(f"{self.name}: only recall models have an index")

    def model_class(self, index: int = 0) -> type:
        """The model's Keras class (imported on first use)."""
        return load(self.model_classes[index])

    def classes(self) -> tuple[type, ...]:
        """Every class a trained model of this entry may be."""
        return tuple(load(target) for target in self.model_classes)


def load(target: str) -> Any:
    """The attribute a ``"module:attribute"`` string names."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _wide(cfg) -> dict[str, Any]:
    """Arguments of the wide part (Wide&Deep, XGBoost+Wide&Deep, Wide&ResNet): the crossed features."""
    from recpipe.contracts import WIDE_CROSSES

    return {"crosses": [list(pair) for pair in WIDE_CROSSES], "cross_bins": cfg.wide_deep.cross_bins}


def _deep(cfg) -> dict[str, Any]:
    """Arguments of an MLP deep part: its sizes and whether it normalises each layer over the batch."""
    return {"hidden_units": cfg.ranking.hidden_units, "batch_norm": cfg.ranking.batch_norm}


_RANKING_TRAINER = "training.train:train_ranking"
ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(
        name="item2vec",
        kind="recall",
        model_classes=("training.models.item2vec:Item2Vec", "training.models.item2vec:Item2VecCBOW"),
        trainer="training.train:train_item2vec",
        scoring="item_vectors",
        has_index=True,
        config_section="item2vec",
    ),
    ModelEntry(
        name="youtube_dnn",
        kind="recall",
        model_classes=("training.models.youtube_dnn:YouTubeDNN",),
        trainer="training.train:train_youtube_dnn",
        scoring="user_tower",
        has_index=True,
        config_section="youtube_dnn",
    ),
    ModelEntry(
        name="two_tower",
        kind="recall",
        model_classes=("training.models.two_tower:TwoTower",),
        trainer="training.train:train_two_tower",
        scoring="user_tower",
        has_index=True,
        config_section="two_tower",
    ),
    ModelEntry(
        name="fnn",
        kind="ranking",
        model_classes=("training.models.fnn:FNN",),
        trainer=_RANKING_TRAINER,
        recipe="training.ranking:fit_fnn",
        scoring="click",
        config_section="fnn",
        hyperparameters=_deep,
    ),
    ModelEntry(
        name="wide_deep",
        kind="ranking",
        model_classes=("training.models.wide_deep:WideDeep",),
        trainer=_RANKING_TRAINER,
        recipe="training.ranking:fit_plain",
        scoring="click",
        config_section="wide_deep",
        hyperparameters=lambda cfg: {**_wide(cfg), **_deep(cfg)},
    ),
    ModelEntry(
        name="xgb_wide_deep",
        kind="ranking",
        model_classes=("training.models.xgb_wide_deep:XGBWideDeep",),
        trainer=_RANKING_TRAINER,
        recipe="training.ranking:fit_xgb_wide_deep",
        scoring="click",
        config_section="xgb_wide_deep",
        hyperparameters=lambda cfg: {**_wide(cfg), **_deep(cfg), "leaves_to_deep": cfg.xgb_wide_deep.leaves_to_deep},
        side_artifacts=("gbdt",),
    ),
    ModelEntry(
        name="cnn_dnn",
        kind="ranking",
        model_classes=("training.models.cnn_dnn:CNNDNN",),
        trainer=_RANKING_TRAINER,
        recipe="training.ranking:fit_cnn_dnn",
        scoring="click",
        config_section="cnn_dnn",
        hyperparameters=_deep,
    ),
    ModelEntry(
        name="pnn",
        kind="ranking",
        model_classes=("training.models.pnn:PNN",),
        trainer=_RANKING_TRAINER,
        recipe="training.ranking:fit_plain",
        scoring="click",
        config_section="pnn",
        hyperparameters=lambda cfg: {**_deep(cfg), "product": cfg.pnn.product},
    ),
    ModelEntry(
        name="deepfm",
        kind="ranking",
        model_classes=("training.models.deepfm:DeepFM",),
        trainer=_RANKING_TRAINER,
        recipe="training.ranking:fit_plain",
        scoring="click",
        hyperparameters=_deep,
    ),
    ModelEntry(
        name="wide_resnet",
        kind="ranking",
        model_classes=("training.models.wide_resnet:WideResNet",),
        trainer=_RANKING_TRAINER,
        recipe="training.ranking:fit_plain",
        scoring="click",
        config_section="wide_resnet",
        hyperparameters=lambda cfg: {
            **_wide(cfg),
            "width": cfg.wide_resnet.width,
            "blocks": cfg.wide_resnet.blocks,
            "batch_norm": cfg.wide_resnet.batch_norm,
        },
    ),
)
# Files under training/models/ that hold no catalogue model: the click models' base classes, and the
# factorization machine that is FNN's pre-trained part (and a reference model of the benchmarks).
PARTS = {"ctr": "base classes of every click model", "fm": "the factorization machine FNN is initialised from"}

BY_NAME: dict[str, ModelEntry] = {entry.name: entry for entry in ENTRIES}
MODELS: tuple[str, ...] = tuple(BY_NAME)
RECALL_MODELS: tuple[str, ...] = tuple(e.name for e in ENTRIES if e.kind == "recall")
RANKING_MODELS: tuple[str, ...] = tuple(e.name for e in ENTRIES if e.kind == "ranking")
INDEXED_MODELS: tuple[str, ...] = tuple(e.name for e in ENTRIES if e.has_index)
if len(BY_NAME) != len(ENTRIES):
    raise ValueError(f"model names must be unique; received {[e.name for e in ENTRIES]}")


def entry(name: str, kind: Kind | None = None) -> ModelEntry:
    """The catalogue entry of model ``name`` (of ``kind``, when given); a clear error for anything else."""
    found = BY_NAME.get(name)
    if found is None or (kind is not None and found.kind != kind):
        choices = MODELS if kind is None else tuple(e.name for e in ENTRIES if e.kind == kind)
        what = "model" if kind is None else f"{kind} model"
        raise ValueError(f"unknown {what} {name!r}; expected one of {list(choices)}")
    return found


def indexed(name: str) -> ModelEntry:
    """The entry of a model that has an index release; a clear error for one that has none."""
    found = entry(name)
    if not found.has_index:
        raise ValueError(f"model {name!r} has no index; models with one are {list(INDEXED_MODELS)}")
    return found
