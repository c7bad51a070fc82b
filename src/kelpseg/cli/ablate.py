"""``kelpseg ablate``: the base config and each variant of a spec, same folds, seeds and budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kelpseg.cli.options import Overrides, Quiet, config_option, out_option
from kelpseg.console import console


def ablate(
    config: Annotated[Path, config_option("Base training config YAML.")],
    vary: Annotated[Path, typer.Option("--vary", help="Ablation spec YAML (variants, seeds).")],
    out: Annotated[Path, out_option("Ablation folder (runs, ablation.csv, ablation.md); resumed.")],
    set_: Overrides = None,
    quiet: Quiet = False,
) -> None:
    """Train the base and every variant; print the table of val Dice and gains over base."""
    from kelpseg.ablate import load_spec, run_ablation

    result = run_ablation(config, load_spec(vary), out, list(set_ or []), show_progress=not quiet)
    trained = int(result.runs["trained"].sum())
    console.print(result.markdown.read_text(), highlight=False, markup=False)
    console.print(
        f"{trained} run(s) trained, {len(result.runs) - trained} read back; "
        f"table in {result.csv} and {result.markdown}"
    )
