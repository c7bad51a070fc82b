"""Shared rich consoles and progress bars, used by library functions and the CLI alike."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console()
# Piped to a file or a program, a line is never wrapped: a path split over lines breaks scripts.
console.soft_wrap = not console.is_terminal
err_console = Console(stderr=True)


def progress(disable: bool = False) -> Progress:
    """A rich progress bar with count, elapsed and remaining time."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=disable,
        transient=False,
    )
