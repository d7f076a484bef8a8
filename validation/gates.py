"""Metric gates: pure functions of (candidate metrics, champion metrics or None, thresholds).

Each threshold sets an absolute floor (or a ceiling, for costs such as latency) and a maximum regression
against the champion, for a headline metric or for one slice of it (``auc__city_3``,
``recall_at_50__category_1``). The first run, with no champion, is said explicitly in the verdict.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from recpipe.config import GateConfig
from recpipe.tracking import SLICE_SEPARATOR


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A metric's floor (or ceiling) and the largest drop allowed against the champion (higher is better).

    ``new_slice_ok``: a champion without this metric is not a failure (a slice the champion never saw,
    e.g. a new city); the regression check is then skipped and the verdict says so. ``reference`` and
    ``min_ratio``: the metric must reach ``min_ratio`` times the candidate's ``reference`` metric (a baseline such
    as item-kNN on the same users); a missing reference fails.
    """

    metric: str
    min_value: float | None = None
    max_regression: float | None = None
    max_value: float | None = None
    new_slice_ok: bool = False
    # Beat a reference measured on the same eval set: ``metric >= min_ratio * candidate[reference]``.
    reference: str | None = None
    min_ratio: float | None = None


CheckKind = Literal["floor", "ceiling", "regression", "reference", "older_day"]


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of a verdict: what was compared with what, and whether it passed.

    ``value`` is the candidate's metric (None: missing from its metrics); ``threshold`` the floor, ceiling or
    largest drop allowed; ``champion`` the champion's value of a regression check (None: it has none, which
    fails, or passes as a ``new_slice``). ``context`` keeps the metric names a missing value was looked for in.
    An ``older_day`` check compares days: ``value`` is this run's ``ds``, ``champion`` the champion's, and
    ``champion_version`` names it.
    """

    metric: str
    kind: CheckKind
    passed: bool
    value: float | str | None = None
    threshold: float | None = None
    champion: float | str | None = None
    new_slice: bool = False
    champion_version: str | None = None
    context: tuple[str, ...] = ()
    reference: str | None = None
    ratio: float | None = None

    @property
    def message(self) -> str:
        """The check as one sentence, for logs, tags, the run card and ``recpipe summary``."""
        if self.kind == "older_day":
            return (
                f"champion v{self.champion_version} was trained for ds={self.champion}, after this run's ds={self.value}: "
                "an older day never replaces a newer champion"
            )
        if self.value is None:
            return f"{self.metric}: missing from the candidate's metrics {list(self.context)}"
        if self.kind == "reference":
            if self.threshold is None:
                return f"{self.metric}: reference {self.reference} missing from the candidate's metrics {list(self.context)}"
            return (
                f"{self.metric}={self.value:.4f} {'>=' if self.passed else '<'} {self.ratio:g} x {self.reference} "
                f"= {self.threshold:.4f}"
            )
        if self.kind == "floor":
            return f"{self.metric}={self.value:.4f} {'>=' if self.passed else '<'} floor {self.threshold:.4f}"
        if self.kind == "ceiling":
            return f"{self.metric}={self.value:.4f} {'<=' if self.passed else '>'} ceiling {self.threshold:.4f}"
        if self.champion is None and self.new_slice:
            return f"{self.metric}: new slice, the champion has no value: regression not checked"
        if self.champion is None:
            return f"{self.metric}: the champion has no value to compare with (champion metrics: {list(self.context)})"
        drop = self.champion - self.value
        return (
            f"{self.metric}={self.value:.4f} vs champion {self.champion:.4f}: "
            f"drop {drop:+.4f} {'within' if self.passed else 'exceeds'} max {self.threshold:.4f}"
        )

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "context": list(self.context), "message": self.message}


@dataclasses.dataclass(frozen=True)
class GateResult:
    """The verdict: the checks in order, notes that are not checks, and whether a champion existed.

    It passed when every check passed. ``champion_note`` says why there was nothing to compare with (first
    run, or an incompatible champion); ``notes`` say what was not gated (slices too small).
    """

    checks: tuple[Check, ...]
    first_run: bool
    champion_note: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every line of the verdict in order: the champion note, one per check, then the notes."""
        head = (self.champion_note,) if self.champion_note else ()
        return (*head, *(c.message for c in self.checks), *self.notes)

    def with_checks(self, *checks: Check) -> GateResult:
        return dataclasses.replace(self, checks=(*self.checks, *checks))

    def with_notes(self, *notes: str) -> GateResult:
        return dataclasses.replace(self, notes=(*self.notes, *notes))

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "first_run": self.first_run,
            "checks": [c.to_dict() for c in self.checks],
            "champion_note": self.champion_note,
            "notes": list(self.notes),
        }


def _check(t: Threshold, value: float, champion: Mapping[str, float] | None, candidate: Mapping[str, float]) -> list[Check]:
    checks = []
    if t.min_value is not None:
        checks.append(Check(t.metric, "floor", value >= t.min_value, value, t.min_value))
    if t.max_value is not None:
        checks.append(Check(t.metric, "ceiling", value <= t.max_value, value, t.max_value))
    if t.reference is not None:
        ref = candidate.get(t.reference)
        bar = None if ref is None else t.min_ratio * ref
        ok = bar is not None and value >= bar
        context = () if ref is not None else tuple(sorted(candidate))
        checks.append(Check(t.metric, "reference", ok, value, bar, reference=t.reference, ratio=t.min_ratio, context=context))
    if t.max_regression is not None and champion is not None:
        if t.metric not in champion:
            ok = t.new_slice_ok
            checks.append(
                Check(t.metric, "regression", ok, value, t.max_regression, new_slice=ok, context=tuple(sorted(champion)))
            )
            return checks
        ok = champion[t.metric] - value <= t.max_regression
        checks.append(Check(t.metric, "regression", ok, value, t.max_regression, champion=champion[t.metric]))
    return checks


def evaluate_gate(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    thresholds: Sequence[Threshold],
    no_champion: str = "first run: no champion to compare with",
) -> GateResult:
    """Check the candidate against every threshold; a missing candidate metric fails its check.

    Without champion metrics only the floors and ceilings apply, and ``no_champion`` says why in the verdict.
    """
    checks: list[Check] = []
    for t in thresholds:
        value = candidate.get(t.metric)
        if value is None:
            kinds = [("floor", t.min_value), ("ceiling", t.max_value), ("reference", t.reference)]
            kind = next((k for k, v in kinds if v is not None), "regression")
            checks.append(Check(t.metric, kind, False, context=tuple(sorted(candidate))))
            continue
        checks.extend(_check(t, value, champion, candidate))
    note = f"{no_champion}, only absolute floors apply" if champion is None else None
    return GateResult(tuple(checks), champion is None, champion_note=note)


def older_day_check(ds: str, champion_ds: str, champion_version: str) -> Check:
    """A release trained for an older day than the champion's never passes (a backfill never replaces a newer model)."""
    return Check("ds", "older_day", not champion_ds > ds, ds, champion=champion_ds, champion_version=champion_version)


def slice_thresholds(
    candidate: Mapping[str, float],
    metric: str,
    min_value: float | None,
    max_regression: float | None,
    min_rows: int,
) -> tuple[list[Threshold], list[str]]:
    """One threshold per slice of ``metric`` in the candidate (``<metric>__<slice>``) with at least ``min_rows``.

    A slice's size is the candidate's ``rows__<slice>`` metric; a slice without one is gated. Returns the
    thresholds and the names of the slices too small to gate, with their sizes.
    """
    pattern = re.compile(re.escape(metric + SLICE_SEPARATOR) + r"(.+)")
    gated, skipped = [], []
    for name in sorted(candidate):
        found = pattern.fullmatch(name)
        if not found:
            continue
        rows = candidate.get(f"rows{SLICE_SEPARATOR}{found.group(1)}")
        if rows is not None and rows < min_rows:
            skipped.append(f"{name} ({rows:.0f} rows)")
            continue
        gated.append(Threshold(name, min_value, max_regression, new_slice_ok=True))
    return gated, skipped


def thresholds_for(
    model_kind: str, gates: GateConfig, top_k: int, candidate: Mapping[str, float] | None = None
) -> tuple[list[Threshold], list[str]]:
    """The configured thresholds of a model kind, ``recall`` (at ``top_k``) or ``ranking``, for one candidate.

    Headline thresholds always apply; slice thresholds apply to the candidate's slices of the headline
    metric that have at least ``gates.min_slice_rows`` rows. Returns the thresholds and the slices skipped
    as too small.
    """
    candidate = candidate or {}
    if model_kind == "ranking":
        headline = [Threshold("auc", gates.min_auc, gates.max_auc_regression)]
        slices = slice_thresholds(candidate, "auc", gates.min_slice_auc, gates.max_slice_auc_regression, gates.min_slice_rows)
    elif model_kind == "recall":
        metric = f"recall_at_{top_k}"
        headline = [
            Threshold(metric, gates.min_recall_at_k, gates.max_recall_regression),
            Threshold(f"index_recall_at_{top_k}", gates.min_index_recall_at_k, None),
        ]
        if gates.max_index_latency_ms_p99 is not None:
            headline.append(Threshold("index_latency_ms_p99_batch1", max_value=gates.max_index_latency_ms_p99))
        if gates.min_lift_over_itemknn is not None:
            headline.append(Threshold(metric, reference=f"itemknn_{metric}", min_ratio=gates.min_lift_over_itemknn))
        slices = slice_thresholds(
            candidate, metric, gates.min_slice_recall_at_k, gates.max_slice_recall_regression, gates.min_slice_rows
        )
    else:
        raise ValueError(f"model_kind must be 'recall' or 'ranking', received {model_kind!r}")
    return headline + slices[0], slices[1]
