"""``kelpseg eda stats | plot | report``: tile statistics, tile pictures and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kelpseg.cli.options import (
    Overrides,
    Overwrite,
    Quiet,
    Workers,
    config_option,
    dask_scheduler,
    out_option,
    overwrite_option,
    scheduler_option,
    split_list,
)
from kelpseg.cli.output import refuse_existing, show_table
from kelpseg.config import load_config, save_config
from kelpseg.console import console
from kelpseg.eda.config import EdaConfig
from kelpseg.eda.plots import describe_table
from kelpseg.eda.report import REPORT_FILE, write_report
from kelpseg.eda.runner import CONFIG_FILE, STATS_FILE, run_stats
from kelpseg.eda.tile_plots import plot_tiles
from kelpseg.io.catalog import build_catalog

app = typer.Typer(no_args_is_help=True, help="Exploratory data analysis of a tile dataset.")

DataDir = Annotated[Path, typer.Argument(help="Dataset folder (download layout or flat folder).")]
ConfigFile = Annotated[Path | None, config_option("EDA config YAML.")]
Metadata = Annotated[Path | None, typer.Option(help="Metadata CSV naming the files.")]


def stats(
    data_dir: DataDir,
    out: Annotated[Path, out_option("Output folder.")],
    scheduler: Annotated[str, scheduler_option("local")] = "local",
    workers: Workers = 0,
    plots: Annotated[bool, typer.Option(help="Also save distribution plots.")] = True,
    config: ConfigFile = None,
    overrides: Overrides = None,
    metadata: Metadata = None,
    overwrite: Annotated[
        bool, overwrite_option("Recompute a finished run (an interrupted one resumes anyway).")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Compute per-tile statistics on Dask and save them as parquet with summaries.

    Exit code 1 when tiles were skipped (listed in OUT/failures.csv).
    """
    cfg = load_config(EdaConfig, config, overrides)
    refuse_existing(Path(out) / STATS_FILE, overwrite)
    run = run_stats(
        data_dir,
        out,
        cfg,
        scheduler=dask_scheduler(scheduler, sync=NotImplemented, local=None, command="eda stats"),
        workers=workers or None,
        metadata=metadata,
        plots=plots,
        show_progress=not quiet,
    )
    show_table(describe_table(run.describe, "all"))
    if len(run.failures):
        table = Table(title=f"{len(run.failures)} tiles failed")
        table.add_column("tile_id")
        table.add_column("error", overflow="fold")
        for row in run.failures.head(20).itertuples(index=False):
            table.add_row(str(row.tile_id), str(row.error))
        show_table(table)
    if run.catalog_problems:
        console.print(f"[yellow]{run.catalog_problems} catalog problems[/] (run kelpseg validate)")
    console.print(
        f"{len(run.stats)} tiles, {len(run.failures)} failed; statistics written to {out}"
    )
    if len(run.failures):
        raise typer.Exit(1)


def plot(
    data_dir: DataDir,
    out: Annotated[Path, out_option("Output folder for the PNGs.")],
    tiles: Annotated[
        list[str] | None,
        typer.Option(help="Tile ids to plot (repeatable or comma-separated)."),
    ] = None,
    sample: Annotated[int, typer.Option(help="Plot this many random tiles.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the random sample.")] = 0,
    channels: Annotated[
        str | None, typer.Option(help="Extra channel panels, comma-separated (e.g. NDVI).")
    ] = None,
    config: ConfigFile = None,
    overrides: Overrides = None,
    metadata: Metadata = None,
    overwrite: Annotated[
        bool, overwrite_option("Write into a folder that already holds plots.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Plot tiles: composites, DEM, QA, NDVI and kelp mask; exit 1 if a tile failed."""
    cfg = load_config(EdaConfig, config, overrides)
    if channels is not None:
        cfg.plots.channels = split_list([channels])
    ids = split_list(tiles)
    catalog = build_catalog(data_dir, metadata)
    refuse_existing(Path(out), overwrite)
    written, errors = plot_tiles(
        catalog.tiles,
        out,
        cfg,
        tile_ids=ids or None,
        sample=sample or None,
        seed=seed,
        show_progress=not quiet,
    )
    save_config(cfg, Path(out) / CONFIG_FILE)
    for error in errors:
        console.print(f"[red]failed:[/] {error}", highlight=False)
    console.print(f"{len(written)} PNG files written to {out}")
    if errors:
        raise typer.Exit(1)


def report(
    stats_dir: Annotated[Path, typer.Argument(help="Output folder of 'kelpseg eda stats'.")],
    out: Annotated[Path | None, out_option("HTML file (default: STATS_DIR/report.html).")] = None,
    config: ConfigFile = None,
    overrides: Overrides = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Write one self-contained HTML report: tables, distributions and a tile gallery."""
    cfg = None
    if config is not None or overrides:
        saved = Path(stats_dir) / CONFIG_FILE
        base = config if config is not None else (saved if saved.is_file() else None)
        cfg = load_config(EdaConfig, base, overrides)
    refuse_existing(out or Path(stats_dir) / REPORT_FILE, overwrite)
    target = write_report(stats_dir, out, cfg, show_progress=not quiet)
    console.print(f"report written to {target}")


app.command("stats", help="Per-tile statistics on Dask (parquet, describe, plots).")(stats)
app.command("plot", help="Pictures of chosen or sampled tiles.")(plot)
app.command("report", help="One self-contained HTML report of a stats folder.")(report)
