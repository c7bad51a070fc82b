"""``kelpseg stats`` and ``kelpseg channels``: band statistics and the channel registry.

``kelpseg.features`` needs torch and spyndex (the ``train`` extra); it is imported inside the
commands, so the rest of the CLI starts fast and works without them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kelpseg.cli.options import (
    Overrides,
    Overwrite,
    Quiet,
    Threads,
    config_option,
    dask_scheduler,
    out_option,
    scheduler_option,
)
from kelpseg.cli.output import refuse_existing, show_table
from kelpseg.config import load_config, save_config, validate_config
from kelpseg.console import console
from kelpseg.errors import MissingExtraError

if TYPE_CHECKING:
    from kelpseg.features.stats import BandStats


def _require_features() -> None:
    for module in ("torch", "spyndex"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("train", module)


def stats(
    source: Annotated[Path, typer.Argument(help="Dataset folder, or a catalog parquet.")],
    out: Annotated[Path, out_option("Where to write the statistics JSON.")] = Path("stats.json"),
    channels: Annotated[
        str | None, typer.Option(help="Comma-separated channels (default: the config's).")
    ] = None,
    config: Annotated[Path | None, config_option("FeatureConfig YAML file.")] = None,
    overrides: Overrides = None,
    split: Annotated[str, typer.Option(help="Tiles to use: train, test or all.")] = "train",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Tiles per batch.")] = 8,
    quantile_bins: Annotated[
        int, typer.Option(help="Histogram buckets per power of two (error 1/(2*bins)).")
    ] = 256,
    scheduler: Annotated[str, scheduler_option("sync")] = "sync",
    threads: Threads = 0,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Compute per-channel band statistics in one streaming pass and write them as JSON."""
    _require_features()
    import torch

    from kelpseg.features.compute_stats import compute_band_stats, dataset_tiles
    from kelpseg.features.config import FeatureConfig

    if threads > 0:
        torch.set_num_threads(threads)

    cfg = load_config(FeatureConfig, config, overrides or [])
    if channels:
        names = [c.strip() for c in channels.split(",") if c.strip()]
        cfg = validate_config(FeatureConfig, {**cfg.model_dump(), "channels": names}, "--channels")
    tiles = dataset_tiles(source, split)
    refuse_existing(out, overwrite)  # after the cheap checks of the inputs, before the work
    result = compute_band_stats(
        tiles,
        cfg,
        device=device,
        batch_size=batch_size,
        quantile_bins=quantile_bins,
        scheduler=dask_scheduler(scheduler, sync=None, local="local", command="stats"),
        show_progress=not quiet,
    )
    result.to_json(out)
    save_config(cfg, out.with_name(f"{out.stem}.features.yaml"))
    show_table(_summary(result, cfg.quantiles))
    console.print(
        f"band statistics of {len(cfg.channels)} channels over {len(tiles)} tiles written to {out}"
    )


def _summary(result: BandStats, levels: tuple[float, float]) -> Table:
    low, high = levels
    table = Table(title=f"band statistics ({result.options.get('adjustment')})")
    for col in ("channel", "min", f"q{low:g}", "mean", "std", f"q{high:g}", "max", "masked %"):
        table.add_column(col, justify="right" if col != "channel" else "left")
    q_low, q_high = result.quantile(low, result.channels), result.quantile(high, result.channels)
    masked = result.options.get("masked_or_missing", {})
    total = max(int(result.options.get("n_pixels", 0)), 1)
    for i, c in enumerate(result.channels):
        values = (result.min[c], q_low[i], result.mean[c], result.std[c], q_high[i], result.max[c])
        table.add_row(c, *(f"{v:.4g}" for v in values), f"{100 * masked.get(c, 0) / total:.1f}")
    return table


def channels(
    source: Annotated[
        str | None, typer.Option(help="Only entries from this source: spyndex or kelpseg.")
    ] = None,
) -> None:
    """List every channel name a config may use, with its formula source and bands."""
    _require_features()
    from kelpseg.features.bands import BASE_BANDS
    from kelpseg.features.indices import INDICES

    table = Table(title="channels")
    for col in ("name", "source", "bands", "formula"):
        table.add_column(col, overflow="fold")
    if source is None:
        for band in BASE_BANDS:
            table.add_row(band, "band", band, "raw tile band")
    shown = [e for e in INDICES.values() if source is None or e.source == source]
    for entry in shown:
        table.add_row(entry.name, entry.source, " ".join(entry.bands), entry.formula)
    show_table(table)
    console.print(f"{len(shown)} indices" + ("" if source else f" + {len(BASE_BANDS)} bands"))
