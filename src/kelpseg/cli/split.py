"""``kelpseg split``: group tiles by AOI and write leakage-free folds."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from kelpseg.cli.options import (
    Json,
    Overrides,
    Quiet,
    config_option,
    out_option,
    overwrite_option,
)
from kelpseg.cli.output import print_json, refuse_existing, show_table
from kelpseg.config import load_config
from kelpseg.console import console
from kelpseg.split.config import SplitConfig
from kelpseg.split.folds import read_exclusion_list
from kelpseg.split.pipeline import SPLIT_FILE, SplitResult, split_tiles


def _fold_table(result: SplitResult) -> Table:
    table = Table(title=f"{result.folds.mode} split: tiles per fold")
    for col in result.fold_counts.columns:
        table.add_column(col, justify="left" if col == "subset" else "right")
    for row in result.fold_counts.itertuples(index=False):
        table.add_row(*["-" if pd.isna(v) else str(v) for v in row])
    return table


def _print_summary(result: SplitResult) -> None:
    g = result.groups
    show_table(_fold_table(result))
    console.print(
        f"{g.tiles} tiles ({g.informative_tiles} with DEM structure) in {g.groups} AOI groups "
        f"(largest {g.largest_group}, {g.singletons} single tiles) at cosine >= {g.threshold}"
        f" with embedder '{g.embedder}'"
    )
    if g.exploded_groups:
        console.print(
            f"{g.exploded_groups} oversize groups split again in {g.explode_rounds} rounds; "
            f"{g.oversize_groups_left} still above max_group_size"
        )
    console.print(
        f"leak exposure: {g.test_tiles_sharing_aoi_with_train} of {g.test_tiles} test tiles "
        f"share an AOI with training tiles ({g.aois_shared_by_train_and_test} AOIs)"
    )
    f = result.folds
    if f.excluded or f.unknown_excluded:
        console.print(
            f"excluded {f.excluded} training tiles; {len(f.unknown_excluded)} listed ids unknown"
        )
    if result.aois_spanning_folds:
        console.print(
            f"[yellow]{result.aois_spanning_folds} AOIs span several folds[/] "
            "(random mode: validation scores will be optimistic)"
        )
    else:
        console.print("[green]leakage check passed[/]: no AOI spans two folds")
    console.print(f"split written to {result.out_dir / SPLIT_FILE}")


def split(
    stats: Annotated[
        Path, typer.Argument(help="EDA tile statistics parquet (kelpseg eda stats output).")
    ],
    out: Annotated[Path, out_option("Output folder (also caches embeddings).")],
    config: Annotated[Path | None, config_option("Split config YAML.")] = None,
    overrides: Overrides = None,
    exclude: Annotated[
        Path | None,
        typer.Option(help="File of tile ids (one per line, or CSV with tile_id) to keep out."),
    ] = None,
    overwrite: Annotated[
        bool, overwrite_option("Replace an earlier split in OUT (its embedding cache is reused).")
    ] = False,
    quiet: Quiet = False,
    json_: Json = False,
) -> None:
    """Group tiles of the same area by their DEM and assign folds no AOI straddles."""
    cfg = load_config(SplitConfig, config, overrides)
    excluded = read_exclusion_list(exclude) if exclude is not None else []
    refuse_existing(Path(out) / SPLIT_FILE, overwrite)
    result = split_tiles(stats, out, cfg, exclude=excluded, show_progress=not quiet)
    if json_:
        print_json(_summary_json(result))
        return
    _print_summary(result)


def _summary_json(result: SplitResult) -> dict[str, object]:
    counts = result.fold_counts.astype(object).where(result.fold_counts.notna(), None)
    return {
        "split": result.out_dir / SPLIT_FILE,
        "mode": result.folds.mode,
        "fold_counts": counts.to_dict(orient="records"),
        "groups": asdict(result.groups),
        "excluded": result.folds.excluded,
        "unknown_excluded": list(result.folds.unknown_excluded),
        "aois_spanning_folds": result.aois_spanning_folds,
    }
