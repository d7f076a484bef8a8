"""The model catalogue is the one list of models: every model file has an entry, and every entry resolves."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recpipe.config import Config
from training import catalogue

MODELS_DIR = Path(__file__).resolve().parents[2] / "training" / "models"


def test_every_model_file_has_a_catalogue_entry():
    files = {p.stem for p in MODELS_DIR.glob("*.py") if p.stem != "__init__"}
    listed = {target.split(":")[0].rsplit(".", 1)[-1] for e in catalogue.ENTRIES for target in e.model_classes}
    missing = sorted(files - listed - set(catalogue.PARTS))
    assert not missing, f"model files without a catalogue entry (training/catalogue.py ENTRIES, or PARTS): {missing}"
    assert not (set(catalogue.PARTS) - files), "PARTS names files that do not exist"


def test_entries_resolve_to_their_classes_and_recipes():
    import keras

    for entry in catalogue.ENTRIES:
        for cls in entry.classes():
            assert issubclass(cls, keras.Model), entry.name
        assert callable(catalogue.load(entry.trainer)), entry.name
        if entry.recipe:
            assert callable(catalogue.load(entry.recipe)), entry.name


def test_config_sections_and_hyperparameters_exist_in_the_config():
    sections = {f.name for f in dataclasses.fields(Config)}
    cfg = Config(lake_root="/l", mlflow_tracking_uri="sqlite:///m.db", mlflow_artifact_root="/a")
    for entry in catalogue.ENTRIES:
        assert entry.config_section is None or entry.config_section in sections, entry.name
        if entry.kind == "ranking":
            assert isinstance(entry.hyperparameters(cfg), dict), entry.name


def test_kinds_and_indexes():
    assert catalogue.RECALL_MODELS == ("item2vec", "youtube_dnn", "two_tower")
    assert catalogue.RANKING_MODELS == ("fnn", "wide_deep", "xgb_wide_deep", "cnn_dnn", "pnn", "deepfm", "wide_resnet")
    assert catalogue.INDEXED_MODELS == catalogue.RECALL_MODELS
    assert catalogue.MODELS == catalogue.RECALL_MODELS + catalogue.RANKING_MODELS


def test_unknown_names_and_bad_entries_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown model 'dfm'; expected one of \['item2vec'"):
        catalogue.entry("dfm")
    with pytest.raises(ValueError, match="unknown ranking model 'two_tower'"):
        catalogue.entry("two_tower", "ranking")
    with pytest.raises(ValueError, match="model 'deepfm' has no index"):
        catalogue.indexed("deepfm")
    with pytest.raises(ValueError, match="ranking models need a fit recipe"):
        catalogue.ModelEntry(name="x", kind="ranking", model_classes=("m:C",), trainer="m:f", scoring="click")
    with pytest.raises(ValueError, match="'module:attribute' strings"):
        catalogue.ModelEntry(name="x", kind="recall", model_classes=("m.C",), trainer="m:f", scoring="user_tower")
    with pytest.raises(ValueError, match="only recall models have an index"):
        catalogue.ModelEntry(
            name="x", kind="ranking", model_classes=("m:C",), trainer="m:f", recipe="m:r", scoring="click", has_index=True
        )


def test_importing_the_catalogue_imports_no_model_library():
    import subprocess
    import sys

    code = "import sys, training.catalogue; print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
