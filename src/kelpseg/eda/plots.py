"""Distributions of the per-tile statistics: histograms, bar charts, correlations, describe.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so they can be
drawn from any thread or worker and never open a window.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from rich.table import Table

from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import CATALOG_COLUMNS

SPLIT_COLORS = {"train": "#1f77b4", "test": "#ff7f0e"}
DESCRIBE_COLUMNS = ("split", "statistic", "count", "mean", "std", "min", "p25", "p50", "p75", "max")


def statistic_columns(stats: pd.DataFrame) -> list[str]:
    """The numeric and boolean columns of a statistics table (catalog columns excluded)."""
    return [
        col
        for col in stats.columns
        if col not in CATALOG_COLUMNS
        and not col.startswith("_")
        and (pd.api.types.is_numeric_dtype(stats[col]) or pd.api.types.is_bool_dtype(stats[col]))
    ]


def _as_float(series: pd.Series) -> np.ndarray:
    return series.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _splits(stats: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    out = [("all", stats)]
    if "split" in stats.columns:
        out += [(str(s), stats[stats["split"] == s]) for s in ("train", "test")]
    return out


def describe_stats(stats: pd.DataFrame) -> pd.DataFrame:
    """Summary of every statistic (flags as the share of True) for all tiles, train and test.

    Returns:
        Long table with columns ``split, statistic, count, mean, std, min, p25, p50, p75, max``;
        ``count`` is the number of non-NA values (label statistics count train tiles only).
    """
    records = []
    for split, part in _splits(stats):
        for col in statistic_columns(stats):
            values = _as_float(part[col])
            values = values[~np.isnan(values)]
            if values.size:
                q = np.percentile(values, [0, 25, 50, 75, 100])
                spread = float(values.std(ddof=1)) if values.size > 1 else float("nan")
                summary = [float(values.mean()), spread, *map(float, q)]
            else:
                summary = [float("nan")] * 7
            records.append([split, col, int(values.size), *summary])
    frame = pd.DataFrame(records, columns=list(DESCRIBE_COLUMNS))
    return frame.astype({"split": "string", "statistic": "string", "count": "int64"})


_TABLE_COLUMNS = ("count", "mean", "min", "p50", "max")  # fits 80 columns; the parquet has all


def describe_table(describe: pd.DataFrame, split: str = "all") -> Table:
    """A rich table of :func:`describe_stats` for one split (std and quartiles: see the parquet)."""
    table = Table(title=f"tile statistics ({split} tiles)")
    table.add_column("statistic", no_wrap=True)
    for col in _TABLE_COLUMNS:
        table.add_column(col, justify="right", no_wrap=True)
    for row in describe[describe["split"] == split].itertuples(index=False):
        cells = [str(row.statistic), str(row.count)]
        cells += [_fmt(float(getattr(row, c))) for c in _TABLE_COLUMNS[1:]]
        table.add_row(*cells)
    return table


def _fmt(value: float) -> str:
    if np.isnan(value):
        return "-"
    if abs(value) >= 1e3:
        return f"{value:.0f}"
    return f"{value:.3g}"


def plot_distribution(stats: pd.DataFrame, column: str) -> Figure:
    """Histogram of one statistic (bar chart of the True share for a flag), train vs test."""
    # Fixed margins: a layout engine would triple the rendering time of these small plots.
    fig = Figure(figsize=(4.2, 3.0))
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.16, top=0.9)
    ax = fig.add_subplot()
    splits = _splits(stats)[1:] or _splits(stats)
    is_flag = pd.api.types.is_bool_dtype(stats[column])
    all_values = _as_float(stats[column])
    finite = all_values[~np.isnan(all_values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
    for i, (split, part) in enumerate(splits):
        values = _as_float(part[column])
        values = values[~np.isnan(values)]
        color = SPLIT_COLORS.get(split, "grey")
        if is_flag:
            share = float(values.mean()) if values.size else 0.0
            ax.bar(i, share, color=color, label=f"{split} (n={values.size})")
        elif values.size:
            weights = np.full(values.size, 1.0 / values.size)
            ax.hist(
                values,
                bins=bins.tolist(),
                weights=weights,
                histtype="step",
                lw=1.5,
                color=color,
                label=f"{split} (n={values.size})",
            )
    if is_flag:
        ax.set_xticks(range(len(splits)), [s for s, _ in splits])
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of tiles True")
    else:
        ax.set_ylabel("share of tiles")
        ax.set_xlabel(column)
    ax.set_title(column, fontsize=10)
    if ax.get_legend_handles_labels()[0]:  # a column with no finite value draws nothing
        ax.legend(fontsize=7)
    return fig


def plot_correlation(stats: pd.DataFrame) -> Figure:
    """Pearson correlation matrix of every statistic (constant columns left blank)."""
    columns = statistic_columns(stats)
    values = pd.DataFrame({c: _as_float(stats[c]) for c in columns})
    corr = values.corr().to_numpy() if columns else np.zeros((0, 0))
    size = max(4.0, 0.28 * len(columns) + 2.0)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(corr), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(columns)), columns, fontsize=7)
    ax.set_title("correlation of tile statistics")
    fig.colorbar(image, ax=ax, shrink=0.7)
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write a figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(figure_png(fig, dpi))
    return Path(path)


def plot_distributions(
    stats: pd.DataFrame, out_dir: str | os.PathLike[str], dpi: int = 100
) -> list[Path]:
    """Save one distribution PNG per statistic plus ``correlation.png`` into ``out_dir``."""
    out = Path(out_dir)
    paths = [
        save_figure(plot_distribution(stats, col), out / f"dist_{col}.png", dpi)
        for col in statistic_columns(stats)
    ]
    paths.append(save_figure(plot_correlation(stats), out / "correlation.png", dpi))
    return paths


def flag_summary(stats: pd.DataFrame) -> pd.DataFrame:
    """Tiles per split for which each flag is True, out of the tiles where it is known."""
    flags = [c for c in statistic_columns(stats) if pd.api.types.is_bool_dtype(stats[c])]
    records = []
    for split, part in _splits(stats):
        for col in flags:
            known = part[col].dropna()
            records.append([split, col, int(known.sum()), int(known.size)])
    return pd.DataFrame(records, columns=["split", "flag", "true", "known"])
