"""The self-contained HTML evaluation report, plus JSON and CSV beside it.

Every image is embedded at the size it is shown (WebP, see :mod:`kelpseg.io.report_media`), so
the file can be mailed or archived alone (a few hundred kB). Each gallery row links to its
full-resolution PNG in ``report_files/`` beside the page.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from matplotlib.figure import Figure
from pydantic import BaseModel

from kelpseg.evaluation.compare import format_table
from kelpseg.evaluation.figures import (
    confusion_figure,
    per_tile_figure,
    pr_figure,
    threshold_figure,
)
from kelpseg.evaluation.gallery import FN_COLOUR, FP_COLOUR, TP_COLOUR, GalleryTile
from kelpseg.evaluation.result import EvaluationResult
from kelpseg.io.atomic import atomic_path
from kelpseg.io.report_media import (
    LinkedFiles,
    figure_webp,
    files_folder,
    img_tag,
    linked_files,
    linked_thumbnail,
)

PathLike = str | os.PathLike[str]
#: Width of a gallery row in the page (the page's text width), in pixels.
GALLERY_WIDTH = 1180

_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:1.6em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:1.5em}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.tile{margin:10px 0} .tile img{max-width:100%}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
.note{color:#555;font-size:.9em}
</style>"""


@dataclass
class ReportPaths:
    """Files written by :func:`write_report`."""

    html: Path
    json: Path
    per_tile_csv: Path
    sweep_csv: Path
    files: Path | None = None  # full-resolution gallery images (None: no gallery)


def _figure(fig: Figure, alt: str) -> str:
    return img_tag(figure_webp(fig, dpi=100, tight=True), alt)


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0)


def _cards(result: EvaluationResult) -> str:
    m = result.metrics
    items = [
        (f"Dice @ {result.threshold:g}", f"{m['dice']:.4f}"),
        (f"best Dice @ {result.best_threshold:g}", f"{result.best_dice:.4f}"),
        ("macro Dice (2nd-place log's metric)", f"{m['dice_macro']:.4f}"),
        ("IoU", f"{m['iou']:.4f}"),
        ("precision", f"{m['precision']:.4f}"),
        ("recall", f"{m['recall']:.4f}"),
        ("average precision", f"{result.average_precision:.4f}"),
        ("tiles", f"{m['tiles']:,}"),
    ]
    body = "".join(f'<div class="card">{html.escape(k)}<b>{v}</b></div>' for k, v in items)
    return f'<div class="cards">{body}</div>'


def _gallery_html(gallery: dict[str, list[GalleryTile]], files: LinkedFiles | None) -> str:
    def swatch(rgb: tuple[int, int, int], name: str) -> str:
        return f'<span class="swatch" style="background:rgb{rgb}"></span>{name}'

    legend = swatch(TP_COLOUR, "TP") + swatch(FP_COLOUR, "FP") + swatch(FN_COLOUR, "FN")
    click = " Click a row for its full resolution." if files is not None else ""
    parts = [
        f'<p class="note">panels: true colour | label | prediction | errors {legend}.{click}</p>'
    ]
    for group in ("worst", "best"):
        parts.append(f"<h3>{group} tiles</h3>")
        if not gallery.get(group):
            parts.append('<p class="note">none</p>')
        for tile in gallery.get(group, []):
            caption = (
                f"{html.escape(tile.tile_id)}: Dice {tile.dice:.3f}, "
                f"label {tile.label_pixels} px, predicted {tile.pred_pixels} px"
            )
            image = linked_thumbnail(
                tile.image, f"{tile.tile_id}.png", caption, files, GALLERY_WIDTH
            )
            parts.append(f'<div class="tile"><div>{caption}</div>{image}</div>')
    return "\n".join(parts)


def render_html(
    result: EvaluationResult,
    *,
    title: str = "kelpseg evaluation",
    comparison: pd.DataFrame | None = None,
    gallery: dict[str, list[GalleryTile]] | None = None,
    config: BaseModel | None = None,
    sources: dict[str, str] | None = None,
    files: LinkedFiles | None = None,
) -> str:
    """The report as one HTML string (figures embedded; full-size gallery images in ``files``,
    when given, linked from their thumbnails)."""
    summary = pd.DataFrame([result.per_tile_summary()])
    cm = pd.DataFrame(
        result.confusion,
        index=["label: no kelp", "label: kelp"],
        columns=["pred: no kelp", "pred: kelp"],
    )
    post = ", ".join(result.postprocess) or "none"
    kind = "probabilities" if result.is_probability else "0/1 masks (the sweep is flat)"
    src = "".join(
        f"<li>{html.escape(k)}: <code>{html.escape(v)}</code></li>"
        for k, v in (sources or {}).items()
    )
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">predictions: {kind}; post-processing: {html.escape(post)}</p>',
        f"<ul>{src}</ul>" if src else "",
        _cards(result),
        "<h2>Comparison</h2>" + _table(format_table(comparison)) if comparison is not None else "",
        "<h2>Decision threshold</h2>",
        '<div class="row">' + _figure(threshold_figure(result), "threshold sweep"),
        _figure(pr_figure(result), "precision-recall curve") + "</div>",
        "<details><summary>sweep table</summary>" + _table(result.sweep) + "</details>",
        "<h2>Confusion matrix</h2>",
        '<div class="row">' + _figure(confusion_figure(result), "confusion matrix"),
        cm.to_html(border=0) + "</div>",
        "<h2>Per-tile Dice</h2>",
        '<p class="note">an empty prediction of an empty label scores 1.0</p>',
        _figure(per_tile_figure(result), "per-tile Dice histogram"),
        _table(summary, 3),
    ]
    if gallery is not None:
        sections += ["<h2>Gallery</h2>", _gallery_html(gallery, files)]
    if config is not None:
        dumped = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        sections += ["<h2>Configuration</h2>", f"<pre>{html.escape(dumped)}</pre>"]
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title>{_STYLE}"
    return (
        f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n"
        + "\n".join(sections)
        + ("\n</body></html>\n")
    )


def write_report(
    result: EvaluationResult,
    out_dir: PathLike,
    *,
    title: str = "kelpseg evaluation",
    comparison: pd.DataFrame | None = None,
    gallery: dict[str, list[GalleryTile]] | None = None,
    config: BaseModel | None = None,
    sources: dict[str, str] | None = None,
) -> ReportPaths:
    """Write ``report.html`` (and ``report_files/``), ``metrics.json``, ``per_tile.csv`` and
    ``threshold_sweep.csv``."""
    out = Path(out_dir)
    paths = ReportPaths(
        out / "report.html", out / "metrics.json", out / "per_tile.csv", out / "threshold_sweep.csv"
    )
    with linked_files(paths.html) as files:
        text = render_html(
            result,
            title=title,
            comparison=comparison,
            gallery=gallery,
            config=config,
            sources=sources,
            files=files,
        )
    folder = files_folder(paths.html)
    paths.files = folder if folder.is_dir() else None
    with atomic_path(paths.html) as tmp:
        tmp.write_text(text, encoding="utf-8")
    result.to_json(paths.json)
    with atomic_path(paths.per_tile_csv) as tmp:
        result.per_tile.to_csv(tmp, index=False)
    with atomic_path(paths.sweep_csv) as tmp:
        result.sweep.to_csv(tmp, index=False)
    return paths
