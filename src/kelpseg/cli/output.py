"""What commands print, for people and for scripts alike.

On a terminal a table is a rich table; piped to a file or a program it is plain tab-separated
lines, one row a line, so no path is ever wrapped across lines. ``--json`` prints one JSON
document on stdout and nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from kelpseg.console import console
from kelpseg.errors import KelpsegError


def show_table(table: Table) -> None:
    """A rich table on a terminal; otherwise ``# title``, a header and one line per row (TSV)."""
    if console.is_terminal:
        console.print(table)
        return
    if table.title:
        typer.echo(f"# {table.title}")
    rows = [[_plain(col.header) for col in table.columns]]
    cells = [[_plain(c) for c in col.cells] for col in table.columns]
    rows += [list(row) for row in zip(*cells, strict=True)]
    if not table.show_header:
        rows = rows[1:]
    for row in rows:
        typer.echo("\t".join(row))


def _plain(value: Any) -> str:
    text = value.plain if hasattr(value, "plain") else str(value)
    return " ".join(text.split())  # tabs and newlines would break the one-row-a-line format


def print_json(data: Any) -> None:
    """``data`` as one JSON document on stdout (paths and numpy scalars as plain values).

    NaN and infinities, which JSON lacks, become ``null``.
    """
    plain = json.loads(json.dumps(data, default=_jsonable), parse_constant=lambda _: None)
    typer.echo(json.dumps(plain, indent=2, allow_nan=False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy and pandas scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def exists(path: Path) -> bool:
    """Whether ``path`` is an output already there: a file, or a folder that is not empty."""
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless ``--overwrite`` was given.

    Raises:
        KelpsegError: ``path`` exists (exit code 2; the old output is left untouched).
    """
    if not overwrite and exists(Path(path)):
        raise KelpsegError(f"{path} exists; pass --overwrite")
