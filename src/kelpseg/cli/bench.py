"""``kelpseg bench``: run the benchmark suites; ``kelpseg bench compare``: check two results.

The benchmark stack (torch, Lightning, the suites) is imported inside the commands, so the rest
of the CLI starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kelpseg.console import console

app = typer.Typer(add_completion=False, rich_markup_mode="rich")

SuiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--suite",
        "-s",
        help="data, features, train, infer, group or all (repeatable, or comma-separated).",
    ),
]


def _suites(values: list[str] | None) -> list[str]:
    from kelpseg.bench.config import SUITES

    names = [n.strip() for v in (values or ["all"]) for n in v.split(",") if n.strip()]
    return list(SUITES) if "all" in names else list(dict.fromkeys(names))


@app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    suite: SuiteOption = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes and a small model (about a minute).")
    ] = False,
    out: Annotated[Path, typer.Option(help="Results JSON.")] = Path("bench-results.json"),
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Training config YAML the train suite measures."),
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed repeats (figures are medians).")] = 5,
    warmup: Annotated[int, typer.Option(help="Untimed repeats first.")] = 1,
    steps: Annotated[int | None, typer.Option(help="Training steps per timed window.")] = None,
    warmup_steps: Annotated[int | None, typer.Option(help="Untimed training steps first.")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep generated data here.")] = None,
    threads: Annotated[int, typer.Option(help="Torch CPU threads (0: default).")] = 0,
) -> None:
    """Measure each figure beside its floor in the same run; print the ratios; write JSON."""
    if ctx.invoked_subcommand is not None:
        return
    from kelpseg.bench import BenchConfig, run_bench
    from kelpseg.bench.tables import print_suite
    from kelpseg.config import validate_config

    settings = validate_config(
        BenchConfig,
        {
            "suites": _suites(suite),
            "device": device,
            "quick": quick,
            "repeats": repeats,
            "warmup": warmup,
            "train_config": config,
            "train_steps": steps,
            "train_warmup_steps": warmup_steps,
            "workdir": workdir,
            "threads": threads,
        },
    )

    report = run_bench(settings, out, on_suite=print_suite)
    env = report.environment
    where = (env.get("gpu") or {}).get("name") or f"{env['cpu']} ({env['cores']} cores)"
    console.print(f"measured on {where}; results written to {out}")


@app.command("compare")
def compare(
    old: Annotated[Path, typer.Argument(help="Baseline results JSON.")],
    new: Annotated[Path, typer.Argument(help="Results JSON to check.")],
    tolerance: Annotated[float, typer.Option(help="Allowed relative drop (0.15 = 15%).")] = 0.15,
    metric: Annotated[
        str, typer.Option(help="value, ratio or both: which numbers must not drop.")
    ] = "both",
) -> None:
    """Print each figure's change; exit code 1 when one dropped beyond the tolerance."""
    from kelpseg.bench import BenchReport, compare_results, comparison_table
    from kelpseg.errors import KelpsegError

    if metric not in ("value", "ratio", "both"):
        raise KelpsegError(f"--metric must be value, ratio or both, not {metric!r}")
    metrics = ("value", "ratio") if metric == "both" else (metric,)
    result = compare_results(
        BenchReport.load(old),
        BenchReport.load(new),
        tolerance,
        metrics,  # type: ignore[arg-type]
    )
    console.print(comparison_table(result))
    for line in result.warnings:
        console.print(f"[yellow]warning[/]: {line}")
    for name in result.missing:
        console.print(f"[yellow]missing[/] in {new}: {name}")
    if result.regressions:
        console.print(f"[red]{len(result.regressions)} regression(s)[/]")
        raise typer.Exit(1)
    console.print("[green]no regressions[/]")
