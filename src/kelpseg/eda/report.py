"""One self-contained HTML page: summary tables, distribution plots and a gallery of tiles.

Every image is embedded at the size it is shown (WebP, see :mod:`kelpseg.io.report_media`) and
the page loads nothing else, so it can be mailed or opened offline: under 1 MB with the default
gallery, whatever the number of tiles. Each gallery strip links to its full-resolution PNG in
``report_files/`` beside the page.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kelpseg.config import load_config
from kelpseg.console import progress
from kelpseg.eda.config import EdaConfig
from kelpseg.eda.plots import (
    describe_stats,
    flag_summary,
    plot_correlation,
    plot_distribution,
    statistic_columns,
)
from kelpseg.eda.runner import CONFIG_FILE, FAILURES_FILE, STATS_FILE
from kelpseg.eda.tile_plots import COMPOSITES, read_for_plot, tile_panels, tile_strip
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import read_parquet
from kelpseg.io.report_media import (
    LinkedFiles,
    figure_webp,
    img_tag,
    linked_files,
    linked_thumbnail,
)
from kelpseg.io.tiles import Tile

REPORT_FILE = "report.html"
_GALLERY_FACTS = ("kelp_pixels", "water_pixels_pct", "qa_corrupted_pixels_pct", "cloud_fraction")
#: Width of a gallery strip in the page (its display size), in pixels.
STRIP_WIDTH = 1400
#: Resolution of the distribution plots and the correlation matrix in the page.
PLOT_DPI = 80

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:8px} .grid img{width:340px;border:1px solid #eee}
.tile{margin:10px 0} .tile img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px}
.note{color:#666;font-size:13px}
"""


def _table(frame: pd.DataFrame, max_rows: int = 200) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    more = f'<p class="note">{len(frame) - max_rows} more rows</p>' if len(frame) > max_rows else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def gallery_groups(stats: pd.DataFrame, per_group: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Tiles for the gallery: random ones with and without kelp, most corrupted, most water."""
    groups: dict[str, pd.DataFrame] = {}
    if per_group < 1:
        return groups
    if "has_kelp" in stats.columns:
        for title, value in (("with kelp", True), ("without kelp", False)):
            part = stats[stats["has_kelp"].eq(value).fillna(False).astype(bool)]  # NA: test tiles
            groups[title] = part.sample(n=min(per_group, len(part)), random_state=seed)
    for title, column in (
        ("most corrupted", "qa_corrupted_pixels_pct"),
        ("most water", "water_pixels_pct"),
    ):
        if column in stats.columns:
            order = stats.sort_values([column, "tile_id"], ascending=[False, True])
            groups[title] = order.head(per_group)
    return groups


def _gallery_item(
    tile: Tile,
    label: np.ndarray | None,
    row: pd.Series,
    config: EdaConfig,
    files: LinkedFiles | None,
) -> str:
    panels = tile_panels(tile, label, config)
    facts = [f"{c} {_cell(row[c])}" for c in _GALLERY_FACTS if c in row.index]
    caption = f"<b>{html.escape(tile.tile_id)}</b> ({html.escape(str(row.get('split', '')))}) "
    caption += f'<span class="note">{html.escape(", ".join(facts))}</span>'
    slots = len(COMPOSITES) + 3 + len(config.plots.channels)  # + DEM, QA and kelp mask
    strip = tile_strip(panels, slots)
    name, alt = f"{tile.tile_id}.png", f"tile {tile.tile_id}"
    image = linked_thumbnail(strip, name, alt, files, STRIP_WIDTH)
    return f'<figure class="tile">{image}<figcaption>{caption}</figcaption></figure>'


def _strip_legend(config: EdaConfig, linked: bool) -> str:
    names = [name.replace("_", " ") for name in COMPOSITES]
    names += ["DEM", "QA", *config.plots.channels, "kelp mask (train)"]
    text = "Each strip, left to right: " + " | ".join(names) + "; grey = missing pixels."
    return text + (" Click a strip for its full resolution." if linked else "")


def _gallery(
    groups: dict[str, pd.DataFrame],
    config: EdaConfig,
    files: LinkedFiles | None,
    advance: Callable[[], object],
) -> str:
    sections = []
    for title, rows in groups.items():
        items = []
        for _, row in rows.iterrows():
            try:
                tile, label = read_for_plot(row)
            except KelpsegError as exc:
                items.append(f'<p class="note">{html.escape(str(exc))}</p>')
            else:
                items.append(_gallery_item(tile, label, row, config, files))
            advance()
        empty = '<p class="note">no such tiles</p>'
        sections.append(f"<h3>{html.escape(title)}</h3>{''.join(items) or empty}")
    return "".join(sections)


def _summary_html(stats: pd.DataFrame, failures: pd.DataFrame) -> str:
    counts = stats.groupby("split").size() if "split" in stats.columns else pd.Series()
    overview = pd.DataFrame(
        {"tiles": [len(stats), *counts.to_list()], "failed": [len(failures)] + [""] * len(counts)},
        index=["all", *map(str, counts.index)],
    ).reset_index(names="split")
    flags = flag_summary(stats)
    flags["value"] = flags["true"].astype(str) + " / " + flags["known"].astype(str)
    flag_table = flags.pivot(index="flag", columns="split", values="value").reset_index()
    describe = describe_stats(stats)
    parts = [
        '<p class="note">Fractions (*_pct, cloud_fraction) are in [0, 1]; flags count tiles.</p>',
        f"<h2>Tiles</h2>{_table(overview)}",
        f"<h2>Flags (tiles true / tiles known)</h2>{_table(flag_table)}",
        "<h2>Summary statistics (all tiles)</h2>",
        _table(describe[describe["split"] == "all"].drop(columns="split")),
        "<h2>Failed tiles</h2>",
        _table(failures) if len(failures) else '<p class="note">none</p>',
    ]
    return "".join(parts)


def build_report(
    stats: pd.DataFrame,
    failures: pd.DataFrame,
    config: EdaConfig,
    *,
    files: LinkedFiles | None = None,
    show_progress: bool = True,
) -> str:
    """The HTML text of the report for a statistics table and its failures.

    Args:
        stats: the per-tile statistics.
        failures: tiles that could not be read.
        config: settings (gallery size, channels, title).
        files: where full-resolution gallery strips go (linked from the thumbnails); ``None``
            embeds the thumbnails only.
        show_progress: show a rich progress bar.
    """
    columns = statistic_columns(stats)
    groups = gallery_groups(stats, config.report.gallery_per_group, config.report.seed)
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("report", total=len(columns) + 1 + sum(map(len, groups.values())))
        plots = []
        for col in columns:
            plots.append(img_tag(figure_webp(plot_distribution(stats, col), PLOT_DPI), col))
            bar.advance(task)
        corr = img_tag(figure_webp(plot_correlation(stats), PLOT_DPI), "correlation matrix")
        bar.advance(task)
        gallery = _gallery(groups, config, files, lambda: bar.advance(task))
    title = html.escape(config.report.title)
    body = [
        f"<h1>{title}</h1>",
        _summary_html(stats, failures),
        f'<h2>Distributions (train vs test)</h2><div class="grid">{"".join(plots)}</div>',
        f'<h2>Correlation</h2><div class="tile">{corr}</div>',
        f'<h2>Gallery</h2><p class="note">{html.escape(_strip_legend(config, files is not None))}'
        f"</p>{gallery}",
    ]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def read_stats_dir(stats_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``tile_stats.parquet`` and ``failures.csv`` written by ``kelpseg eda stats``."""
    folder = Path(stats_dir)
    path = folder / STATS_FILE
    if not path.is_file():
        raise KelpsegError(f"no {STATS_FILE} here; run 'kelpseg eda stats' first", folder)
    stats = read_parquet(path)
    fail_path = folder / FAILURES_FILE
    failures = (
        pd.read_csv(fail_path, dtype=str, keep_default_na=False)
        if fail_path.is_file()
        else pd.DataFrame()
    )
    return stats, failures


def write_report(
    stats_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    config: EdaConfig | None = None,
    *,
    show_progress: bool = True,
) -> Path:
    """Write the HTML report of a ``kelpseg eda stats`` output folder.

    Args:
        stats_dir: folder holding ``tile_stats.parquet`` (and ``failures.csv``).
        out: the HTML file (default: ``<stats_dir>/report.html``); full-resolution gallery
            strips go to ``<out stem>_files/`` beside it.
        config: settings (default: the ``eda_config.yaml`` saved in ``stats_dir``, else defaults).
        show_progress: show a rich progress bar.
    """
    stats, failures = read_stats_dir(stats_dir)
    saved = Path(stats_dir) / CONFIG_FILE
    if config is None:
        config = load_config(EdaConfig, saved) if saved.is_file() else EdaConfig()
    target = Path(out) if out is not None else Path(stats_dir) / REPORT_FILE
    with linked_files(target) as files:
        page = build_report(stats, failures, config, files=files, show_progress=show_progress)
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target
