"""``kelpseg bench``: run the benchmark suites; ``kelpseg bench compare``: check two results.

The benchmark stack (torch, Lightning, the suites) is imported inside the commands, so the rest
of the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from kelpseg.cli.options import Json, Overwrite, Threads, config_option, out_option, split_list
from kelpseg.cli.output import print_json, refuse_existing, show_table
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

    names = split_list(values or ["all"])
    return list(SUITES) if "all" in names else list(dict.fromkeys(names))


@app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    suite: SuiteOption = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes and a small model (about a minute).")
    ] = False,
    out: Annotated[Path, out_option("Results JSON.")] = Path("bench-results.json"),
    config: Annotated[
        Path | None, config_option("Training config YAML the train suite measures.")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed repeats (figures are medians).")] = 5,
    warmup: Annotated[int, typer.Option(help="Untimed repeats first.")] = 1,
    steps: Annotated[int | None, typer.Option(help="Training steps per timed window.")] = None,
    warmup_steps: Annotated[int | None, typer.Option(help="Untimed training steps first.")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep generated data here.")] = None,
    threads: Threads = 0,
    overwrite: Overwrite = False,
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

    refuse_existing(out, overwrite)
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
    json_: Json = False,
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
    if json_:
        changes = [{**asdict(c), "relative": c.relative} for c in result.changes]
        print_json(
            {
                "tolerance": result.tolerance,
                "changes": changes,
                "regressions": [
                    {"figure": c.figure, "metric": c.metric} for c in result.regressions
                ],
                "missing": result.missing,
                "added": result.added,
                "warnings": result.warnings,
            }
        )
        if result.regressions:
            raise typer.Exit(1)
        return
    show_table(comparison_table(result))
    for line in result.warnings:
        console.print(f"[yellow]warning[/]: {line}")
    for name in result.missing:
        console.print(f"[yellow]missing[/] in {new}: {name}")
    if result.regressions:
        console.print(f"[red]{len(result.regressions)} regression(s)[/]")
        raise typer.Exit(1)
    console.print("[green]no regressions[/]")
