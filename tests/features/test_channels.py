"""InputBuilder: the model input from raw tiles, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.features import SEED_CHANNELS, ChannelStack, FeatureConfig, InputBuilder
from tests.features.conftest import fake_stats


def test_seed_input_is_24_finite_float_channels_in_config_order(raw_batch: torch.Tensor) -> None:
    config = FeatureConfig()
    assert config.channels == list(SEED_CHANNELS) and len(SEED_CHANNELS) == 24
    builder = InputBuilder(config, fake_stats(config.channels))
    out = builder(raw_batch)
    assert out.shape == (3, 24, 32, 32) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1  # quantile: clipped
    masked = builder.masked_channels(raw_batch)
    for i, name in enumerate(config.channels):
        alone = ChannelStack([name])(raw_batch)[:, 0]
        torch.testing.assert_close(masked[:, i], alone, equal_nan=True)


def test_forward_is_the_normalised_raw_channels(raw_batch: torch.Tensor) -> None:
    config = FeatureConfig(channels=["NIR", "NDVI", "DEMWM"], normalization="z-score")
    stats = fake_stats(config.channels)
    builder = InputBuilder(config, stats)
    raw = builder.raw_channels(raw_batch).numpy()
    mean = np.array([stats.mean[c] for c in config.channels])[None, :, None, None]
    np.testing.assert_allclose(builder(raw_batch).numpy(), raw - mean, rtol=1e-6)


def test_builder_refuses_stats_for_other_channels_or_options() -> None:
    config = FeatureConfig(channels=["R", "NDVI", "SABI"])
    with pytest.raises(KelpsegError, match=r"lack channel.*SABI"):
        InputBuilder(config, fake_stats(["R", "NDVI"]))
    with pytest.raises(KelpsegError, match="mask_using_qa=False"):
        InputBuilder(config, fake_stats(config.channels, mask_using_qa=False))
    with pytest.raises(KelpsegError, match="adjustment='zero-adjusted'"):
        InputBuilder(config, fake_stats(config.channels, adjustment="zero-adjusted"))
    with pytest.raises(KelpsegError, match="dem_clip_zero"):
        InputBuilder(config, fake_stats(config.channels, dem_clip_zero=False))
    with pytest.raises(KelpsegError, match="index_constants"):
        InputBuilder(config, fake_stats(config.channels, index_constants={"alpha": 0.2}))
    with pytest.raises(KelpsegError, match=r"no 0\.05 quantile"):
        InputBuilder(
            config.model_copy(update={"quantiles": (0.05, 0.95)}), fake_stats(config.channels)
        )
    with pytest.raises(KelpsegError, match="needs band statistics"):
        InputBuilder(config)
    InputBuilder(config, fake_stats(["B", *config.channels]))  # extra channels are fine


@pytest.mark.slow
def test_builder_has_no_data_dependent_python_in_forward(raw_batch: torch.Tensor) -> None:
    """torch.export fails on .item(), numpy and branches on data: the ONNX-exportable subset."""
    config = FeatureConfig()
    builder = InputBuilder(config, fake_stats(config.channels)).eval()
    exported = torch.export.export(builder, (raw_batch,))
    torch.testing.assert_close(exported.module()(raw_batch), builder(raw_batch))


def test_onnx_export_when_available(tmp_path, raw_batch: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    config = FeatureConfig()
    builder = InputBuilder(config, fake_stats(config.channels)).eval()
    path = tmp_path / "input.onnx"
    torch.onnx.export(builder, (raw_batch,), str(path), opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: raw_batch.numpy()})
    np.testing.assert_allclose(out, builder(raw_batch).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_builder_runs_on_the_gpu(raw_batch: torch.Tensor) -> None:
    config = FeatureConfig()
    builder = InputBuilder(config, fake_stats(config.channels))
    cpu = builder(raw_batch)
    gpu = builder.to("cuda")(raw_batch.to("cuda"))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
