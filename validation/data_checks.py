"""Great Expectations suites built from the dataset contracts, run on one partition.

Each check runs in its own ephemeral GX context (GX contexts are not thread-safe and refuse duplicate
names). The full result is written as JSON and HTML under ``<lake>/reports/data_checks/<suite>/ds=D/``;
a failure raises ``DataCheckFailed`` naming each failed expectation and where the report is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from recpipe import contracts, lake, tables
from recpipe.config import Config

log = logging.getLogger(__name__)


class DataCheckFailed(RuntimeError):
    """A partition failed its data checks."""


def _expectations(contract: contracts.Contract):
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnToExist(column=c) for c in contract.columns]


def staged_events_suite(cfg: Config, ds: str) -> list:
    """Expectations of one staged events partition: what staging promises, strictly (bad rows were quarantined)."""
    import great_expectations.expectations as gxe

    start, end = lake.day_bounds_ms(ds)
    lateness = cfg.etl.lateness_minutes * 60_000
    return [
        *_expectations(contracts.STAGED_EVENTS),
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.validation.min_event_rows),
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in contracts.STAGED_EVENTS.columns],
        gxe.ExpectColumnValuesToBeInSet(column="event", value_set=list(contracts.EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeBetween(column="ts", min_value=start - lateness, max_value=end + lateness - 1),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeBetween(column="position", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="hour", min_value=0, max_value=23),
    ]


def ranking_samples_suite(cfg: Config, ds: str) -> list:
    """Expectations of one ranking samples partition: no nulls, ids inside their vocabularies, both splits."""
    import great_expectations.expectations as gxe

    specs = contracts.ranking_features(**tables.vocab_sizes(cfg.lake_root, ds))
    out = [
        *_expectations(contracts.RANKING_SAMPLES),
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.validation.min_feature_rows),
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in contracts.RANKING_SAMPLES.columns],
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0.0, 1.0]),
        gxe.ExpectColumnDistinctValuesToEqualSet(column="split", value_set=list(contracts.SPLITS)),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
    ]
    for spec in specs:
        if spec.kind == "categorical":
            out.append(gxe.ExpectColumnValuesToBeBetween(column=spec.name, min_value=0, max_value=spec.vocab_size - 1))
        else:
            out.append(gxe.ExpectColumnValuesToBeBetween(column=spec.name, min_value=0))
    return out


def item2vec_pairs_suite(cfg: Config, ds: str) -> list:
    """Expectations of one skip-gram pairs partition."""
    import great_expectations.expectations as gxe

    return [
        *_expectations(contracts.ITEM2VEC_PAIRS),
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.validation.min_feature_rows),
        *[gxe.ExpectColumnValuesToNotBeNull(column=c.name) for c in contracts.ITEM2VEC_PAIRS.schema if not c.nullable],
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0.0, 1.0]),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=["positive", *contracts.NEGATIVE_KINDS]),
        gxe.ExpectColumnValuesToBeBetween(column="target", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="context", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="prob", min_value=0, max_value=1, strict_min=True),
    ]


def retrieval_samples_suite(cfg: Config, ds: str) -> list:
    """Expectations of one retrieval samples partition: positive actions, weights, capped history, both splits."""
    import great_expectations.expectations as gxe

    c = contracts.RETRIEVAL_SAMPLES
    return [
        *_expectations(c),
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.validation.min_feature_rows),
        *[gxe.ExpectColumnValuesToNotBeNull(column=col.name) for col in c.schema if not col.nullable],
        gxe.ExpectColumnValuesToBeInSet(column="event", value_set=list(contracts.POSITIVE_ACTIONS)),
        gxe.ExpectColumnValuesToBeBetween(column="weight", min_value=0, strict_min=True),
        gxe.ExpectColumnDistinctValuesToEqualSet(column="split", value_set=list(contracts.SPLITS)),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeBetween(column="history_length", min_value=0, max_value=cfg.etl.history_max_len),
        gxe.ExpectColumnValuesToBeBetween(
            column="hard_negatives_length", min_value=0, max_value=cfg.etl.retrieval_hard_negatives
        ),
        gxe.ExpectColumnValuesToBeBetween(column="weekday", min_value=0, max_value=6),
        gxe.ExpectColumnValuesToBeBetween(column="hard_negative_prob", min_value=0, max_value=1),
    ]


def _suites() -> dict[str, tuple[contracts.Contract, Callable[[Config, str], list]]]:
    """Suite name -> (the contract it checks, its expectations builder ``<suite>_suite``), from the registry."""
    out = {}
    for dataset in contracts.DATASETS:
        if dataset.suite is None:
            continue
        build = globals().get(f"{dataset.suite}_suite")
        if build is None:
            raise ValueError(
                f"the dataset registry names suite {dataset.suite!r} for {dataset.name}, but validation.data_checks "
                f"has no {dataset.suite}_suite(cfg, ds)"
            )
        out[dataset.suite] = (dataset.contract, build)
    return out


SUITES = _suites()


def _failures(result) -> list[dict]:
    out = []
    for r in result.results:  # GX does not keep suite order: report by type and kwargs
        if r.success:
            continue
        res = r.result or {}
        kwargs = {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"}
        out.append(
            {
                "expectation": r.expectation_config.type,
                "kwargs": kwargs,
                "observed_value": res.get("observed_value"),
                "unexpected_count": res.get("unexpected_count"),
                "partial_unexpected_list": (res.get("partial_unexpected_list") or [])[:5],
            }
        )
    return out


def run_suite(name: str, df, expectations: list):
    """Validate a pandas DataFrame against a list of expectations; returns the GX result."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(name="lake").add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")


def _write_report(cfg: Config, suite: str, ds: str, result, summary: dict) -> str:
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    uri = lake.partition_uri(cfg.lake_root, f"reports/data_checks/{suite}", ds)
    lake.write_text(uri, "summary.json", json.dumps(summary, indent=2, default=str))
    lake.write_text(uri, "report.html", DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result)))
    return uri


def check_partition(suite: str, cfg: Config, ds: str) -> dict:
    """Run a named suite on day ``ds``'s partition; raise ``DataCheckFailed`` if any expectation fails."""

    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; expected one of {sorted(SUITES)}")
    contract, build = SUITES[suite]
    lake.parse_ds(ds)
    table = tables.read_table(cfg.lake_root, contract, ds)
    df = table.to_pandas()
    for field in table.schema:  # GX measures string lengths only: list lengths are checked on derived columns
        if pa.types.is_list(field.type):
            df[f"{field.name}_length"] = pc.list_value_length(table.column(field.name)).to_numpy(zero_copy_only=False)
    result = run_suite(suite, df, build(cfg, ds))
    failures = _failures(result)
    summary = {
        "suite": suite,
        "ds": ds,
        "success": bool(result.success),
        "rows": len(df),
        "evaluated": result.statistics["evaluated_expectations"],
        "failed": failures,
    }
    report = _write_report(cfg, suite, ds, result, summary)
    summary["report"] = report
    if not result.success:
        lines = [
            f"  - {f['expectation']} {f['kwargs']}: observed {f['observed_value']}, unexpected {f['unexpected_count']}"
            for f in failures
        ]
        raise DataCheckFailed(
            f"data check {suite!r} failed for ds={ds}: {len(failures)} of {summary['evaluated']} expectations failed\n"
            + "\n".join(lines)
            + f"\nfull report: {report}/report.html"
        )
    log.info("data check %s passed for ds=%s (%d expectations, %d rows)", suite, ds, summary["evaluated"], len(df))
    return summary
