"""DEM embeddings: structure check, blur-pool maths, shift robustness, cache, timm embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING
from kelpseg.split import embeddings as emb_mod
from kelpseg.split.config import DemEmbedderConfig, SplitConfig
from kelpseg.split.dem_embedder import DemEmbedder, blur_pool_matrix, dem_structure
from kelpseg.split.embeddings import (
    cache_paths,
    compute_embeddings,
    grouping_threshold,
    normalise_rows,
    resolve_embedder,
)
from tests.split.conftest import CraftedDataset, crafted_dem


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_dem_structure_counts_pixels_off_the_most_common_value() -> None:
    flat = np.zeros((20, 20), np.int16)
    assert dem_structure(flat) == 0
    assert dem_structure(np.full((20, 20), MISSING, np.int16)) == 0
    flat[:2, :3] = 15
    assert dem_structure(flat) == 6


def test_blur_pool_matrix_equals_blur_then_area_mean() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((48, 48)).astype(np.float32)
    w = blur_pool_matrix(48, 8, 2.0)
    ours = w @ image @ w.T
    blurred = ndimage.gaussian_filter(image.astype(np.float64), 2.0, mode="nearest")
    ref = blurred.reshape(8, 6, 8, 6).mean(axis=(1, 3))
    assert np.allclose(ours, ref, atol=1e-5)
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-5)


def test_dem_embedding_is_robust_to_small_shifts_and_tells_areas_apart() -> None:
    embed = DemEmbedder(DemEmbedderConfig())
    dems = np.stack([crafted_dem(5), crafted_dem(5, shift=(2, -3)), crafted_dem(6)])
    vec = embed(dems)
    threshold = grouping_threshold(SplitConfig())
    assert cosine(vec[0], vec[1]) >= threshold
    assert cosine(vec[0], vec[2]) < threshold


def test_normalise_rows_zeroes_empty_rows() -> None:
    out, ok = normalise_rows(np.array([[3.0, 4.0], [0.0, 0.0]], np.float32))
    assert ok.tolist() == [True, False]
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_unknown_embedders_are_errors_naming_the_key() -> None:
    for name in ("faiss", "timm", "dem:x"):
        with pytest.raises(KelpsegError, match="config key 'embedder'"):
            resolve_embedder(name)
    assert resolve_embedder("timm:resnet18")[1] == "resnet18"
    assert grouping_threshold(SplitConfig(embedder="timm:resnet18")) == 0.97
    assert grouping_threshold(SplitConfig(threshold=0.5)) == 0.5


def test_tile_without_dem_is_uninformative(crafted: CraftedDataset) -> None:
    emb = compute_embeddings(crafted.stats, SplitConfig(), show_progress=False)
    ids = emb.tile_ids.tolist()
    assert ids == crafted.stats["tile_id"].tolist()
    k = ids.index("ZZ999")
    assert not emb.informative[k]
    assert not emb.vectors[k].any()
    assert emb.informative.sum() == len(ids) - 1
    assert np.allclose(np.linalg.norm(emb.vectors[emb.informative], axis=1), 1.0, atol=1e-5)


def test_unreadable_tile_is_an_error_naming_it(crafted: CraftedDataset, tmp_path: Path) -> None:
    bad = tmp_path / "BAD01_satellite.tif"
    bad.write_bytes(b"not a tiff")
    frame = pd.concat(
        [crafted.stats.head(2), pd.DataFrame({"tile_id": ["BAD01"], "image_path": [str(bad)]})]
    )
    with pytest.raises(KelpsegError, match="BAD01_satellite.tif"):
        compute_embeddings(frame, SplitConfig(), show_progress=False)


def test_cache_is_reused_and_invalidated_by_options(
    crafted: CraftedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_read = emb_mod.read_dem

    def counting_read(path: str) -> np.ndarray:
        calls.append(path)
        return real_read(path)

    monkeypatch.setattr(emb_mod, "read_dem", counting_read)
    frame = crafted.stats.head(6)
    first = compute_embeddings(frame, SplitConfig(), cache_dir=tmp_path, show_progress=False)
    assert len(calls) == 6
    assert all(p.is_file() for p in cache_paths(tmp_path, "dem"))
    # Another threshold or fold setting does not change the embeddings: no tile is read.
    again = compute_embeddings(
        frame, SplitConfig(threshold=0.5, k=3), cache_dir=tmp_path, show_progress=False
    )
    assert len(calls) == 6
    assert np.array_equal(first.vectors, again.vectors)
    assert np.array_equal(first.informative, again.informative)
    # Another embedder option, or another tile list, recomputes.
    cfg = SplitConfig.model_validate({"dem": {"grid": 16}})
    compute_embeddings(frame, cfg, cache_dir=tmp_path, show_progress=False)
    assert len(calls) == 12
    compute_embeddings(frame.head(5), cfg, cache_dir=tmp_path, show_progress=False)
    assert len(calls) == 17


def test_corrupt_cache_is_recomputed(crafted: CraftedDataset, tmp_path: Path) -> None:
    frame = crafted.stats.head(3)
    first = compute_embeddings(frame, SplitConfig(), cache_dir=tmp_path, show_progress=False)
    npy, _ = cache_paths(tmp_path, "dem")
    npy.write_bytes(b"garbage")
    again = compute_embeddings(frame, SplitConfig(), cache_dir=tmp_path, show_progress=False)
    assert np.array_equal(first.vectors, again.vectors)
    assert np.load(npy).shape == first.vectors.shape


class TestTimmEmbedder:
    """``timm:<model>`` with random weights (no download) and the local-weights path."""

    timm = pytest.importorskip("timm")

    def cfg(self, **timm_opts: object) -> SplitConfig:
        opts = {"image_size": 64, "batch_size": 2, "device": "cpu", **timm_opts}
        return SplitConfig.model_validate({"embedder": "timm:test_resnet", "timm": opts})

    def test_random_weights_embed_tiles(self, crafted: CraftedDataset, tmp_path: Path) -> None:
        frame = crafted.stats[crafted.stats["tile_id"].isin(["T0000", "T0003", "T0100", "ZZ999"])]
        emb = compute_embeddings(frame, self.cfg(), cache_dir=tmp_path, show_progress=False)
        assert emb.vectors.shape == (4, 96)  # test_resnet's pooled features
        assert emb.informative.tolist() == [True, True, True, False]
        same = cosine(emb.vectors[0], emb.vectors[1])  # T0003 and T0000: same DEM
        assert same == pytest.approx(1.0, abs=1e-5)
        assert (
            cache_paths(tmp_path, "timm:test_resnet")[0].name == "embeddings_timm-test_resnet.npy"
        )
        # Seeded random init: a second build gives the same vectors.
        again = compute_embeddings(frame, self.cfg(), show_progress=False)
        assert np.allclose(emb.vectors, again.vectors, atol=1e-5)

    def test_pretrained_weights_load_from_a_local_file(
        self, crafted: CraftedDataset, tmp_path: Path
    ) -> None:
        import torch

        from kelpseg.split.timm_embedder import create_encoder

        random_cfg = self.cfg(init_seed=7).timm
        model = create_encoder("test_resnet", random_cfg)
        weights = tmp_path / "weights.pth"
        torch.save(model.state_dict(), weights)
        loaded = create_encoder(
            "test_resnet", self.cfg(pretrained=True, checkpoint=str(weights), init_seed=1).timm
        )
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
            assert torch.equal(a, b)

    def test_bad_model_or_weights_are_errors(self, tmp_path: Path) -> None:
        from kelpseg.split.timm_embedder import create_encoder

        with pytest.raises(KelpsegError, match="unknown timm model"):
            create_encoder("no_such_model_xyz", self.cfg().timm)
        with pytest.raises(KelpsegError, match="weights file does not exist"):
            create_encoder(
                "test_resnet", self.cfg(pretrained=True, checkpoint=str(tmp_path / "x.pth")).timm
            )
