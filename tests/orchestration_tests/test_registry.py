"""The nightly data chain, its assets, its checks and ``recpipe etl`` come from the dataset registry."""

from __future__ import annotations

import dataclasses

import pytest

from orchestration import tasks
from recpipe import contracts
from reporting.collect import DATA_CHECKS


def test_the_spark_chain_derived_from_the_registry():
    # The chain as drawn in the DAG's docstring, written out by hand.
    assert tasks.spark_chain() == {
        "validate_events": ("stage_events",),
        "validate_features": ("item2vec_samples", "ranking_samples", "retrieval_samples"),
        "stage_events": ("wait_for_raw_events",),
        "sessions": ("validate_events",),
        "daily_aggregates": ("validate_events",),
        "item2vec_samples": ("sessions",),
        "retrieval_samples": ("sessions",),  # also reads staged events: already upstream of sessions
        "ranking_samples": ("daily_aggregates",),
    }


def test_assets_checks_and_history_jobs_derived_from_the_registry():
    assert tasks.TRAINING_SET_OUTPUTS == {
        "item2vec_samples": ("training/item2vec_pairs", "training/item2vec_cbow", "training/item_popularity"),
        "retrieval_samples": ("training/retrieval_samples", "training/recall_eval"),
        "ranking_samples": ("training/ranking_samples",),
    }
    assert tasks.FEATURE_SUITES == ("ranking_samples", "item2vec_pairs", "retrieval_samples")
    assert tasks.HISTORY_JOBS == ("stage_events", "sessions", "daily_aggregates")
    assert DATA_CHECKS == (
        ("staged_events", "data/staged_events_check.json"),
        ("ranking_samples", "data/ranking_samples_check.json"),
        ("item2vec_pairs", "data/item2vec_pairs_check.json"),
        ("retrieval_samples", "data/retrieval_samples_check.json"),
    )


def test_every_suite_of_the_registry_has_its_gx_suite():
    from validation.data_checks import SUITES

    assert set(SUITES) == {d.suite for d in contracts.DATASETS if d.suite}
    for d in contracts.DATASETS:
        if d.suite:
            assert SUITES[d.suite][0] is d.contract


def test_a_new_dataset_joins_the_chain_where_its_reads_put_it(monkeypatch):
    extra = contracts.Contract("training/new_samples", contracts.SESSIONS.schema)
    monkeypatch.setattr(
        contracts,
        "DATASETS",
        (*contracts.DATASETS, contracts.Dataset(contract=extra, job="new_samples", suite="new", check="features", asset=True)),
    )
    monkeypatch.setattr(contracts, "JOBS", (*contracts.JOBS, contracts.Job(name="new_samples", reads=(contracts.SESSIONS.name,))))
    chain = tasks.spark_chain()
    assert chain["new_samples"] == ("sessions",)
    assert "new_samples" in chain["validate_features"]


def test_registry_entries_that_contradict_themselves_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="a suite needs its check stage"):
        contracts.Dataset(contract=contracts.SESSIONS, job="sessions", suite="s")
    with pytest.raises(ValueError, match="only a dataset some job writes"):
        contracts.Dataset(contract=contracts.RAW_EVENTS, asset=True)
    jobs = contracts.JOBS
    monkeypatch.setattr(contracts, "JOBS", (*jobs, contracts.Job(name="orphan", reads=("training/nothing",))))
    with pytest.raises(ValueError, match=r"job orphan reads datasets that are not in the registry: \['training/nothing'\]"):
        contracts._check_registry()
    monkeypatch.setattr(contracts, "JOBS", tuple(reversed(jobs[:2])) + jobs[2:])
    with pytest.raises(ValueError, match="sessions is listed before"):
        contracts._check_registry()
    assert dataclasses.is_dataclass(contracts.DATASETS[0])
