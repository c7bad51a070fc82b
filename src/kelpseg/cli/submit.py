"""``kelpseg submit``: pack test-set masks into the competition tar, or check an archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kelpseg.cli.options import Overwrite, out_option
from kelpseg.cli.output import refuse_existing, show_table
from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.inference.submission import (
    InvalidPredictionsError,
    check_submission,
    submission_tile_ids,
    write_submission,
)
from kelpseg.io.catalog import Problem
from kelpseg.io.tiles import TILE_SIZE

_SHOWN = 40


def print_problems(problems: list[Problem], title: str) -> None:
    """A table of the first problems and a count by kind."""
    table = Table(title=title)
    for col in ("kind", "where", "message"):
        table.add_column(col, overflow="fold")
    for p in problems[:_SHOWN]:
        table.add_row(p.kind, p.path, p.message)
    show_table(table)
    if len(problems) > _SHOWN:
        console.print(f"... and {len(problems) - _SHOWN} more")
    kinds: dict[str, int] = {}
    for p in problems:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    summary = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
    console.print(f"[red]{len(problems)} problems[/] ({summary})")


def submit(
    pred_dir: Annotated[
        Path | None, typer.Argument(help="Folder of <tile_id>_kelp.tif test-set masks.")
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(help="Dataset folder or catalog parquet that names the test tiles."),
    ] = None,
    out: Annotated[Path, out_option("The tar to write.")] = Path("submission.tar"),
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Check an existing archive instead (exit 1 when wrong)."),
    ] = None,
    size: Annotated[int, typer.Option(help="Expected mask size in pixels.")] = TILE_SIZE,
    overwrite: Overwrite = False,
) -> None:
    """Write the submission tar (validated, atomic), or check one with --check."""
    if check is not None:
        if pred_dir is not None:
            raise KelpsegError("give either PRED_DIR (to write) or --check FILE, not both")
        problems = check_submission(check, catalog, size)
        if problems:
            print_problems(problems, f"problems in {check}")
            raise typer.Exit(1)
        extent = "every test tile present" if catalog is not None else "no catalog given"
        console.print(f"[green]ok[/]: {check} is a valid submission ({extent})")
        return
    if pred_dir is None or catalog is None:
        raise KelpsegError("writing a submission needs PRED_DIR and --catalog")
    test_ids = submission_tile_ids(catalog)
    refuse_existing(out, overwrite)
    try:
        path = write_submission(pred_dir, test_ids, out, size)
    except InvalidPredictionsError as exc:
        print_problems(exc.problems, f"cannot submit {pred_dir}")
        raise typer.Exit(1) from exc
    problems = check_submission(path, test_ids, size)
    if problems:  # pragma: no cover - write_submission validated the same things
        print_problems(problems, f"problems in {path}")
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: wrote {path} ({path.stat().st_size:,} bytes), checked")
