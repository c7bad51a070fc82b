"""Rich tables of a suite's figures and of a comparison (the CLI and the scripts print them)."""

from __future__ import annotations

from rich.table import Table

from kelpseg.bench.compare import Comparison
from kelpseg.bench.measure import SuiteResult
from kelpseg.console import console


def _number(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def suite_table(result: SuiteResult) -> Table:
    """One row per figure: value, reference and their ratio, target; references in a caption."""
    table = Table(title=f"{result.suite} ({result.seconds:.0f} s)", title_justify="left")
    for column in ("figure", "value", "reference", "unit", "ratio", "target"):
        table.add_column(column, justify="left" if column in ("figure", "unit") else "right")
    references: dict[str, int] = {}
    for f in result.figures:
        key = f"{f.reference_name}; ratio = {f.meaning}"
        mark = references.setdefault(key, len(references) + 1)
        target = ""
        if f.target is not None:
            target = f">= {f.target:.2f} " + ("met" if f.target_met else "MISSED")
        table.add_row(
            f.name, _number(f.value), f"{_number(f.reference)} [{mark}]", f.unit,
            f"{f.ratio:.3f}", target,
        )  # fmt: skip
    table.caption = "  ".join(f"[{i}] {text}" for text, i in references.items())
    table.caption_justify = "left"
    return table


def comparison_table(comparison: Comparison) -> Table:
    """One row per figure and metric: old, new, change, and a flag on regressions."""
    title = f"changes (regression: a drop of more than {comparison.tolerance:.0%})"
    table = Table(title=title, title_justify="left")
    for column in ("figure", "metric", "old", "new", "change", ""):
        table.add_column(column, justify="left" if column in ("figure", "metric") else "right")
    for c in comparison.changes:
        flag = "[red]REGRESSION[/]" if c.regression else ""
        table.add_row(
            c.figure, c.metric, _number(c.old), _number(c.new), f"{c.relative:+.1%}", flag
        )
    return table


def print_suite(result: SuiteResult) -> None:
    """Print a suite's table and its notes to the console."""
    console.print(suite_table(result))
    for note in result.notes:
        console.print(f"  note: {note}")
