"""Exploratory data analysis: per-tile statistics on Dask, distribution and tile plots, report.

Typical use from a notebook::

    from kelpseg.eda import EdaConfig, compute_tile_stats, write_report
    from kelpseg.io import build_catalog

    stats, failures = compute_tile_stats(build_catalog("data").tiles, EdaConfig(), workers=2)
"""

from kelpseg.eda.config import EdaConfig, Thresholds
from kelpseg.eda.plots import (
    describe_stats,
    plot_correlation,
    plot_distribution,
    plot_distributions,
)
from kelpseg.eda.report import build_report, write_report
from kelpseg.eda.runner import StatsRun, compute_tile_stats, run_stats
from kelpseg.eda.tile_plots import composite, ndvi, plot_tile, plot_tiles, stretch
from kelpseg.eda.tile_stats import TILE_STATS, TileInput, TileStat, tile_stats_row

__all__ = [
    "TILE_STATS",
    "EdaConfig",
    "StatsRun",
    "Thresholds",
    "TileInput",
    "TileStat",
    "build_report",
    "composite",
    "compute_tile_stats",
    "describe_stats",
    "ndvi",
    "plot_correlation",
    "plot_distribution",
    "plot_distributions",
    "plot_tile",
    "plot_tiles",
    "run_stats",
    "stretch",
    "tile_stats_row",
    "write_report",
]
