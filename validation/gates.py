"""Metric gates: pure functions of (candidate metrics, champion metrics or None, thresholds).

Each threshold sets an absolute floor (or a ceiling, for costs such as latency) and a maximum regression
against the champion, for a headline metric or for one slice of it (``auc__city_3``,
``recall_at_50__category_1``). The first run, with no champion, is said explicitly in the verdict.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from recpipe.config import GateConfig

SLICE_SEPARATOR = "__"


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A metric's floor (or ceiling) and the largest drop allowed against the champion (higher is better).

    ``new_slice_ok``: a champion without this metric is not a failure (a slice the champion never saw,
    e.g. a new city); the regression check is then skipped and the verdict says so.
    """

    metric: str
    min_value: float | None = None
    max_regression: float | None = None
    max_value: float | None = None
    new_slice_ok: bool = False


@dataclasses.dataclass(frozen=True)
class GateResult:
    """The verdict: passed or not, with one reason per check, and whether a champion existed."""

    passed: bool
    reasons: tuple[str, ...]
    first_run: bool

    def to_dict(self) -> dict:
        return {"passed": self.passed, "reasons": list(self.reasons), "first_run": self.first_run}


def _check(t: Threshold, value: float, champion: Mapping[str, float] | None) -> tuple[bool, list[str]]:
    passed, reasons = True, []
    if t.min_value is not None:
        ok = value >= t.min_value
        passed &= ok
        reasons.append(f"{t.metric}={value:.4f} {'>=' if ok else '<'} floor {t.min_value:.4f}")
    if t.max_value is not None:
        ok = value <= t.max_value
        passed &= ok
        reasons.append(f"{t.metric}={value:.4f} {'<=' if ok else '>'} ceiling {t.max_value:.4f}")
    if t.max_regression is not None and champion is not None:
        if t.metric not in champion:
            if t.new_slice_ok:
                reasons.append(f"{t.metric}: new slice, the champion has no value: regression not checked")
            else:
                passed = False
                reasons.append(f"{t.metric}: the champion has no value to compare with (champion metrics: {sorted(champion)})")
            return passed, reasons
        drop = champion[t.metric] - value
        ok = drop <= t.max_regression
        passed &= ok
        reasons.append(
            f"{t.metric}={value:.4f} vs champion {champion[t.metric]:.4f}: "
            f"drop {drop:+.4f} {'within' if ok else 'exceeds'} max {t.max_regression:.4f}"
        )
    return passed, reasons


def evaluate_gate(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    thresholds: Sequence[Threshold],
    no_champion: str = "first run: no champion to compare with",
) -> GateResult:
    """Check the candidate against every threshold; a missing candidate metric fails its check.

    Without champion metrics only the floors and ceilings apply, and ``no_champion`` says why in the verdict.
    """
    passed = True
    reasons: list[str] = []
    if champion is None:
        reasons.append(f"{no_champion}, only absolute floors apply")
    for t in thresholds:
        value = candidate.get(t.metric)
        if value is None:
            passed = False
            reasons.append(f"{t.metric}: missing from the candidate's metrics {sorted(candidate)}")
            continue
        ok, said = _check(t, value, champion)
        passed &= ok
        reasons.extend(said)
    return GateResult(bool(passed), tuple(reasons), champion is None)


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
        slices = slice_thresholds(
            candidate, metric, gates.min_slice_recall_at_k, gates.max_slice_recall_regression, gates.min_slice_rows
        )
    else:
        raise ValueError(f"model_kind must be 'recall' or 'ranking', received {model_kind!r}")
    return headline + slices[0], slices[1]
