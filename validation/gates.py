"""Metric gates: pure functions of (candidate metrics, champion metrics or None, thresholds).

Each threshold sets an absolute floor and a maximum regression against the champion. The first run,
with no champion, is said explicitly in the verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from recpipe.config import GateConfig


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A metric's floor and the largest drop allowed against the champion (higher is better)."""

    metric: str
    min_value: float | None = None
    max_regression: float | None = None


@dataclasses.dataclass(frozen=True)
class GateResult:
    """The verdict: passed or not, with one reason per check, and whether a champion existed."""

    passed: bool
    reasons: tuple[str, ...]
    first_run: bool

    def to_dict(self) -> dict:
        return {"passed": self.passed, "reasons": list(self.reasons), "first_run": self.first_run}


def evaluate_gate(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    thresholds: Sequence[Threshold],
    no_champion: str = "first run: no champion to compare with",
) -> GateResult:
    """Check the candidate against every threshold; a missing candidate metric fails its check.

    Without champion metrics only the floors apply, and ``no_champion`` says why in the verdict.
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
        if t.min_value is not None:
            ok = value >= t.min_value
            passed &= ok
            reasons.append(f"{t.metric}={value:.4f} {'>=' if ok else '<'} floor {t.min_value:.4f}")
        if t.max_regression is not None and champion is not None:
            if t.metric not in champion:
                passed = False
                reasons.append(f"{t.metric}: the champion has no value to compare with (champion metrics: {sorted(champion)})")
                continue
            drop = champion[t.metric] - value
            ok = drop <= t.max_regression
            passed &= ok
            reasons.append(
                f"{t.metric}={value:.4f} vs champion {champion[t.metric]:.4f}: "
                f"drop {drop:+.4f} {'within' if ok else 'exceeds'} max {t.max_regression:.4f}"
            )
    return GateResult(bool(passed), tuple(reasons), champion is None)


def thresholds_for(model_kind: str, gates: GateConfig, top_k: int) -> list[Threshold]:
    """The configured thresholds of a model kind: ``recall`` (at ``top_k``) or ``ranking``."""
    if model_kind == "ranking":
        return [Threshold("auc", gates.min_auc, gates.max_auc_regression)]
    if model_kind == "recall":
        return [
            Threshold(f"recall_at_{top_k}", gates.min_recall_at_k, gates.max_recall_regression),
            Threshold(f"index_recall_at_{top_k}", gates.min_index_recall_at_k, None),
        ]
    raise ValueError(f"model_kind must be 'recall' or 'ranking', received {model_kind!r}")
