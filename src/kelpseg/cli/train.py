"""``kelpseg train`` and ``kelpseg train-cv``: train one fold, or every fold as child runs.

The training stack (torch, Lightning, MLflow) is imported inside the commands, so the rest of
the CLI starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kelpseg.cli.options import Overrides, Quiet, config_option, out_option
from kelpseg.cli.output import show_table
from kelpseg.console import console

if TYPE_CHECKING:
    from kelpseg.nn.config import TrainConfig
    from kelpseg.nn.train import TrainResult

ConfigFile = Annotated[Path, config_option("Run config YAML (see configs/).")]
Out = Annotated[
    Path | None, out_option("Run folder (sets output_dir); one that holds a run needs --resume.")
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue from checkpoints/last.ckpt after a crash.")
]
Experiment = Annotated[str | None, typer.Option(help="MLflow experiment name.")]
RunName = Annotated[str | None, typer.Option(help="MLflow run name.")]
Devices = Annotated[
    str | None, typer.Option(help="Devices per node: a count, a list like [0,1], or auto.")
]
NumNodes = Annotated[int | None, typer.Option(help="Machines of a multi-node run.")]
Strategy = Annotated[str | None, typer.Option(help="Lightning strategy (auto, ddp ...).")]


def parse_folds(text: str | None) -> list[int] | None:
    """``--folds 0,1,2`` as a list of fold numbers; None when not given.

    Raises:
        KelpsegError: a part that is not an integer.
    """
    from kelpseg.errors import KelpsegError

    if not text:
        return None
    try:
        return [int(f) for f in text.replace(" ", "").split(",") if f]
    except ValueError:
        message = f"folds must be integers like 0,1,2, got {text!r}"
        raise KelpsegError(message, "--folds") from None


def _load(
    config: Path,
    overrides: list[str] | None,
    shortcuts: dict[str, object | None],
) -> TrainConfig:
    from kelpseg.config import load_config
    from kelpseg.nn.config import TrainConfig

    extra = [f"{key}={value}" for key, value in shortcuts.items() if value is not None]
    return load_config(TrainConfig, config, [*(overrides or []), *extra])


def _shortcuts(
    out: Path | None,
    experiment: str | None,
    run_name: str | None,
    devices: str | None,
    num_nodes: int | None,
    strategy: str | None,
) -> dict[str, object | None]:
    return {
        "output_dir": out,
        "tracking.experiment": experiment,
        "tracking.run_name": run_name,
        "trainer.devices": devices,
        "trainer.num_nodes": num_nodes,
        "trainer.strategy": strategy,
    }


def _curve(result: TrainResult, title: str) -> Table:
    columns = ("train/loss", "train/dice", "val/loss", "val/dice", "val/dice_macro", "val/iou")
    table = Table(title=title)
    for column in ("epoch", *columns):
        table.add_column(column, justify="right")
    for epoch, metrics in sorted(result.history.items()):
        table.add_row(str(epoch), *(f"{metrics[c]:.4f}" if c in metrics else "-" for c in columns))
    return table


def train(
    config: ConfigFile,
    out: Out = None,
    set_: Overrides = None,
    fold: Annotated[int | None, typer.Option(help="Validation fold (sets data.fold).")] = None,
    resume: Resume = False,
    experiment: Experiment = None,
    run_name: RunName = None,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    full_fit: Annotated[
        bool,
        typer.Option(
            "--full-fit", help="Train on all folds, no validation; keep the last checkpoint."
        ),
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Epochs (sets trainer.max_epochs).")] = None,
    quiet: Quiet = False,
) -> None:
    """Train one model on a fold of the split catalog; print its learning curve and val Dice."""
    from kelpseg.errors import KelpsegError
    from kelpseg.nn.train import train as run_training

    if full_fit and fold is not None:
        raise KelpsegError("--full-fit trains on every fold; leave out --fold", "--full-fit")
    shortcuts = _shortcuts(out, experiment, run_name, devices, num_nodes, strategy)
    shortcuts["data.fold"] = "null" if full_fit else fold
    shortcuts["trainer.max_epochs"] = epochs
    shortcuts["trainer.enable_progress_bar"] = "false" if quiet else None
    cfg = _load(config, set_, shortcuts)
    result = run_training(cfg, resume=resume)
    show_table(_curve(result, f"training of {cfg.output_dir}"))
    if result.best_dice is not None:
        console.print(f"best val Dice: [bold]{result.best_dice:.4f}[/] (epoch {result.best_epoch})")
    if result.best_dice_macro is not None:
        console.print(
            f"macro Dice (background + kelp, the 2nd-place log's val/dice) at that epoch: "
            f"{result.best_dice_macro:.4f}"
        )
    if (choice := result.threshold_choice) is not None:
        console.print(choice.summary(), highlight=False)
    console.print(f"checkpoint: {result.best_ckpt}")
    if result.run_id:
        console.print(f"MLflow run {result.run_id} in {result.tracking_uri}")


def train_cv(
    config: ConfigFile,
    out: Out = None,
    set_: Overrides = None,
    folds: Annotated[
        str | None, typer.Option(help="Folds to train, e.g. 0,1,2 (default: all).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip finished folds, resume an interrupted one.")
    ] = False,
    experiment: Experiment = None,
    run_name: RunName = None,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    quiet: Quiet = False,
) -> None:
    """Train every fold (each an MLflow child run under one parent); print each fold's Dice."""
    from kelpseg.nn.cv import train_cv as run_cv

    shortcuts = _shortcuts(out, experiment, run_name, devices, num_nodes, strategy)
    shortcuts["trainer.enable_progress_bar"] = "false" if quiet else None
    cfg = _load(config, set_, shortcuts)
    result = run_cv(cfg, folds=parse_folds(folds), resume=resume)
    table = Table(title=f"cross-validation in {cfg.output_dir}")
    columns = (
        "fold",
        "best val Dice",
        "macro Dice",
        "epoch",
        "threshold",
        "Dice there",
        "checkpoint",
    )
    for column in columns:
        table.add_column(column)
    for k, fold_result in sorted(result.folds.items()):
        dice = "-" if fold_result.best_dice is None else f"{fold_result.best_dice:.4f}"
        macro = "-" if fold_result.best_dice_macro is None else f"{fold_result.best_dice_macro:.4f}"
        choice = fold_result.threshold_choice
        picked = "-" if choice is None else f"{choice.threshold:.2f}"
        there = "-" if choice is None or choice.val_dice is None else f"{choice.val_dice:.4f}"
        table.add_row(
            str(k), dice, macro, str(fold_result.best_epoch), picked, there,
            str(fold_result.best_ckpt),
        )  # fmt: skip
    show_table(table)
    console.print(f"mean val Dice: [bold]{result.mean_dice:.4f}[/] ± {result.std_dice:.4f}")
    console.print(f"mean macro Dice (the 2nd-place log's metric): {result.mean_dice_macro:.4f}")
    if result.parent_run_id:
        console.print(f"MLflow parent run {result.parent_run_id}")
