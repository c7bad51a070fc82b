"""Benchmark suite: each figure measured beside its floor or baseline in the same run.

Typical use from a notebook::

    from kelpseg.bench import BenchConfig, run_bench

    report = run_bench(BenchConfig(suites=["train"], quick=True), "results.json")
    report.figures["train.end_to_end"].ratio

Suites (``docs/benchmarks.md``): ``data`` (prepared store and GeoTIFF decoding vs memcpy),
``features`` (24-channel input building vs one read + one write), ``train`` (end to end vs
model only, model only vs the FLOP rate), ``infer`` (end to end vs model only, 1 and 10 models)
and ``group`` (AOI grouping vs brute force).
"""

from kelpseg.bench.compare import Change, Comparison, compare_results
from kelpseg.bench.config import SUITES, BenchConfig
from kelpseg.bench.measure import Figure, SuiteResult
from kelpseg.bench.runner import SUITE_RUNNERS, BenchReport, run_bench
from kelpseg.bench.tables import comparison_table, print_suite, suite_table

__all__ = [
    "SUITES",
    "SUITE_RUNNERS",
    "BenchConfig",
    "BenchReport",
    "Change",
    "Comparison",
    "Figure",
    "SuiteResult",
    "compare_results",
    "comparison_table",
    "print_suite",
    "run_bench",
    "suite_table",
]
