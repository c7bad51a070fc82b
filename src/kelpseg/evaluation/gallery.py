"""The report's gallery: the worst and best tiles as true colour, label, prediction, errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kelpseg.evaluation.labels import LabelSet
from kelpseg.inference.postprocess import PostprocessConfig, apply_postprocess
from kelpseg.inference.rasters import PredictionSource, binarize
from kelpseg.io.tiles import BAND_NAMES, MISSING

# Error overlay colours (Dark2, readable with the common colour-vision deficiencies).
TP_COLOUR = (27, 158, 119)
FP_COLOUR = (217, 95, 2)
FN_COLOUR = (117, 112, 179)
_RGB = [BAND_NAMES.index(b) for b in ("R", "G", "B")]
_GAP = 6


@dataclass
class GalleryTile:
    """One gallery row: the tile's scores and its four panels as one (H, W, 3) uint8 image."""

    tile_id: str
    dice: float
    label_pixels: int
    pred_pixels: int
    image: np.ndarray


def pick_tiles(per_tile: pd.DataFrame, n: int) -> tuple[list[str], list[str]]:
    """Ids of the ``n`` worst and ``n`` best tiles.

    Worst: lowest Dice among tiles with kelp in the label or the prediction (largest error
    first on ties). Best: highest Dice among tiles with kelp in the label (largest beds first),
    never repeating a worst tile. Empty-vs-empty tiles are in neither: they show nothing.
    """
    tiles = per_tile.assign(errors=per_tile["fp"] + per_tile["fn"])
    active = tiles[(tiles["label_pixels"] > 0) | (tiles["pred_pixels"] > 0)]
    worst = active.sort_values(["dice", "errors"], ascending=[True, False]).head(n)
    kelp = tiles[(tiles["label_pixels"] > 0) & ~tiles["tile_id"].isin(worst["tile_id"])]
    best = kelp.sort_values(["dice", "label_pixels"], ascending=[False, False]).head(n)
    return [str(t) for t in worst["tile_id"]], [str(t) for t in best["tile_id"]]


def true_colour(tile: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 true colour of a raw tile: 2-98 percentile stretch, missing black."""
    rgb = tile[_RGB].astype(np.float64)
    missing = (tile[_RGB] == MISSING).any(axis=0)
    out = np.zeros((*rgb.shape[1:], 3), dtype=np.float64)
    for c in range(3):
        valid = rgb[c][~missing]
        if valid.size:
            lo, hi = np.percentile(valid, (2, 98))
            out[..., c] = (rgb[c] - lo) / max(hi - lo, 1.0)
    out[missing] = 0.0
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def error_overlay(base: np.ndarray, label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Dimmed grey ``base`` with TP, FP and FN pixels coloured."""
    grey = (base.mean(axis=2, keepdims=True) * 0.4).astype(np.uint8)
    out = np.repeat(grey, 3, axis=2)
    truth, mask = label.astype(bool), pred.astype(bool)
    out[truth & mask] = TP_COLOUR
    out[~truth & mask] = FP_COLOUR
    out[truth & ~mask] = FN_COLOUR
    return out


def tile_panels(tile: np.ndarray | None, label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """One (H, W, 3) uint8 image: true colour | label | prediction | error overlay, side by side."""
    h, w = label.shape
    rgb = true_colour(tile) if tile is not None else np.full((h, w, 3), 90, np.uint8)
    white = np.array([255, 255, 255], np.uint8)
    label_rgb = np.where(label.astype(bool)[..., None], white, np.uint8(0))
    pred_rgb = np.where(pred.astype(bool)[..., None], white, np.uint8(0))
    gap = np.full((h, _GAP, 3), 255, np.uint8)
    panels = [rgb, gap, label_rgb, gap, pred_rgb, gap, error_overlay(rgb, label, pred)]
    return np.concatenate(panels, axis=1).astype(np.uint8)


def build_gallery(
    per_tile: pd.DataFrame,
    predictions: PredictionSource,
    labels: LabelSet,
    threshold: float,
    n: int,
    postprocess: PostprocessConfig | None = None,
) -> dict[str, list[GalleryTile]]:
    """Render the worst and best tiles (masks made exactly as they were scored)."""
    worst, best = pick_tiles(per_tile, n)
    rows = {str(r["tile_id"]): r for r in per_tile.to_dict(orient="records")}
    gallery: dict[str, list[GalleryTile]] = {"worst": [], "best": []}
    for group, ids in (("worst", worst), ("best", best)):
        for tile_id in ids:
            tile = labels.image(tile_id) if labels.has_image(tile_id) else None
            pred = binarize(predictions[tile_id], threshold)
            if postprocess is not None and postprocess.steps:
                pred = apply_postprocess(pred, tile, postprocess).astype(bool)
            row = rows[tile_id]
            image = tile_panels(tile, labels.label(tile_id), pred)
            scores = (float(row["dice"]), int(row["label_pixels"]), int(row["pred_pixels"]))
            gallery[group].append(GalleryTile(tile_id, *scores, image))
    return gallery
