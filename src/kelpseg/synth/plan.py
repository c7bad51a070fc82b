"""The dataset plan: tile ids, AOI repeats, dates, platforms, splits and DEM shifts.

Everything decided here comes from one generator seeded by ``config.seed`` in the parent
process, so the plan (and through it every file) is the same for any number of workers.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass

import numpy as np

from kelpseg.synth.config import SynthConfig

SLC_FAILURE = dt.date(2003, 5, 31)

# Operating windows of the Landsat missions whose tiles the competition holds.
PLATFORM_WINDOWS: dict[str, tuple[dt.date, dt.date]] = {
    "L5": (dt.date(1984, 3, 1), dt.date(2011, 11, 18)),
    "L7": (dt.date(1999, 7, 1), SLC_FAILURE),
    "L8": (dt.date(2013, 4, 11), dt.date(2023, 12, 31)),
    "L9": (dt.date(2021, 10, 31), dt.date(2023, 12, 31)),
}
SLC_OFF_WINDOW = (SLC_FAILURE + dt.timedelta(days=1), dt.date(2023, 12, 31))
# Shares of the tiles that are not Landsat 7 SLC-off.
PLATFORM_WEIGHTS: dict[str, float] = {"L5": 0.4, "L7": 0.1, "L8": 0.4, "L9": 0.1}


@dataclass(frozen=True)
class TilePlan:
    """What the parent decides about one image before any pixel is drawn."""

    tile_id: str
    aoi: int
    index: int
    split: str
    date: dt.date
    platform: str
    slc_off: bool
    dem_shift: tuple[int, int]


@dataclass(frozen=True)
class AoiPlan:
    """One area of interest and all its images."""

    aoi: int
    tiles: tuple[TilePlan, ...]


def make_tile_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Unique ids shaped like the real ones: two capital letters and three digits ("AA498")."""
    capacity = 26 * 26 * 1000
    if n > capacity:
        raise ValueError(f"at most {capacity} tile ids exist, asked for {n}")
    codes = rng.choice(capacity, size=n, replace=False)
    letters = string.ascii_uppercase
    return [f"{letters[c // 26000]}{letters[(c // 1000) % 26]}{c % 1000:03d}" for c in codes]


def _random_date(rng: np.random.Generator, window: tuple[dt.date, dt.date]) -> dt.date:
    span = (window[1] - window[0]).days
    return window[0] + dt.timedelta(days=int(rng.integers(0, span + 1)))


def draw_acquisition(rng: np.random.Generator, slc_off_share: float) -> tuple[str, dt.date, bool]:
    """Platform, date and SLC-off flag of one image."""
    if rng.random() < slc_off_share:
        return "L7", _random_date(rng, SLC_OFF_WINDOW), True
    names = list(PLATFORM_WEIGHTS)
    weights = np.array([PLATFORM_WEIGHTS[n] for n in names])
    platform = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return platform, _random_date(rng, PLATFORM_WINDOWS[platform]), False


def assign_splits(
    rng: np.random.Generator, counts: np.ndarray, config: SynthConfig
) -> list[list[str]]:
    """Split labels per AOI and image: whole test-only AOIs plus test images of shared AOIs.

    The real test set holds both: areas never seen in training, and other dates of areas
    that are. ``test_whole_aoi_share`` sets the mix.
    """
    total = int(counts.sum())
    n_test = round(config.test_fraction * total)
    whole_target = round(config.test_whole_aoi_share * n_test)
    splits = [["train"] * int(c) for c in counts]
    taken = 0
    for aoi in rng.permutation(len(counts)):
        if taken + counts[aoi] <= whole_target:
            splits[aoi] = ["test"] * int(counts[aoi])
            taken += int(counts[aoi])
    # Each shared AOI keeps at least one training image.
    pool: list[tuple[int, int]] = []
    for aoi, labels in enumerate(splits):
        if labels[0] == "train" and len(labels) >= 2:
            keep = int(rng.integers(len(labels)))
            pool.extend((aoi, i) for i in range(len(labels)) if i != keep)
    n_shared = min(n_test - taken, len(pool))
    for k in rng.choice(len(pool), size=max(n_shared, 0), replace=False):
        aoi, i = pool[int(k)]
        splits[aoi][i] = "test"
    return splits


def _dem_shift(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int]:
    """A shift whose larger component lies in [lo, hi] pixels, in a random direction."""
    big = int(rng.integers(lo, hi + 1)) * int(rng.choice([-1, 1]))
    small = int(rng.integers(-abs(big), abs(big) + 1))
    return (big, small) if rng.random() < 0.5 else (small, big)


def make_plan(config: SynthConfig) -> list[AoiPlan]:
    """Decide ids, repeats, dates, platforms, splits and DEM shifts for every tile."""
    rng = np.random.default_rng([config.seed, 0])
    lo, hi = config.tiles_per_aoi
    counts = rng.integers(lo, hi + 1, size=config.n_aoi)
    total = int(counts.sum())
    ids = make_tile_ids(rng, total)
    splits = assign_splits(rng, counts, config)
    n_shifted = round(config.misaligned_share * total)
    shifted = set(rng.choice(total, size=n_shifted, replace=False).tolist())
    plans: list[AoiPlan] = []
    flat = 0
    for aoi, n in enumerate(counts):
        tiles = []
        for index in range(int(n)):
            platform, date, slc_off = draw_acquisition(rng, config.slc_off_share)
            shift = _dem_shift(rng, *config.misaligned_shift_px) if flat in shifted else (0, 0)
            tiles.append(
                TilePlan(ids[flat], aoi, index, splits[aoi][index], date, platform, slc_off, shift)
            )
            flat += 1
        plans.append(AoiPlan(aoi, tuple(tiles)))
    return plans
