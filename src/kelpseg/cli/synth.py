"""``kelpseg synth``: generate a demo dataset in the Kelp Wanted layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kelpseg.cli.options import (
    Overrides,
    Quiet,
    Workers,
    config_option,
    out_option,
    overwrite_option,
)
from kelpseg.cli.output import show_table
from kelpseg.config import apply_overrides, read_yaml, validate_config
from kelpseg.console import console
from kelpseg.synth import SynthConfig, SynthResult, generate_dataset
from kelpseg.synth.generator import PREVIEW_NAME
from kelpseg.synth.preview import plot_preview


def build_config(
    config_file: Path | None, overrides: list[str], options: dict[str, Any]
) -> SynthConfig:
    """Defaults, then the YAML file, then ``--set key=value``, then explicit options."""
    data = read_yaml(config_file) if config_file is not None else {}
    data = apply_overrides(data, overrides)
    data.update({k: v for k, v in options.items() if v is not None})
    return validate_config(SynthConfig, data, str(config_file) if config_file else None)


def summary_table(result: SynthResult) -> Table:
    """The headline statistics of a generated dataset as a rich table."""
    s = result.stats()
    table = Table(title=f"Demo data in {result.out_dir}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("tiles (train / test)", f"{s['tiles']} ({s['train_tiles']} / {s['test_tiles']})"),
        ("AOIs, images per AOI", f"{s['aois']}, {s['tiles_per_aoi']:.1f}"),
        ("test-only AOIs", f"{s['test_only_aois']}"),
        (
            "test tiles in AOIs shared with train",
            f"{s['test_tiles_in_shared_aois']} (in {s['shared_aois']} AOIs)",
        ),
        ("kelp pixels", f"{100 * s['kelp_pixel_share']:.2f}%"),
        ("tiles without kelp", f"{100 * s['no_kelp_tile_share']:.0f}%"),
        ("cloudy / SLC-off tiles", f"{s['cloudy_tiles']} / {s['slc_off_tiles']}"),
        ("noisy / mislabelled train labels", f"{s['noisy_labels']} / {s['mislabelled_tiles']}"),
        ("tiles with a shifted DEM", f"{s['misaligned_tiles']}"),
        ("time", f"{result.seconds:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def synth(
    out: Annotated[Path, out_option("Folder to write the dataset to.")],
    n_aoi: Annotated[
        int | None, typer.Option("--n-aoi", min=1, help="Areas of interest (default 40).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Random seed (default 0).")
    ] = None,
    size: Annotated[
        int | None, typer.Option("--size", min=32, help="Tile size in pixels (default 350).")
    ] = None,
    tiles_per_aoi: Annotated[
        tuple[int, int] | None,
        typer.Option("--tiles-per-aoi", help="Min and max images per AOI (default 3 12)."),
    ] = None,
    test_fraction: Annotated[
        float | None, typer.Option("--test-fraction", help="Share of test tiles (default 0.2).")
    ] = None,
    mislabel_rate: Annotated[
        float | None,
        typer.Option("--mislabel-rate", help="Share of wholly wrong train labels (default 0.02)."),
    ] = None,
    misaligned_share: Annotated[
        float | None,
        typer.Option(
            "--misaligned-share", help="Share of tiles with a shifted DEM (default 0.03)."
        ),
    ] = None,
    config_file: Annotated[Path | None, config_option("YAML file of SynthConfig settings.")] = None,
    overrides: Overrides = None,
    workers: Workers = 0,
    preview: Annotated[
        bool, typer.Option("--preview", help=f"Also draw {PREVIEW_NAME}, a grid of tiles.")
    ] = False,
    overwrite: Annotated[
        bool, overwrite_option("Replace a previous output in a non-empty --out.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Generate a demo dataset in the Kelp Wanted layout (plus its truth table)."""
    config = build_config(
        config_file,
        overrides or [],
        {
            "n_aoi": n_aoi,
            "seed": seed,
            "tile_size": size,
            "tiles_per_aoi": tiles_per_aoi,
            "test_fraction": test_fraction,
            "wrong_tile_rate": mislabel_rate,
            "misaligned_share": misaligned_share,
        },
    )
    result = generate_dataset(
        out, config, workers=workers or None, overwrite=overwrite, show_progress=not quiet
    )
    show_table(summary_table(result))
    if preview:
        png = plot_preview(out, out / PREVIEW_NAME)
        console.print(f"preview: {png}")
