"""Reports of a split: fold counts, the leakage check, group-size and sample-group pictures,
and grouping quality against known AOIs (for generated data).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.tiles import MISSING
from kelpseg.split._extras import sklearn
from kelpseg.split.embeddings import read_dem

_PARTS = ("train", "val", "holdout")  # subsets that training or evaluation reads


def fold_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per fold (or hold-out part): tiles, AOIs, kelp tiles and kelp pixels of its tiles.

    Uses the EDA columns ``has_kelp`` and ``kelp_pixels`` when present (else counts are NA).
    Test-split and excluded tiles are left out.
    """
    used = frame[frame["subset"].isin(_PARTS)]
    has_kelp = used["has_kelp"].astype("boolean") if "has_kelp" in used else None
    kelp_px = used["kelp_pixels"].astype("Float64") if "kelp_pixels" in used else None
    rows = []
    parts = used[["fold", "subset"]].drop_duplicates().sort_values(["fold", "subset"])
    for fold, subset in parts.itertuples(index=False):
        here = ((used["fold"] == fold) & (used["subset"] == subset)).to_numpy()
        rows.append(
            {
                "fold": int(fold),
                "subset": str(subset),
                "tiles": int(here.sum()),
                "aois": int(used["aoi_id"][here].nunique()),
                "kelp_tiles": pd.NA if has_kelp is None else int(has_kelp[here].sum()),
                "kelp_pixels": pd.NA if kelp_px is None else int(kelp_px[here].sum()),
            }
        )
    columns = ["fold", "subset", "tiles", "aois", "kelp_tiles", "kelp_pixels"]
    table = pd.DataFrame(rows, columns=columns)
    for col in ("kelp_tiles", "kelp_pixels"):
        table[col] = table[col].astype("Int64")
    return table


def aois_spanning_folds(frame: pd.DataFrame) -> pd.DataFrame:
    """AOIs whose tiles fall in more than one fold or hold-out part (test split and excluded
    tiles ignored); ``folds`` lists the parts, the hold-out test part as ``holdout``."""
    used = frame[frame["subset"].isin(_PARTS)]
    part = used["fold"].astype(str).where(used["subset"] != "holdout", "holdout")
    per_aoi = part.groupby(used["aoi_id"]).agg(lambda p: sorted(set(p.tolist())))
    spanning = per_aoi[per_aoi.map(len) > 1]
    return pd.DataFrame({"aoi_id": spanning.index.to_numpy(), "folds": spanning.to_list()})


def check_no_leakage(frame: pd.DataFrame) -> None:
    """Assert that no AOI spans two folds (or two hold-out parts).

    Raises:
        KelpsegError: naming the first AOI that does, and how many do.
    """
    spanning = aois_spanning_folds(frame)
    if len(spanning):
        first = spanning.iloc[0]
        raise KelpsegError(
            f"leakage check failed: {len(spanning)} AOIs span several folds "
            f"(AOI {first['aoi_id']} in folds {', '.join(first['folds'])})"
        )


def grouping_scores(
    true: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """Pairwise precision and recall of "same AOI", and the adjusted Rand index.

    Args:
        true: true AOI of each tile.
        pred: predicted group of each tile.
        mask: tiles to score (default: all).
    """
    true, pred = np.asarray(true), np.asarray(pred)
    if mask is not None:
        true, pred = true[mask], pred[mask]
    table = pd.crosstab(pred, true).to_numpy().astype(np.int64)
    both = int((table * (table - 1) // 2).sum())
    pred_pairs = int((table.sum(1) * (table.sum(1) - 1) // 2).sum())
    true_pairs = int((table.sum(0) * (table.sum(0) - 1) // 2).sum())
    return {
        "precision": both / pred_pairs if pred_pairs else 1.0,
        "recall": both / true_pairs if true_pairs else 1.0,
        "ari": float(sklearn("sklearn.metrics").adjusted_rand_score(true, pred)),
        "true_pairs": float(true_pairs),
        "predicted_pairs": float(pred_pairs),
    }


def _save(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def plot_group_sizes(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Histogram of AOI group sizes (all tiles, and training tiles only)."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    all_sizes = frame.groupby("aoi_id").size()
    train_sizes = frame[frame["split"] == "train"].groupby("aoi_id").size()
    top = int(all_sizes.max()) if len(all_sizes) else 1
    bins = np.arange(0.5, top + 1.5, max(1, (top + 1) // 40)).tolist()
    ax.hist(all_sizes, bins=bins, alpha=0.6, label=f"all tiles ({len(all_sizes)} groups)")
    ax.hist(train_sizes, bins=bins, alpha=0.6, label=f"training tiles ({len(train_sizes)} groups)")
    ax.set_xlabel("tiles per AOI group")
    ax.set_ylabel("groups")
    if len(all_sizes) > 100:  # many groups: a log axis keeps the rare big ones visible
        ax.set_yscale("log")
    ax.legend()
    ax.set_title("AOI group sizes")
    return _save(fig, path)


def pick_sample_groups(frame: pd.DataFrame, n: int, seed: int = 0) -> list[int]:
    """The largest group plus random groups of 2 or more tiles, ``n`` in all."""
    sizes = frame.groupby("aoi_id").size()
    multi = sizes[sizes >= 2].sort_values(ascending=False)
    if n <= 0 or multi.empty:
        return []
    rng = np.random.default_rng(seed)
    rest = multi.index[1:].to_numpy()
    picks = rng.choice(rest, size=min(n - 1, len(rest)), replace=False).tolist()
    return [int(multi.index[0]), *sorted(int(p) for p in picks)]


def dem_rgb(dem: np.ndarray, size: int = 128) -> np.ndarray:
    """A DEM as an RGB picture, at most ``size`` px: land in terrain colours, sea (0) blue,
    no DEM light grey."""
    step = max(1, int(np.ceil(max(dem.shape) / size)))
    dem = dem[::step, ::step]
    valid = dem != MISSING
    land = valid & (dem > 0)
    top = float(dem[land].max()) if land.any() else 1.0
    rgb = colormaps["terrain"](0.3 + 0.7 * np.clip(dem, 0, None) / max(top, 1.0))[..., :3]
    rgb[valid & ~land] = (0.45, 0.65, 0.9)
    rgb[~valid] = 0.9
    return rgb


def plot_sample_groups(
    frame: pd.DataFrame, path: str | os.PathLike[str], n_groups: int = 6, members: int = 6
) -> Path | None:
    """One row per sample group: the DEM of up to ``members`` of its tiles side by side.

    Drawn as one mosaic image (one axes): far faster than a grid of subplots.
    """
    groups = pick_sample_groups(frame, n_groups)
    if not groups:
        return None
    cell, gap = 128, 24  # pixels per picture, and room for its caption
    mosaic = np.ones((len(groups) * (cell + gap), members * (cell + 4), 3))
    fig = Figure(figsize=(members * 1.6, len(groups) * 1.7))
    ax = fig.add_axes((0.06, 0.0, 0.94, 0.94))
    for r, aoi in enumerate(groups):
        tiles = frame[frame["aoi_id"] == aoi].head(members)
        for c, tile in enumerate(tiles.itertuples(index=False)):
            rgb = dem_rgb(read_dem(str(tile.image_path)), cell)
            y, x = r * (cell + gap) + gap, c * (cell + 4)
            mosaic[y : y + rgb.shape[0], x : x + rgb.shape[1]] = rgb
            caption = f"{tile.tile_id} {tile.split} f{tile.fold}"
            ax.text(x + 2, y - 4, caption, fontsize=6, va="bottom")
        ax.text(-6, r * (cell + gap) + gap + cell / 2, f"AOI {aoi}", fontsize=7, ha="right")
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle("DEM of sample AOI groups (blue: sea, grey: no DEM)", fontsize=9)
    return _save(fig, path, dpi=110)
