from pathlib import Path

import pytest

from recpipe.config import DEFAULT_CONFIG, ConfigError, load_config


def test_embedded_config_loads_and_expands_recpipe_home(monkeypatch, tmp_path):
    monkeypatch.setenv("RECPIPE_HOME", str(tmp_path))
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.lake_root == f"{tmp_path}/var/lake"
    assert cfg.mlflow_tracking_uri == f"sqlite:///{tmp_path}/var/mlflow/mlflow.db"
    assert cfg.ranking.hidden_units == (64, 32) and cfg.wide_deep.cross_bins == 1024
    assert cfg.flat()["ranking.hidden_units"] == [64, 32]


def test_unknown_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lake_root: /x\nmlflow_tracking_uri: sqlite:///x\nmlflow_artifact_root: /x\netl:\n  lookbak_days: 3\n")
    with pytest.raises(ConfigError, match=r"etl: unknown keys \['lookbak_days'\]"):
        load_config(path)


def test_wrong_type_names_the_key_and_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lake_root: /x\nmlflow_tracking_uri: sqlite:///x\nmlflow_artifact_root: /x\nitem2vec:\n  epochs: three\n")
    with pytest.raises(ConfigError, match=r"item2vec.epochs: expected int, received 'three'"):
        load_config(path)


def test_unset_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("RECPIPE_TEST_UNSET", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("lake_root: ${RECPIPE_TEST_UNSET}/lake\nmlflow_tracking_uri: sqlite:///x\nmlflow_artifact_root: /x\n")
    with pytest.raises(ConfigError, match=r"\$\{RECPIPE_TEST_UNSET\} is not set"):
        load_config(path)


def test_missing_file_is_named():
    with pytest.raises(ConfigError, match=r"config file not found: /nonexistent\.yaml"):
        load_config(Path("/nonexistent.yaml"))


def test_invalid_values_are_named(tmp_path):
    base = "lake_root: /l\nmlflow_tracking_uri: sqlite:///m.db\nmlflow_artifact_root: /a\n"
    for section, match in [
        ("two_tower:\n  tower: transformer\n", "tower must be one of mlp, dcn, pnn; received 'transformer'"),
        ("two_tower:\n  temperature: 0\n", "temperature must be positive, received 0.0"),
        ("etl:\n  action_weights: {click: 1.0, apply: -2.0}\n", r"action weights must be positive, received \{'apply': -2.0\}"),
    ]:
        path = tmp_path / "c.yaml"
        path.write_text(base + section)
        with pytest.raises(ConfigError, match=match):
            load_config(path)


def _optional_settings() -> list[tuple[str, str, type]]:
    """(section, key, X) of every ``X | None`` setting of the config, found from the dataclasses themselves."""
    import dataclasses
    import types
    import typing

    from recpipe.config import Config

    found = []
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        for key, hint in typing.get_type_hints(cls).items():
            if typing.get_origin(hint) is types.UnionType and type(None) in typing.get_args(hint):
                (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
                found.append((section.name, key, inner))
    return found


def test_the_optional_settings_are_found():
    assert {(s, k) for s, k, _ in _optional_settings()} >= {
        ("gates", "max_index_latency_ms_p99"),
        ("gates", "min_slice_recall_at_k"),
    }


@pytest.mark.parametrize(("section", "key", "inner"), _optional_settings())
def test_every_optional_setting_takes_a_value_or_null_from_yaml(tmp_path, section, key, inner):
    base = "lake_root: /tmp/l\nmlflow_tracking_uri: sqlite:///m.db\nmlflow_artifact_root: /tmp/a\n"
    sample = {float: ("30.0", 30.0), int: ("30", 30), str: ("abc", "abc"), bool: ("true", True)}[inner]
    for text, expected in (sample, ("null", None), ("~", None)):
        path = tmp_path / "c.yaml"
        path.write_text(f"{base}{section}:\n  {key}: {text}\n")
        assert getattr(getattr(load_config(path), section), key) == expected, text
    if inner is float:  # an int in YAML is a float setting's value too
        path.write_text(f"{base}{section}:\n  {key}: 30\n")
        assert getattr(getattr(load_config(path), section), key) == 30.0
    path.write_text(f"{base}{section}:\n  {key}: [1, 2]\n")
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: expected {inner.__name__} or null, received \[1, 2\]"):
        load_config(path)
