"""``kelpseg validate`` and ``kelpseg catalog``: check and summarise a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kelpseg.console import console
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import TILE_SIZE
from kelpseg.io.validate import validate_dataset

DataDir = Annotated[Path, typer.Argument(help="Dataset folder (download layout or flat folder).")]


def validate(
    data_dir: DataDir,
    workers: Annotated[int, typer.Option(help="Worker processes (0 = all cores).")] = 0,
    size: Annotated[int, typer.Option(help="Expected tile size in pixels (0 = any).")] = TILE_SIZE,
    metadata: Annotated[Path | None, typer.Option(help="Metadata CSV naming the files.")] = None,
) -> None:
    """Check every file; exit code 0 when clean, 1 when problems were found."""
    catalog = build_catalog(data_dir, metadata)
    report = validate_dataset(data_dir, workers=workers or None, size=size, catalog=catalog)
    table = Table(title=f"validation of {data_dir}")
    for col in ("kind", "files", "example", "message"):
        table.add_column(col, overflow="fold")
    for row in report.by_kind().itertuples(index=False):
        table.add_row(str(row.kind), str(row.files), str(row.example), str(row.message))
    if report.ok:
        console.print(f"[green]ok[/]: {report.files_checked} files checked, no problems")
        return
    console.print(table)
    console.print(
        f"[red]{len(report.problems)} problems[/] in {report.files_checked} files checked"
    )
    raise typer.Exit(1)


def catalog(
    data_dir: DataDir,
    out: Annotated[Path | None, typer.Option(help="Where to write the catalog parquet.")] = None,
    metadata: Annotated[Path | None, typer.Option(help="Metadata CSV naming the files.")] = None,
) -> None:
    """Build the tile catalog, save it as parquet and print a summary."""
    cat = build_catalog(data_dir, metadata)
    target = cat.save(out or Path(data_dir) / "catalog.parquet")
    table = Table(title=f"dataset {data_dir}")
    table.add_column("split")
    table.add_column("tiles", justify="right")
    table.add_column("labelled", justify="right")
    for split, rows in cat.tiles.groupby("split", sort=True):
        table.add_row(str(split), str(len(rows)), str(int((rows["mask_path"] != "").sum())))
    console.print(table)
    if cat.problems:
        console.print(f"[yellow]{len(cat.problems)} catalog problems[/] (run kelpseg validate)")
    console.print(f"catalog written to {target}")
