"""``kelpseg validate`` and ``kelpseg catalog``: check and summarise a dataset."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kelpseg.cli.options import Json, Overwrite, Workers, out_option
from kelpseg.cli.output import print_json, refuse_existing, show_table
from kelpseg.console import console
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import TILE_SIZE
from kelpseg.io.validate import ValidationReport, validate_dataset

DataDir = Annotated[Path, typer.Argument(help="Dataset folder (download layout or flat folder).")]
Metadata = Annotated[Path | None, typer.Option(help="Metadata CSV naming the files.")]


def validate(
    data_dir: DataDir,
    workers: Workers = 0,
    size: Annotated[int, typer.Option(help="Expected tile size in pixels (0 = any).")] = TILE_SIZE,
    metadata: Metadata = None,
    json_: Json = False,
) -> None:
    """Check every file; exit code 0 when clean, 1 when problems were found."""
    catalog = build_catalog(data_dir, metadata)
    report = validate_dataset(data_dir, workers=workers or None, size=size, catalog=catalog)
    if json_:
        print_json(
            {
                "root": report.root,
                "ok": report.ok,
                "files_checked": report.files_checked,
                "problems": [asdict(p) for p in report.problems],
            }
        )
    elif report.ok:
        console.print(f"[green]ok[/]: {report.files_checked} files checked, no problems")
    else:
        _print_problems(report, data_dir)
    if not report.ok:
        raise typer.Exit(1)


def _print_problems(report: ValidationReport, data_dir: Path) -> None:
    if console.is_terminal:  # a table by kind; piped: every problem on its own line
        table = Table(title=f"validation of {data_dir}")
        for col in ("kind", "files", "example", "message"):
            table.add_column(col, overflow="fold")
        for row in report.by_kind().itertuples(index=False):
            table.add_row(str(row.kind), str(row.files), str(row.example), str(row.message))
    else:
        table = Table(title=f"validation of {data_dir}")
        for col in ("kind", "path", "message"):
            table.add_column(col)
        for p in report.problems:
            table.add_row(p.kind, p.path, p.message)
    show_table(table)
    console.print(
        f"[red]{len(report.problems)} problems[/] in {report.files_checked} files checked"
    )


def catalog(
    data_dir: DataDir,
    out: Annotated[
        Path | None, out_option("Catalog parquet to write (default: DATA_DIR/catalog.parquet).")
    ] = None,
    metadata: Metadata = None,
    overwrite: Overwrite = False,
    json_: Json = False,
) -> None:
    """Build the tile catalog, save it as parquet and print a summary."""
    target = out or Path(data_dir) / "catalog.parquet"
    cat = build_catalog(data_dir, metadata)  # a bad dataset is named before an existing output
    refuse_existing(target, overwrite)
    cat.save(target)
    counts = [
        {"split": str(split), "tiles": len(rows), "labelled": int((rows["mask_path"] != "").sum())}
        for split, rows in cat.tiles.groupby("split", sort=True)
    ]
    if json_:
        problems = [asdict(p) for p in cat.problems]
        print_json({"catalog": target, "splits": counts, "problems": problems})
        return
    table = Table(title=f"dataset {data_dir}")
    table.add_column("split")
    table.add_column("tiles", justify="right")
    table.add_column("labelled", justify="right")
    for row in counts:
        table.add_row(str(row["split"]), str(row["tiles"]), str(row["labelled"]))
    show_table(table)
    if cat.problems:
        console.print(f"[yellow]{len(cat.problems)} catalog problems[/] (run kelpseg validate)")
    console.print(f"catalog written to {target}")
