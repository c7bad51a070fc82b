"""The input pipeline inside the graph equals the torch one, pixel for pixel, where it matters.

Each feature config's :class:`~kelpseg.features.InputBuilder` is exported the way
``export_model`` exports it (dynamo, dynamic batch and size, opset 18) and run by ONNX Runtime
on crafted tiles with SLC-off stripes of missing pixels, a cloud, land and no-DEM sea.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from kelpseg.export.graph import onnx_export
from kelpseg.export.verify import crafted_tiles
from kelpseg.features.channels import InputBuilder
from kelpseg.features.config import FeatureConfig
from kelpseg.features.stats import BandStats
from tests.portable.exported import UNET_CHANNELS, with_missing

pytestmark = pytest.mark.slow

CONFIGS: dict[str, dict[str, Any]] = {
    "quantile-stats": {"channels": UNET_CHANNELS},
    "zscore-stats": {"channels": UNET_CHANNELS, "normalization": "z-score"},
    "per-sample-quantile-dem": {
        "channels": ["DEM", "DEMWM", "NIR", "SWIR1", "NDVI"],
        "normalization": "per-sample-quantile",
        "mask_using_water_mask": False,
    },
    "per-sample-min-max-zero-fill": {
        "channels": ["QA", "G", "NDVI"],
        "normalization": "per-sample-min-max",
        "fill_value": "zero",
        "mask_using_qa": False,
    },
}


def export_builder(
    builder: InputBuilder, path: Path, static_hw: tuple[int, int] | None = None
) -> ort.InferenceSession:
    """Export as ``export_model`` does: dynamic size, or fixed where the ops need it."""
    example = torch.from_numpy(crafted_tiles(2, *(static_hw or (70, 66)), seed=1))
    onnx_export(builder, example, path, dynamic_hw=static_hw is None, opset=18)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_in_graph_inputs_match_torch_on_crafted_tiles(
    name: str, quantile_stats: BandStats, tmp_path: Path
) -> None:
    config = FeatureConfig.model_validate(CONFIGS[name])
    stats = quantile_stats if config.normalization in ("quantile", "z-score") else None
    builder = InputBuilder(config, stats).eval()
    # kthvalue's k comes from the tile size: per-sample quantiles export at a fixed size.
    static = (61, 83) if config.normalization == "per-sample-quantile" else None
    session = export_builder(builder, tmp_path / "inputs.onnx", static)
    raw = with_missing(crafted_tiles(3, 61, 83, seed=5))
    got = session.run(None, {"raw": raw})[0]
    with torch.no_grad():
        expected = builder(torch.from_numpy(raw)).numpy()
    assert got.shape == expected.shape == (3, len(config.channels), 61, 83)
    assert np.isfinite(got).all()
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= 1e-5 * scale
    missing = raw[:, 1] == -32768
    cloud = raw[:, 5] > 0
    land = raw[:, 6] > 0
    for where in (missing, cloud, land, ~(missing | cloud | land)):
        assert where.any()  # the crafted tiles hold every case
        diff = np.abs(got - expected).transpose(1, 0, 2, 3)[:, where]
        assert diff.max() <= 1e-5 * scale
