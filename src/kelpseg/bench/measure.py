"""What every suite measures with: timed repeats, medians, and the figure/reference pair.

Every figure is a rate (higher is better) measured beside a *reference* rate in the same run:
the floor it cannot beat (a memcpy of the same bytes, the model alone) or the baseline it
replaces (brute force). The ratio ``value / reference`` is what the suites print and what
:func:`~kelpseg.bench.compare.compare_results` watches, since both sides of it drift together
when a shared machine is busy.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


def sync(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; the CPU needs nothing)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_repeats(
    work: Callable[[], object],
    *,
    repeats: int,
    warmup: int = 1,
    device: torch.device | str = "cpu",
) -> list[float]:
    """Wall seconds of each of ``repeats`` calls of ``work``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        work()
    sync(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def median_rate(items: float, seconds: list[float]) -> float:
    """Items per second at the median of the timed repeats."""
    return items / max(statistics.median(seconds), 1e-12)


@dataclass
class Figure:
    """One measured rate and the reference rate measured beside it.

    Attributes:
        name: ``<suite>.<what>``, unique in a results file (compare matches on it).
        value: the measured rate (higher is better).
        unit: its unit (``samples/s``, ``tiles/s`` ...).
        reference: the reference rate, in the same unit.
        reference_name: what the reference is (``raw memcpy``, ``model only`` ...).
        meaning: how to read the ratio (``share of the floor``, ``speed-up`` ...).
        target: the ratio the project aims for, if it names one.
        extra: anything else worth keeping (sizes, per-repeat seconds, FLOPs ...).
    """

    name: str
    value: float
    unit: str
    reference: float
    reference_name: str
    meaning: str = "share of the reference"
    target: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """``value / reference`` (NaN when the reference is not a positive number)."""
        ok = self.reference > 0 and math.isfinite(self.reference)
        return self.value / self.reference if ok else float("nan")

    @property
    def target_met(self) -> bool | None:
        """Whether the ratio reaches the target (None without a target)."""
        return None if self.target is None else bool(self.ratio >= self.target)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the ratio written out."""
        return {**asdict(self), "ratio": self.ratio, "target_met": self.target_met}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        """Inverse of :meth:`to_dict` (derived keys are dropped)."""
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in keys})


@dataclass
class SuiteResult:
    """The figures of one suite, the settings they were measured with, and notes."""

    suite: str
    figures: list[Figure]
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "suite": self.suite,
            "seconds": self.seconds,
            "settings": self.settings,
            "notes": self.notes,
            "figures": [f.to_dict() for f in self.figures],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteResult:
        """Inverse of :meth:`to_dict`."""
        figures = [Figure.from_dict(f) for f in data.get("figures", [])]
        return cls(
            data["suite"],
            figures,
            dict(data.get("settings", {})),
            list(data.get("notes", [])),
            float(data.get("seconds", 0.0)),
        )
