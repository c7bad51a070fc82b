"""Run the chosen suites and write one results JSON (figures, settings, machine, versions)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kelpseg.bench.config import BenchConfig
from kelpseg.bench.environment import environment
from kelpseg.bench.measure import Figure, SuiteResult
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path

SCHEMA = "kelpseg-bench/1"
Suite = Callable[[BenchConfig, Path, torch.device, Any], SuiteResult]


def _data(config: BenchConfig, work: Path, device: torch.device, settings: Any) -> SuiteResult:
    from kelpseg.bench.data import run_data

    return run_data(config, work, settings)


def _features(config: BenchConfig, work: Path, device: torch.device, settings: Any) -> SuiteResult:
    from kelpseg.bench.features import run_features

    return run_features(config, work, device, settings)


def _train(config: BenchConfig, work: Path, device: torch.device, settings: Any) -> SuiteResult:
    from kelpseg.bench.train import run_train

    return run_train(config, work, device)


def _infer(config: BenchConfig, work: Path, device: torch.device, settings: Any) -> SuiteResult:
    from kelpseg.bench.infer import run_infer

    return run_infer(config, work, device, settings)


def _group(config: BenchConfig, work: Path, device: torch.device, settings: Any) -> SuiteResult:
    from kelpseg.bench.group import run_group

    return run_group(config, work, settings)


#: Suite name -> runner (imported when run, so one suite needs only its own stack).
SUITE_RUNNERS: dict[str, Suite] = {
    "data": _data,
    "features": _features,
    "train": _train,
    "infer": _infer,
    "group": _group,
}


@dataclass
class BenchReport:
    """A results file: the run's config, the machine, and each suite's figures."""

    config: dict[str, Any]
    environment: dict[str, Any]
    suites: list[SuiteResult] = field(default_factory=list)

    @property
    def figures(self) -> dict[str, Figure]:
        """Every figure by name."""
        return {f.name: f for s in self.suites for f in s.figures}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "schema": SCHEMA,
            "config": self.config,
            "environment": self.environment,
            "suites": [s.to_dict() for s in self.suites],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BenchReport:
        """Read a results file written by :meth:`save`.

        Raises:
            KelpsegError: missing file, not JSON, or not a kelpseg benchmark results file.
        """
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise KelpsegError("no such results file", path) from exc
        except (OSError, ValueError) as exc:
            raise KelpsegError(f"not a readable JSON file ({type(exc).__name__})", path) from exc
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise KelpsegError(f"not a kelpseg benchmark results file (schema {SCHEMA})", path)
        suites = [SuiteResult.from_dict(s) for s in data.get("suites", [])]
        return cls(data.get("config", {}), data.get("environment", {}), suites)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU.

    Raises:
        KelpsegError: CUDA asked for on a machine without it.
    """
    if name == "cuda" and not torch.cuda.is_available():
        raise KelpsegError("CUDA is not available on this machine; use --device cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def run_bench(
    config: BenchConfig,
    out: str | os.PathLike[str] | None = None,
    on_suite: Callable[[SuiteResult], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> BenchReport:
    """Run ``config.suites`` in order; write the report to ``out`` after each suite.

    Args:
        config: what to run.
        out: results JSON (rewritten after every suite, so a crash keeps what was measured).
        on_suite: called with each suite's result as soon as it is done (to print it).
        settings: sizes of a suite by its name (its ``*Settings`` dataclass), instead of those
            ``config`` implies (the scripts in ``benchmarks/`` set them from their flags).
    """
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    report = BenchReport(config.model_dump(mode="json"), environment(device))
    with tempfile.TemporaryDirectory(prefix="kelpseg-bench-") as tmp:
        work = config.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in config.suites:
            start = time.perf_counter()
            result = SUITE_RUNNERS[name](config, work, device, (settings or {}).get(name))
            result.seconds = time.perf_counter() - start
            report.suites.append(result)
            if out is not None:
                report.save(out)
            if on_suite is not None:
                on_suite(result)
    return report
