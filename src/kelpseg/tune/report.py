"""``summary/report.html``: the study on one page that can be mailed.

The interactive plotly pages need ``plotly.min.js`` (4.6 MB) beside them; this page needs
nothing: trial counts, the best trial's values, parameter importance, and the static plots
embedded at the size they were drawn (lossless WebP), each linked to its interactive page.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from kelpseg.io.atomic import atomic_path
from kelpseg.io.report_media import img_tag, webp_bytes

if TYPE_CHECKING:
    from kelpseg.tune.summary import StudySummary

REPORT_FILE = "report.html"
PLOTS = {
    "optimization_history": "Optimisation history",
    "param_importances": "Parameter importance (fANOVA)",
    "parallel_coordinate": "Parallel coordinates",
    "intermediate_values": "Val Dice per epoch (intermediate values)",
}
_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
img{max-width:100%} .note{color:#555;font-size:.9em}
</style>"""


def _rows(pairs: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_show(v))}</td></tr>" for k, v in pairs
    )
    return f"<table>{cells}</table>"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _plot(folder: Path, name: str, title: str) -> str:
    png = folder / f"{name}.png"
    if not png.is_file():
        return ""
    with Image.open(png) as opened:
        picture = webp_bytes(np.asarray(opened.convert("RGB")), lossless=True)
    image = img_tag(picture, title)
    page = folder / f"{name}.html"
    if page.is_file():
        image = f'<a href="{html.escape(page.name)}" title="interactive version">{image}</a>'
    return f"<h2>{html.escape(title)}</h2>{image}"


def render_report(summary: StudySummary, folder: Path) -> str:
    """The page's HTML for a summary whose plots (if any) were written to ``folder``."""
    title = f"Study {summary.study_name}"
    counts = [
        ("direction", summary.direction),
        ("trials finished", summary.n_trials),
        ("complete", summary.n_complete),
        ("pruned", summary.n_pruned),
        ("failed", summary.n_failed),
        ("running", summary.n_running),
        ("best trial", summary.best_trial if summary.best_trial is not None else "none yet"),
        ("best value (val Dice)", summary.best_value if summary.best_value is not None else "-"),
    ]
    parts = [f"<h1>{html.escape(title)}</h1>", _rows(counts)]
    if summary.best_values:
        parts += ["<h2>Best trial's values</h2>", _rows(list(summary.best_values.items()))]
    if summary.importances:
        parts += ["<h2>Parameter importance</h2>", _rows(list(summary.importances.items()))]
    plots = [_plot(folder, name, text) for name, text in PLOTS.items()]
    if any(plots):
        parts.append('<p class="note">Click a plot for its interactive page (needs the folder '
                     "it sits in: plotly.min.js).</p>")  # fmt: skip
    parts += plots
    if summary.skipped:
        parts += ["<h2>Not drawn</h2>", _rows(list(summary.skipped.items()))]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>{_STYLE}</head><body>{''.join(parts)}</body></html>\n"
    )


def write_report(summary: StudySummary, folder: Path) -> Path:
    """Write ``<folder>/report.html`` (atomically)."""
    path = folder / REPORT_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(summary, folder), encoding="utf-8")
    return path
