"""Kelp area over time: one row per scene mask and region, a table and a plot.

A mask's date comes, in order, from a user mapping (``--dates``), the ``ACQUISITION_DATE`` tag
that ``predict-scene`` writes, or the Landsat product id in the file name
(``LC08_L2SP_217096_20231012_..._kelp.tif``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import rasterio
import yaml
from matplotlib.figure import Figure
from rasterio.errors import RasterioError

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.scenes.area import WHOLE_SCENE, Region, kelp_area
from kelpseg.scenes.bands import acquisition_date

PathLike = str | os.PathLike[str]
TABLE_SUFFIXES = (".csv", ".parquet")


def _as_date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise KelpsegError(f"date {value!r} is not YYYY-MM-DD", where) from exc


def read_dates(path: PathLike) -> dict[str, dt.date]:
    """A file-name -> date mapping: YAML/JSON (``name: 2020-01-31``) or CSV (``file,date``)."""
    path = Path(path)
    if not path.is_file():
        raise KelpsegError("dates file does not exist", path)
    pairs: Iterable[tuple[Any, Any]]
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype=str)
        if not {"file", "date"} <= set(frame.columns):
            raise KelpsegError("a dates CSV needs the columns 'file' and 'date'", path)
        pairs = zip(frame["file"], frame["date"], strict=True)
    else:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise KelpsegError("a dates file must map file names to dates", path)
        pairs = data.items()
    return {Path(str(k)).name: _as_date(v, str(path)) for k, v in pairs}


def mask_date(path: PathLike, dates: Mapping[str, dt.date] | None = None) -> dt.date:
    """The acquisition date of a scene mask (see the module docstring for the order)."""
    path = Path(path)
    for key in (path.name, path.stem):
        if dates and key in dates:
            return dates[key]
    try:
        with rasterio.open(path) as src:
            tag = src.tags().get("ACQUISITION_DATE", "")
    except RasterioError as exc:
        raise KelpsegError(f"not a readable mask raster ({exc})", path) from exc
    date = _as_date(tag, str(path)) if tag else acquisition_date(path.name)
    if date is None:
        raise KelpsegError(
            "no acquisition date: not tagged, none in the name; pass --dates FILE", path
        )
    return date


def area_timeseries(
    masks: Sequence[PathLike],
    *,
    regions: list[Region] | None = None,
    dates: Mapping[str, dt.date] | None = None,
    show_progress: bool = True,
) -> pd.DataFrame:
    """Kelp area per scene date and region, sorted by date.

    Returns:
        Columns ``date``, ``scene`` (file name), ``region`` and the columns of
        :func:`kelpseg.scenes.area.kelp_area`; ``observed_share`` = observed / region area.
    """
    if not masks:
        raise KelpsegError("no scene masks given")
    frames = []
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("measuring kelp area", total=len(masks))
        for path in masks:
            frame = kelp_area(path, regions)
            frame.insert(0, "scene", Path(path).name)
            frame.insert(0, "date", pd.Timestamp(mask_date(path, dates)))
            frames.append(frame)
            bar.advance(task)
    table = pd.concat(frames, ignore_index=True)
    share = table["observed_ha"] / table["region_ha"].where(table["region_ha"] > 0)
    table["observed_share"] = share.fillna(0.0)
    return table.sort_values(["date", "scene", "region"], kind="stable").reset_index(drop=True)


def plot_timeseries(table: pd.DataFrame, out_path: PathLike) -> Path:
    """Kelp area (ha) over time, one line per region, as a PNG (atomically).

    Markers are hollow where under half of the region was observed (clouds, no data), since
    kelp hidden there is missing from the area.
    """
    # The object API (no pyplot state) works headless and in worker threads.
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    regions = [r for r in table["region"].unique() if r != WHOLE_SCENE] or [WHOLE_SCENE]
    for region in regions:
        rows = table[table["region"] == region]
        (line,) = ax.plot(rows["date"], rows["kelp_ha"], "-", label=str(region))
        seen = rows["observed_share"] >= 0.5
        ax.plot(rows["date"][seen], rows["kelp_ha"][seen], "o", color=line.get_color())
        ax.plot(
            rows["date"][~seen], rows["kelp_ha"][~seen], "o", mfc="none", color=line.get_color()
        )
    ax.set_ylim(bottom=0)
    ax.set_ylabel("kelp canopy area (ha)")
    ax.set_title("Kelp canopy area per scene (hollow: under half observed)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    out = Path(out_path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return out


def write_timeseries(table: pd.DataFrame, out_path: PathLike) -> tuple[Path, Path]:
    """Write the table (CSV or parquet, by suffix) and its plot (same name, ``.png``)."""
    out = Path(out_path)
    if out.suffix.lower() not in TABLE_SUFFIXES:
        raise KelpsegError(f"the table must end in {' or '.join(TABLE_SUFFIXES)}", out)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".csv":
            table.assign(date=table["date"].dt.date).to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return out, plot_timeseries(table, out.with_suffix(".png"))
