"""FLOPs of a training step, the GPU's bf16 peak, and the share of it a run reaches.

Counting: the network's forward pass is run once on meta tensors (shapes only, no arithmetic)
under :class:`torch.utils.flop_counter.FlopCounterMode`, which counts convolutions and matrix
products as 2 x multiply-adds (normalisation, activations and other element-wise work are not
counted). A training step is taken as 3 x the forward pass: the backward pass computes the
input gradient and the weight gradient, each as costly as the forward. FlopCounterMode's own
backward count is not used: its convolution-backward formula ignores ``groups`` and counts a
depthwise convolution's weight gradient as a dense one (for Unet + EfficientNet-B5 it reports
26 x the forward instead of about 2 x).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kelpseg.bench.measure import median_rate, time_repeats

#: Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendor's datasheets, matched
#: by substring of ``torch.cuda.get_device_name()``, most specific first.
BF16_PEAK_TFLOPS: dict[str, float] = {
    "H200": 989.4,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,  # SXM (reports as "H100 80GB HBM3")
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "A10G": 70.0,
    "L40S": 362.0,
    "L4": 121.0,
    "RTX 4090": 165.2,
}
TRAIN_STEP_FACTOR = 3.0  # forward + input gradient + weight gradient


def forward_flops(model: nn.Module, in_channels: int, size: int) -> float:
    """FLOPs of one sample's forward pass at ``size`` x ``size`` px (counted on meta tensors).

    The model is copied to the meta device; the original is left as it is.
    """
    meta = copy.deepcopy(model).to("meta")
    x = torch.empty(1, in_channels, size, size, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(x)
    return float(counter.get_total_flops())


def train_flops_per_sample(model: nn.Module, in_channels: int, size: int) -> float:
    """FLOPs of one sample's training step (forward + backward, see the module docstring)."""
    return TRAIN_STEP_FACTOR * forward_flops(model, in_channels, size)


def bf16_peak_tflops(device_name: str) -> float | None:
    """The datasheet dense bf16 peak of a GPU by its name, or None when unknown."""
    for key, peak in BF16_PEAK_TFLOPS.items():
        if key in device_name:
            return peak
    return None


def matmul_tflops(
    device: torch.device, dtype: torch.dtype = torch.bfloat16, size: int | None = None
) -> float:
    """Measured matrix-product rate (TFLOP/s) of a device: the ceiling a network can approach.

    8192 x 8192 products on a GPU, 1024 x 1024 on a CPU; median of repeated runs.
    """
    cuda = device.type == "cuda"
    size = size or (8192 if cuda else 1024)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, generator=gen).to(dtype)
    b = torch.randn(size, size, device=device, generator=gen).to(dtype)
    seconds = time_repeats(lambda: a @ b, repeats=20 if cuda else 5, warmup=3, device=device)
    return median_rate(2 * size**3, seconds) / 1e12
