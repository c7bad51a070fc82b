"""DEM misalignment check on generated data, whose DEM shifts are known (synth_truth.parquet).

Generates a dataset (or reuses one) with a share of tiles whose DEM is shifted by 2-4 pixels,
estimates every tile's shift as ``kelpseg eda stats`` does, and prints recall and precision of
the "shifted by more than a pixel" flag: over every shifted tile, and over those whose shift
is measurable at all (a DEM and an image with both land and water). Then it re-aligns the
flagged tiles and prints how often the DEM land mask disagrees with the true, unshifted one,
before and after (the true DEM is redrawn from the generator's terrain stream).

    .venv/bin/python benchmarks/misalignment.py --n-aoi 60 --seed 1 --data /tmp/mis60

``--encoding x10000`` (or ``s2l2a``) writes the bands in another integer encoding
(:mod:`kelpseg.io.encoding`); ``--land-swir1 0.08`` uses the fixed Collection 2 reflectance cut
the check had before it adapted per tile (Otsu).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kelpseg.config import load_config
from kelpseg.console import console
from kelpseg.io.tiles import read_tile
from kelpseg.quality.alignment import AlignmentSettings, estimate_dem_shift, realign_dem
from kelpseg.synth import SynthConfig, generate_dataset
from kelpseg.synth.generator import CONFIG_NAME, TERRAIN, TRUTH_NAME
from kelpseg.synth.terrain import make_terrain


def load_or_generate(data: Path, config: SynthConfig, workers: int) -> pd.DataFrame:
    """The truth table of ``data``, generating the dataset first if it is not there."""
    if not (data / TRUTH_NAME).is_file():
        start = time.perf_counter()
        generate_dataset(data, config, workers=workers, show_progress=False)
        console.print(f"generated in {time.perf_counter() - start:.0f} s")
    return pd.read_parquet(data / TRUTH_NAME)


def measure(data: Path, truth: pd.DataFrame, settings: AlignmentSettings) -> pd.DataFrame:
    """Estimated shift of every tile beside the true one."""
    rows = []
    start = time.perf_counter()
    for tile in truth.itertuples(index=False):
        path = data / f"{tile.split}_satellite" / f"{tile.tile_id}_satellite.tif"
        found = estimate_dem_shift(read_tile(path, allow_all_missing=True).data, settings)
        rows.append((found.row, found.col, found.px, found.score))
    seconds = (time.perf_counter() - start) / max(len(truth), 1)
    console.print(f"estimate: {1000 * seconds:.1f} ms per tile (reading included)")
    est = pd.DataFrame(rows, columns=["est_row", "est_col", "est_px", "score"])
    return pd.concat([truth.reset_index(drop=True), est], axis=1)


def report_detection(frame: pd.DataFrame, min_px: float) -> None:
    """Recall and precision of the flag against the generator's shifts of >= 2 px."""
    true_px = np.hypot(frame["dem_shift_row"], frame["dem_shift_col"])
    shifted = (true_px >= 2).to_numpy()
    measured = frame["est_px"].notna().to_numpy()
    flagged = (frame["est_px"] > min_px).to_numpy()
    hits = int((flagged & shifted).sum())
    console.print(
        f"tiles {len(frame)}, shifted >= 2 px {int(shifted.sum())} "
        f"(measurable {int((shifted & measured).sum())}), flagged {int(flagged.sum())}, "
        f"not measurable {int((~measured).sum())}"
    )
    console.print(
        f"recall (all shifted) {hits / max(shifted.sum(), 1):.3f}   "
        f"recall (measurable shifted) {hits / max((shifted & measured).sum(), 1):.3f}   "
        f"precision {hits / max(flagged.sum(), 1):.3f}"
    )
    err = np.hypot(
        frame["est_row"] - frame["dem_shift_row"], frame["est_col"] - frame["dem_shift_col"]
    )
    q = err[measured].quantile([0.5, 0.9, 0.99, 1.0]).round(2).tolist()
    console.print(f"shift error on measured tiles (px) p50 {q[0]} p90 {q[1]} p99 {q[2]} max {q[3]}")
    missed = frame[shifted & ~flagged]
    console.print(
        "missed shifted tiles by AOI kind: " + str(missed["aoi_kind"].value_counts().to_dict())
    )


def true_dems(config: SynthConfig, aois: list[int]) -> dict[int, np.ndarray]:
    """The unshifted DEM of each AOI, redrawn from the generator's terrain stream."""
    out = {}
    for aoi in aois:
        rng = np.random.default_rng([config.seed, TERRAIN, aoi])
        terrain = make_terrain(
            rng, config.tile_size, config.open_water_aoi_share,
            config.mostly_land_aoi_share, config.kelp_aoi_share,
        )  # fmt: skip
        out[aoi] = terrain.dem_tile((0, 0))
    return out


def report_realignment(data: Path, frame: pd.DataFrame, config: SynthConfig, min_px: float) -> None:
    """DEM land vs true land disagreement on flagged tiles, before and after re-alignment."""
    flagged = frame[frame["est_px"] > min_px]
    truth = true_dems(config, sorted(set(flagged["aoi"].astype(int))))
    before = after = pixels = 0
    for tile in flagged.itertuples(index=False):
        path = data / f"{tile.split}_satellite" / f"{tile.tile_id}_satellite.tif"
        raw = read_tile(path, allow_all_missing=True).data
        fixed = realign_dem(raw, (tile.est_row, tile.est_col))
        land = truth[int(tile.aoi)] > 0
        before += int(((raw[6] > 0) != land).sum())
        after += int(((fixed[6] > 0) != land).sum())
        pixels += land.size
    share_before, share_after = 100 * before / max(pixels, 1), 100 * after / max(pixels, 1)
    console.print(
        f"re-alignment of {len(flagged)} flagged tiles: DEM land mask wrong on "
        f"{share_before:.2f}% of pixels before, {share_after:.2f}% after "
        f"({before / max(after, 1):.1f}x fewer)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/kelpseg-misalignment"))
    parser.add_argument("--n-aoi", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--misaligned-share", type=float, default=0.15)
    parser.add_argument("--min-px", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--encoding", default="c2l2", help="c2l2, x10000 or s2l2a")
    parser.add_argument(
        "--land-swir1", type=float, help="fixed SWIR1 reflectance cut (default: Otsu per tile)"
    )
    args = parser.parse_args()
    config = SynthConfig(
        n_aoi=args.n_aoi, seed=args.seed, misaligned_share=args.misaligned_share,
        encoding=args.encoding,
    )  # fmt: skip
    truth = load_or_generate(args.data, config, args.workers)
    config = load_config(SynthConfig, args.data / CONFIG_NAME)  # the dataset's own settings
    if config.encoding != args.encoding:
        raise SystemExit(f"{args.data} holds {config.encoding} data, not {args.encoding}")
    frame = measure(args.data, truth, AlignmentSettings(land_swir1=args.land_swir1))
    report_detection(frame, args.min_px)
    report_realignment(args.data, frame, config, args.min_px)


if __name__ == "__main__":
    main()
