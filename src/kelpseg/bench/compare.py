"""Compare two results files: each figure's change, and regressions beyond a tolerance.

Every figure is a rate (higher is better), so a regression is a drop: ``new < old x (1 -
tolerance)``. Both the raw value and the ratio to its in-run reference are checked by default;
the ratio is the steadier of the two on a shared machine, since both of its sides slow down
together when the machine is busy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from kelpseg.bench.runner import BenchReport
from kelpseg.errors import KelpsegError

Metric = Literal["value", "ratio"]
METRICS: tuple[Metric, ...] = ("value", "ratio")


@dataclass(frozen=True)
class Change:
    """One figure's metric in the old and new results."""

    figure: str
    metric: Metric
    old: float
    new: float
    regression: bool

    @property
    def relative(self) -> float:
        """``new / old - 1`` (NaN when the old value is not a positive number)."""
        ok = self.old > 0 and math.isfinite(self.old) and math.isfinite(self.new)
        return self.new / self.old - 1.0 if ok else float("nan")


@dataclass
class Comparison:
    """The outcome of :func:`compare_results`."""

    changes: list[Change]
    tolerance: float
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        """The changes that dropped beyond the tolerance."""
        return [c for c in self.changes if c.regression]


def _is_regression(old: float, new: float, tolerance: float) -> bool:
    if not math.isfinite(old):
        return False  # nothing to hold the new figure to
    if not math.isfinite(new):
        return True
    return new < old * (1.0 - tolerance)


def _warnings(old: BenchReport, new: BenchReport) -> list[str]:
    """Differences of machine or settings that make figures incomparable."""
    out = []
    for key in ("cpu", "cores", "device"):
        a, b = old.environment.get(key), new.environment.get(key)
        if a != b:
            out.append(f"{key} differs: {a} -> {b}")
    gpu_a, gpu_b = (r.environment.get("gpu") or {} for r in (old, new))
    if gpu_a.get("name") != gpu_b.get("name"):
        out.append(f"GPU differs: {gpu_a.get('name')} -> {gpu_b.get('name')}")
    settings = {s.suite: s.settings for s in old.suites}
    for suite in new.suites:
        if suite.suite in settings and settings[suite.suite] != suite.settings:
            out.append(f"suite {suite.suite}: settings differ (sizes, model or precision)")
    return out


def compare_results(
    old: BenchReport,
    new: BenchReport,
    tolerance: float = 0.15,
    metrics: Sequence[Metric] = METRICS,
) -> Comparison:
    """Each shared figure's change from ``old`` to ``new``, regressions flagged.

    Args:
        old: the baseline results.
        new: the results to check.
        tolerance: allowed relative drop (0.15: a figure may fall by up to 15%).
        metrics: ``value`` (the measured rate), ``ratio`` (to its in-run reference), or both.

    Raises:
        KelpsegError: a tolerance outside [0, 1) or an unknown metric.
    """
    if not 0.0 <= tolerance < 1.0:
        raise KelpsegError(f"tolerance must be in [0, 1), got {tolerance}")
    unknown = set(metrics) - set(METRICS)
    if unknown or not metrics:
        raise KelpsegError(f"metrics must be some of {', '.join(METRICS)}, got {list(metrics)}")
    a, b = old.figures, new.figures
    changes = []
    for name in (n for n in a if n in b):
        for metric in metrics:
            was, now = float(getattr(a[name], metric)), float(getattr(b[name], metric))
            changes.append(Change(name, metric, was, now, _is_regression(was, now, tolerance)))
    return Comparison(
        changes,
        tolerance,
        missing=[n for n in a if n not in b],
        added=[n for n in b if n not in a],
        warnings=_warnings(old, new),
    )
