"""``kelpseg prepare``: pack a dataset into the memory-mapped store training reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kelpseg.cli.options import Quiet, out_option, threads_option
from kelpseg.cli.output import show_table
from kelpseg.console import console


def prepare(
    source: Annotated[
        Path, typer.Argument(help="Catalog parquet (kelpseg catalog / split) or dataset folder.")
    ],
    out: Annotated[Path, out_option("Store folder to write (an interrupted one resumes).")],
    split: Annotated[
        list[str] | None,
        typer.Option("--split", help="Catalog split to pack (repeatable; default train and test)."),
    ] = None,
    threads: Annotated[int, threads_option("Threads decoding GeoTIFFs (0 = one per core).")] = 0,
    chunk_size: Annotated[
        int, typer.Option(help="Tiles written between resumable checkpoints.")
    ] = 64,
    verify: Annotated[
        bool, typer.Option("--verify", help="Re-hash every byte of the finished store.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Pack tiles and labels into a memory-mapped store; re-running resumes or is a no-op."""
    from kelpseg.nn.data.store import prepare_store  # torch is imported only when needed
    from kelpseg.nn.data.store_format import verify_store

    store = prepare_store(
        source,
        out,
        splits=tuple(split or ("train", "test")),
        chunk_size=chunk_size,
        workers=threads,
        show_progress=not quiet,
    )
    if verify:
        verify_store(out)
    table = Table(title=f"prepared store {out}")
    for col in ("split", "tiles", "size", "labelled", "GB"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for name, part in sorted(store.splits.items()):
        size = part.images_path.stat().st_size + (
            part.masks_path.stat().st_size if part.masks_path else 0
        )
        table.add_row(
            name,
            str(len(part)),
            f"{part.height}x{part.width}",
            "yes" if part.labelled else "no",
            f"{size / 1e9:.3f}",
        )
    show_table(table)
    console.print(f"store {'verified and ' if verify else ''}ready at {out}")
