"""``kelpseg tune``: run a worker of a hyperparameter study, or write a study's best config.

The tuning stack (Optuna, torch, Lightning, MLflow) is imported inside the command, so the rest
of the CLI starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from kelpseg.cli.options import Overrides, Quiet, config_option, out_option
from kelpseg.cli.output import show_table
from kelpseg.console import console
from kelpseg.errors import KelpsegError

if TYPE_CHECKING:
    from kelpseg.tune.summary import StudySummary

DEFAULT_ROOT = Path("runs/tune")


def tune(
    config: Annotated[Path | None, config_option("Base training config YAML.")] = None,
    space: Annotated[
        Path | None, typer.Option("--space", help="Search space YAML (see configs/spaces/).")
    ] = None,
    trials: Annotated[
        int, typer.Option("--trials", "-n", help="Trials of the study in total, all workers.")
    ] = 20,
    storage: Annotated[
        str | None,
        typer.Option(
            help="sqlite:///file.db, postgresql://user@host/db, journal:/shared/study.log "
            "(default: sqlite:///<out>/optuna.db)."
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study name; workers with one name share the study."),
    ] = None,
    sampler: Annotated[str, typer.Option(help="tpe, random or cmaes.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    seed: Annotated[int | None, typer.Option(help="Sampler seed (reproducible study).")] = None,
    direction: Annotated[str, typer.Option(help="maximize (val Dice) or minimize.")] = "maximize",
    out: Annotated[
        Path | None, out_option("Study folder (default: runs/tune/<study>); shared, resumed.")
    ] = None,
    set_: Overrides = None,
    best: Annotated[
        str | None,
        typer.Option("--best", help="Write this study's best config to <out>/best.yaml; exit."),
    ] = None,
    heartbeat: Annotated[
        int, typer.Option(help="Seconds between a running trial's heartbeats.")
    ] = 60,
    keep_checkpoints: Annotated[
        bool, typer.Option("--keep-checkpoints", help="Keep every trial's checkpoints/.")
    ] = False,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Draw the summary plots at the end.")
    ] = True,
    quiet: Quiet = False,
) -> None:
    """Search hyperparameters with Optuna; start more workers on one --storage to share it."""
    if best is not None:
        _write_best(best, storage, out)
        return
    if config is None or space is None:
        raise KelpsegError("--config and --space are needed (or --best STUDY)")
    from kelpseg.tune.study import run_study

    summary = run_study(
        config, space, trials, storage=storage, study_name=study, sampler=sampler, seed=seed,
        pruner=pruner, direction=_direction(direction), out_dir=out, overrides=set_ or [],
        heartbeat_interval=heartbeat, keep_checkpoints=keep_checkpoints, plots=plots,
        show_progress=not quiet,
    )  # fmt: skip
    show_table(_table(summary))
    if summary.best_config is not None:
        console.print(f"best config: {summary.best_config}")
        console.print(f"retrain it:  kelpseg train --config {summary.best_config}")
    console.print(f"summary: {summary.summary_dir}")
    if summary.parent_run_id:
        console.print(f"MLflow parent run {summary.parent_run_id}")


def _direction(text: str) -> Literal["maximize", "minimize"]:
    if text not in ("maximize", "minimize"):
        raise KelpsegError(f"--direction must be maximize or minimize, not {text!r}")
    return "maximize" if text == "maximize" else "minimize"


def _write_best(study: str, storage: str | None, out: Path | None) -> None:
    from kelpseg.tune.best import write_best_config
    from kelpseg.tune.storage import default_storage_url

    folder = out or DEFAULT_ROOT / study
    url = storage or default_storage_url(folder)
    if storage is None and not (folder / "optuna.db").is_file():
        raise KelpsegError("no study storage here; pass --storage or --out", folder / "optuna.db")
    path = write_best_config(url, study, folder / "best.yaml")
    console.print(f"best config of study {study} written to {path}")
    console.print(f"retrain it: kelpseg train --config {path}")


def _table(summary: StudySummary) -> Table:
    table = Table(title=f"study {summary.study_name}", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    counts = (
        f"{summary.n_trials} finished: {summary.n_complete} complete, {summary.n_pruned} "
        f"pruned, {summary.n_failed} failed; {summary.n_running} running"
    )
    table.add_row("trials", counts)
    if summary.best_value is not None:
        table.add_row("best", f"{summary.best_value:.4f} (trial {summary.best_trial})")
    for key, value in summary.best_values.items():
        table.add_row(key, str(value))
    top = list(summary.importances.items())[:5]
    if top:
        table.add_row("importance", ", ".join(f"{k} {v:.2f}" for k, v in top))
    return table
