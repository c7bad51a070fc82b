"""Write a demo dataset in exactly the Kelp Wanted layout, plus the truth behind it.

Every image draws from its own generators seeded by ``(seed, stream, aoi, index)`` and every
AOI's terrain from ``(seed, stream, aoi)``, so the output is byte-identical for a seed whatever
the number of workers.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.config import save_config
from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.tiles import write_label, write_tile
from kelpseg.synth.config import SynthConfig
from kelpseg.synth.kelp import dice, hard_canopy, kelp_density, noisy_label
from kelpseg.synth.plan import AoiPlan, TilePlan, make_plan
from kelpseg.synth.scene import draw_cover, render_scene
from kelpseg.synth.terrain import Terrain, make_terrain

METADATA_NAME = "metadata_fTq0l2T.csv"
TRUTH_NAME = "synth_truth.parquet"
CONFIG_NAME = "synth_config.yaml"
PREVIEW_NAME = "preview.png"
FOLDERS = {
    "train_satellite": "train_satellite",
    "train_kelp": "train_kelp",
    "test_satellite": "test_satellite",
    "test_labels": "test_labels",
    "train_truth": "train_labels_true",
    "test_truth": "test_kelp_clean",
}
OUTPUTS = (METADATA_NAME, TRUTH_NAME, CONFIG_NAME, PREVIEW_NAME, *FOLDERS.values())


@dataclass(frozen=True)
class SynthResult:
    """What :func:`generate_dataset` wrote.

    Attributes:
        out_dir: the dataset root.
        config: the resolved configuration.
        truth: one row per tile, as saved in ``synth_truth.parquet``.
        seconds: wall-clock time of the generation.
    """

    out_dir: Path
    config: SynthConfig
    truth: pd.DataFrame
    seconds: float

    def stats(self) -> dict[str, float]:
        """Headline statistics of the dataset (tile counts, kelp share, repeats, noise)."""
        return dataset_stats(self.truth, self.config.tile_size)


def dataset_stats(truth: pd.DataFrame, tile_size: int) -> dict[str, float]:
    """Headline statistics of a generated dataset from its truth table."""
    test = truth[truth.split == "test"]
    train = truth[truth.split == "train"]
    shared = set(test.aoi) & set(train.aoi)
    return {
        "tiles": len(truth),
        "train_tiles": len(train),
        "test_tiles": len(test),
        "aois": truth.aoi.nunique(),
        "tiles_per_aoi": len(truth) / max(truth.aoi.nunique(), 1),
        "test_only_aois": len(set(test.aoi) - set(train.aoi)),
        "shared_aois": len(shared),
        "test_tiles_in_shared_aois": int(test.aoi.isin(shared).sum()),
        "kelp_pixel_share": float(truth.kelp_pixels_true.sum()) / (len(truth) * tile_size**2),
        "no_kelp_tile_share": float((truth.kelp_pixels_true == 0).mean()),
        "slc_off_tiles": int(truth.slc_off.sum()),
        "cloudy_tiles": int((truth.cloud_fraction > 0).sum()),
        "noisy_labels": int((train.label_corruption != "none").sum()),
        "mislabelled_tiles": int(train.mislabelled.sum()),
        "misaligned_tiles": int(((truth.dem_shift_row != 0) | (truth.dem_shift_col != 0)).sum()),
    }


# Streams of random numbers; the plan (stream 0) lives in kelpseg.synth.plan. Hard mode draws
# from streams of its own, so that the default output stays byte-identical.
TERRAIN, SCENE, LABELS, HARD_CANOPY, HARD_LABELS = 1, 2, 3, 4, 5


def _rng(config: SynthConfig, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, stream, *key])


def _render_tile(
    config: SynthConfig, terrain: Terrain, plan: TilePlan, out: Path
) -> tuple[np.ndarray, dict[str, Any]]:
    """Render and write one image; return its visible kelp mask and truth row."""
    rng = _rng(config, SCENE, plan.aoi, plan.index)
    kelp = kelp_density(rng, terrain, config.kelp_absent_date_share, config.kelp_abundance)
    canopy = None
    if config.fringe_share > 0 or config.sparse_canopy_share > 0:
        kelp, canopy = hard_canopy(
            _rng(config, HARD_CANOPY, plan.aoi, plan.index),
            terrain,
            kelp,
            config.fringe_share,
            config.sparse_canopy_share,
        )
    cover = draw_cover(
        rng, config.cloud_free_share, config.mostly_cloudy_share, config.cloud_cover_max
    )
    corrupted = rng.random() < config.corrupted_tile_share
    scene = render_scene(rng, terrain, kelp, plan, cover, corrupted, config.encoding)
    truth = (kelp > 0) & ~scene.cloud & ~scene.missing
    write_tile(
        out / FOLDERS[f"{plan.split}_satellite"] / f"{plan.tile_id}_satellite.tif", scene.data
    )
    row = {
        "tile_id": plan.tile_id,
        "split": plan.split,
        "aoi": plan.aoi,
        "aoi_kind": terrain.kind,
        "date": plan.date,
        "platform": plan.platform,
        "slc_off": plan.slc_off,
        "cloud_fraction": float(scene.cloud.mean()),
        "missing_fraction": float(scene.missing.mean()),
        "land_fraction": float((terrain.land >= 0.5).mean()),
        "kelp_pixels_true": int(truth.sum()),
        "dem_shift_row": plan.dem_shift[0],
        "dem_shift_col": plan.dem_shift[1],
    }
    if canopy is not None:
        row["canopy"] = canopy
    return truth, row


def _write_labels(
    config: SynthConfig, terrain: Terrain, plan: TilePlan, truths: list[np.ndarray], out: Path
) -> dict[str, Any]:
    """Write the tile's label(s); return the label-noise columns of its truth row.

    Test labels are the truth unless ``noisy_test_labels``: then they are as noisy as the
    training labels and the truth goes to ``test_kelp_clean/``.
    """
    truth = truths[plan.index]
    name = f"{plan.tile_id}_kelp.tif"
    if plan.split == "test" and not config.noisy_test_labels:
        write_label(out / FOLDERS["test_labels"] / name, truth)
        return {
            "label_corruption": "none",
            "mislabelled": False,
            "label_kelp_pixels": -1,
            "label_dice": float("nan"),
        }
    others = [t for i, t in enumerate(truths) if i != plan.index]
    rng = _rng(config, LABELS, plan.aoi, plan.index)
    hard = config.wrong_bed_rate > 0 or config.outline_error_rate > 0
    hard_rng = _rng(config, HARD_LABELS, plan.aoi, plan.index) if hard else None
    noisy = noisy_label(rng, truth, others, terrain, config, hard_rng)
    if plan.split == "test":
        write_label(out / FOLDERS["test_labels"] / name, noisy.label)
        write_label(out / FOLDERS["test_truth"] / name, truth)
    else:
        write_label(out / FOLDERS["train_kelp"] / name, noisy.label)
        if config.write_train_truth:
            write_label(out / FOLDERS["train_truth"] / name, truth)
    return {
        "label_corruption": noisy.corruption,
        "mislabelled": noisy.mislabelled,
        "label_kelp_pixels": int(noisy.label.sum()),
        "label_dice": dice(noisy.label, truth),
    }


def render_aoi(config: SynthConfig, aoi: AoiPlan, out: Path) -> list[dict[str, Any]]:
    """Render and write every image of one AOI; return their truth rows.

    Labels are drawn after all images so that a wrong label may come from another date.
    """
    terrain = make_terrain(
        _rng(config, TERRAIN, aoi.aoi),
        config.tile_size,
        config.open_water_aoi_share,
        config.mostly_land_aoi_share,
        config.kelp_aoi_share,
    )
    truths, rows = [], []
    for plan in aoi.tiles:
        truth, row = _render_tile(config, terrain, plan, out)
        truths.append(truth)
        rows.append(row)
    for plan, row in zip(aoi.tiles, rows, strict=True):
        row.update(_write_labels(config, terrain, plan, truths, out))
    return rows


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless ``overwrite``; then clear only the generator's outputs."""
    if out.exists() and not out.is_dir():
        raise KelpsegError("output path exists and is not a folder", out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise KelpsegError("output folder is not empty (use --overwrite to replace)", out)
        for name in OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    for folder in ("train_satellite", "train_kelp", "test_satellite", "test_labels"):
        (out / FOLDERS[folder]).mkdir(parents=True, exist_ok=True)


def _run_aois(
    config: SynthConfig, plans: list[AoiPlan], out: Path, workers: int, show_progress: bool
) -> list[dict[str, Any]]:
    """Render AOIs (in parallel when ``workers > 1``), advancing a progress bar per tile."""
    rows: list[dict[str, Any]] = []
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("generating tiles", total=sum(len(p.tiles) for p in plans))
        if workers <= 1:
            for plan in plans:
                rows.extend(render_aoi(config, plan, out))
                bar.advance(task, len(plan.tiles))
            return rows
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(render_aoi, config, plan, out): plan for plan in plans}
            for future in as_completed(futures):
                rows.extend(future.result())
                bar.advance(task, len(futures[future].tiles))
    return rows


def metadata_table(truth: pd.DataFrame) -> pd.DataFrame:
    """The competition's metadata: one row per satellite file and per training label."""
    rows = []
    for tile in truth.sort_values("tile_id").itertuples():
        train = tile.split == "train"
        rows.append((f"{tile.tile_id}_satellite.tif", "satellite", train, tile.tile_id))
        if train:
            rows.append((f"{tile.tile_id}_kelp.tif", "kelp", True, tile.tile_id))
    return pd.DataFrame(rows, columns=["filename", "type", "in_train", "tile_id"])


def _truth_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    truth = pd.DataFrame(rows).sort_values(["aoi", "tile_id"]).reset_index(drop=True)
    truth["date"] = pd.to_datetime(truth["date"])
    return truth


def generate_dataset(
    out_dir: str | os.PathLike[str],
    config: SynthConfig | None = None,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> SynthResult:
    """Generate a demo dataset in the Kelp Wanted layout.

    Args:
        out_dir: folder to write; must be absent or empty unless ``overwrite``.
        config: generator settings (defaults: :class:`SynthConfig` defaults).
        workers: processes to render AOIs in (default: CPU count; 1 = in this process).
            The output does not depend on it.
        overwrite: replace the outputs of a previous run in a non-empty ``out_dir``.
        show_progress: draw a rich progress bar.

    Returns:
        The output folder, the config and the per-tile truth table.

    Raises:
        KelpsegError: ``out_dir`` is a file, or a non-empty folder without ``overwrite``.
    """
    start = time.perf_counter()
    config = config or SynthConfig()
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    plans = make_plan(config)
    workers = min(workers or os.cpu_count() or 1, len(plans))
    truth = _truth_table(_run_aois(config, plans, out, workers, show_progress))
    with atomic_path(out / METADATA_NAME) as tmp:
        metadata_table(truth).to_csv(tmp, index=False)
    with atomic_path(out / TRUTH_NAME) as tmp:
        truth.to_parquet(tmp, index=False)
    save_config(config, out / CONFIG_NAME)
    return SynthResult(out, config, truth, time.perf_counter() - start)
