"""Outputs of the label audit: the ranking table, the exclusion list and the HTML gallery.

The gallery reuses the evaluation report's panels (true colour | label | prediction |
errors), so a reviewer reads both pages the same way; every image is embedded at the size it is
shown, so the file can be sent to the people who will look at the labels, and links to its
full resolution in ``gallery_files/`` beside the page.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kelpseg.config import save_config
from kelpseg.console import progress
from kelpseg.evaluation.gallery import FN_COLOUR, FP_COLOUR, TP_COLOUR, tile_panels
from kelpseg.evaluation.report import GALLERY_WIDTH
from kelpseg.inference.rasters import PredictionSource, binarize
from kelpseg.io.atomic import atomic_path
from kelpseg.io.report_media import LinkedFiles, linked_files, linked_thumbnail
from kelpseg.quality.audit import AuditResult, as_committee, consensus_source

PathLike = str | os.PathLike[str]
RANKING_FILE = "label_audit.parquet"
RANKING_CSV = "label_audit.csv"
EXCLUDE_FILE = "exclude.txt"
GALLERY_FILE = "gallery.html"
CONFIG_FILE = "audit_config.yaml"

_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#222}
.tile{margin:14px 0} .tile img{max-width:100%}
.flagged{color:#b00;font-weight:bold}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
.note{color:#555;font-size:.9em}
</style>"""


@dataclass
class AuditPaths:
    """Files written by :func:`write_audit`."""

    ranking: Path
    csv: Path
    exclude: Path
    gallery: Path
    config: Path


def write_tile_list(ids: Iterable[str], path: PathLike, header: str = "") -> Path:
    """Write tile ids one per line (``#`` comment lines first), as ``kelpseg split --exclude``
    and the training config's ``data.exclude_file`` read them."""
    lines = [f"# {line}" for line in header.splitlines() if line.strip()]
    lines += [str(t) for t in ids]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def _caption(row: Mapping[Any, Any]) -> str:
    flag = ' <span class="flagged">flagged</span>' if row["flagged"] else ""
    return (
        f"#{row['rank']} {html.escape(str(row['tile_id']))}{flag}: score "
        f"{float(row['score']):.3f} (Dice {float(row['dice']):.3f}), "
        f"label {row['label_pixels']} px, predicted {row['pred_pixels']} px"
    )


def gallery_html(
    result: AuditResult,
    predictions: PredictionSource,
    *,
    files: LinkedFiles | None = None,
    show_progress: bool = False,
) -> str:
    """The worst ``config.top`` tiles as one self-contained HTML page.

    With ``files``, each row links to its full-resolution PNG written there.
    """
    cfg = result.config
    worst = result.ranking.head(cfg.top).to_dict(orient="records")

    def swatch(rgb: tuple[int, int, int], name: str) -> str:
        return f'<span class="swatch" style="background:rgb{rgb}"></span>{name}'

    legend = swatch(TP_COLOUR, "both") + swatch(FP_COLOUR, "predicted only")
    legend += swatch(FN_COLOUR, "label only")
    parts = [
        f"<h1>Label audit: the {len(worst)} worst of {len(result.ranking)} tiles</h1>",
        f'<p class="note">score <b>{html.escape(cfg.score)}</b>; flagged: score at least '
        f"{cfg.min_score:g} ({len(result.flagged)} tiles, listed in {EXCLUDE_FILE}); "
        f"prediction shown at threshold {cfg.threshold:g}.</p>",
        f'<p class="note">panels: true colour | label | prediction | agreement {legend}.'
        + (" Click a row for its full resolution." if files is not None else "")
        + "</p>",
    ]
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("gallery", total=len(worst))
        for row in worst:
            tile_id = str(row["tile_id"])
            image = result.labels.image(tile_id) if result.labels.has_image(tile_id) else None
            mask = binarize(predictions[tile_id], cfg.threshold)
            panels = tile_panels(image, result.labels.label(tile_id), mask)
            picture = linked_thumbnail(panels, f"{tile_id}.png", tile_id, files, GALLERY_WIDTH)
            parts.append(f'<div class="tile"><div>{_caption(row)}</div>{picture}</div>')
            bar.advance(task)
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>kelpseg label audit</title>'
        f"{_STYLE}</head><body>\n{body}\n</body></html>\n"
    )


def write_audit(
    result: AuditResult,
    predictions: PredictionSource | PathLike | Sequence[PredictionSource | PathLike],
    out_dir: PathLike,
    *,
    show_progress: bool = False,
) -> AuditPaths:
    """Write the ranking (parquet and CSV), the exclusion list, the gallery and the config.

    ``predictions`` are those audited; a committee's gallery shows the members' mean.
    """
    out = Path(out_dir)
    source = consensus_source(as_committee(predictions))
    paths = AuditPaths(
        out / RANKING_FILE, out / RANKING_CSV, out / EXCLUDE_FILE, out / GALLERY_FILE,
        out / CONFIG_FILE,
    )  # fmt: skip
    with atomic_path(paths.ranking) as tmp:
        result.ranking.to_parquet(tmp, index=False)
    with atomic_path(paths.csv) as tmp:
        result.ranking.to_csv(tmp, index=False, float_format="%.6g")
    header = (
        f"kelpseg labels audit: {len(result.flagged)} of {len(result.ranking)} labels flagged\n"
        f"score {result.config.score} >= {result.config.min_score:g} among the worst "
        f"{result.config.top}; review {GALLERY_FILE} before excluding"
    )
    write_tile_list(result.flagged, paths.exclude, header)
    with linked_files(paths.gallery) as files:
        page = gallery_html(result, source, files=files, show_progress=show_progress)
    with atomic_path(paths.gallery) as tmp:
        tmp.write_text(page, encoding="utf-8")
    save_config(result.config, paths.config)
    return paths


def read_ranking(path: PathLike) -> pd.DataFrame:
    """Read a ranking written by :func:`write_audit` (the parquet)."""
    return pd.read_parquet(path)
