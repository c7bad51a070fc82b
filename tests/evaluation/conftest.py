"""Fixtures of the evaluation tests: a tiny generated dataset and noisy predictions of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import read_label, write_mask, write_probability
from kelpseg.synth import SynthConfig, generate_dataset


@dataclass(frozen=True)
class Demo:
    """A generated dataset and a folder of imperfect predictions of its training tiles."""

    root: Path
    preds: Path
    labels: dict[str, np.ndarray]
    probs: dict[str, np.ndarray]


def fake_probability(label: np.ndarray, seed: int) -> np.ndarray:
    """A plausible, imperfect model output: blurred label, shrunk a little, plus noise."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(label.astype(np.float64), 1.2) * 1.2
    return np.clip(smooth + rng.normal(0, 0.12, label.shape), 0, 1).astype(np.float32)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """About 9 tiles of 350 px (most train, a few test), kelp on every shore; predictions."""
    root = tmp_path_factory.mktemp("demo") / "data"
    config = SynthConfig(
        n_aoi=4,
        seed=3,
        tiles_per_aoi=(2, 3),
        kelp_aoi_share=1.0,
        kelp_absent_date_share=0.0,
        kelp_abundance=2.0,
    )
    generate_dataset(root, config, workers=1, show_progress=False)
    preds = root.parent / "preds"
    labels, probs = {}, {}
    for i, row in enumerate(build_catalog(root).train.itertuples()):
        label = read_label(row.mask_path)
        prob = fake_probability(label, i)
        write_probability(preds / f"{row.tile_id}_prob.tif", prob)
        write_mask(preds / f"{row.tile_id}_kelp.tif", (prob >= 0.5).astype(np.uint8))
        labels[str(row.tile_id)], probs[str(row.tile_id)] = label, prob
    kelp_tiles = sum(int(label.any()) for label in labels.values())
    assert kelp_tiles >= 3, f"the generator gave only {kelp_tiles} training tiles with kelp"
    return Demo(root, preds, labels, probs)
