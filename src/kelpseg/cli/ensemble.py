"""``kelpseg ensemble select``: pick and weight members on one fold, report on another."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from kelpseg.cli.options import Overrides, Overwrite, config_option, out_option
from kelpseg.cli.output import refuse_existing
from kelpseg.config import apply_overrides, read_yaml, validate_config
from kelpseg.console import console
from kelpseg.errors import KelpsegError

SPEC_FILE = "ensemble.yaml"

app = typer.Typer(no_args_is_help=True, help="Ensembles of saved predictions.")


def parse_member(text: str) -> dict[str, Any]:
    """``DIR``, ``DIR1,DIR2`` or ``NAME=DIR1,DIR2`` -> a member entry (name: the first folder's)."""
    name, _, folders = text.rpartition("=") if "=" in text else ("", "", text)
    paths = [p.strip() for p in folders.split(",") if p.strip()]
    if not paths:
        raise KelpsegError(f"member {text!r} names no prediction folder", "--member")
    return {"name": name or Path(paths[0]).name, "predictions": paths}


def _folds(items: list[int] | None) -> list[int] | None:
    return list(items) if items else None


def select(
    catalog: Annotated[Path | None, typer.Option(help="Split catalog (labels, folds).")] = None,
    out: Annotated[Path, out_option("Output folder (ensemble.yaml, selection.json).")] = Path(
        "ensemble"
    ),
    member: Annotated[
        list[str] | None,
        typer.Option(help="Member predictions: DIR, DIR1,DIR2 or NAME=DIR1,DIR2; repeat."),
    ] = None,
    select_fold: Annotated[
        list[int] | None, typer.Option(help="Fold(s) the selection reads; repeat.")
    ] = None,
    report_fold: Annotated[
        list[int] | None, typer.Option(help="Fold(s) the gain is reported on; repeat.")
    ] = None,
    config: Annotated[Path | None, config_option("SelectionConfig YAML.")] = None,
    set_: Overrides = None,
    overwrite: Overwrite = False,
) -> None:
    """Greedy selection with replacement + weight optimisation, threshold tuned jointly."""
    from kelpseg.inference.selection_run import SelectionConfig, run_selection

    data = apply_overrides(read_yaml(config) if config else {}, list(set_ or []))
    if member:
        data["members"] = [*data.get("members", []), *(parse_member(m) for m in member)]
    flags = {"catalog": catalog, "select_folds": _folds(select_fold)}
    flags["report_folds"] = _folds(report_fold)
    data.update({k: v for k, v in flags.items() if v is not None})
    cfg = validate_config(SelectionConfig, data, str(config) if config else "command line")
    refuse_existing(Path(out) / SPEC_FILE, overwrite)
    result = run_selection(cfg, out)
    rep = result.report
    for name, weight in rep["weights"].items():
        if weight > 0:
            console.print(f"  {name}: weight {weight:.3f}", highlight=False)
    sel, honest = rep["select"], rep["report"]
    console.print(
        f"selection fold(s) {cfg.select_folds}: ensemble Dice {sel['ensemble_dice']:.4f} "
        f"(best single {sel['best_single']} {max(sel['single_dice'].values()):.4f}), "
        f"threshold {rep['threshold']:.3f}"
    )
    console.print(
        f"report fold(s) {cfg.report_folds}: ensemble Dice {honest['ensemble_dice']:.4f}, "
        f"best single {honest['best_single_dice']:.4f}, gain {honest['gain']:+.4f}"
    )
    console.print(f"ensemble spec: {result.out_dir / SPEC_FILE} (kelpseg predict --config)")
    spec_path = shlex.quote(str(result.out_dir / SPEC_FILE))
    console.print(
        f"export it: kelpseg export --ensemble {spec_path} --name NAME --version 1.0.0 --out DIR",
        highlight=False,
        soft_wrap=True,
    )


app.command("select", help="Select and weight ensemble members on out-of-fold probabilities.")(
    select
)
