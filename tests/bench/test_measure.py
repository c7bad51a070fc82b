"""Timing helpers, figures, FLOP counting and the training-config merge of the suites."""

from __future__ import annotations

import math

import pytest
from torch import nn

from kelpseg.bench.flops import bf16_peak_tflops, forward_flops, train_flops_per_sample
from kelpseg.bench.measure import Figure, median_rate, time_repeats
from kelpseg.bench.train import merged, window_rates


def test_time_repeats_runs_warmup_then_repeats() -> None:
    calls: list[int] = []
    seconds = time_repeats(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5
    assert len(seconds) == 3
    assert all(s >= 0 for s in seconds)


def test_median_rate_uses_the_median() -> None:
    assert median_rate(10, [1.0, 100.0, 2.0]) == pytest.approx(5.0)


def test_figure_ratio_and_target() -> None:
    figure = Figure("train.a", 45.0, "x/s", 50.0, "model only", target=0.9)
    assert figure.ratio == pytest.approx(0.9)
    assert figure.target_met
    assert math.isnan(Figure("a", 1.0, "x/s", 0.0, "none").ratio)
    assert Figure.from_dict(figure.to_dict()) == figure


def test_window_rates_cut_steps_into_windows() -> None:
    times = [0.0, 1.0, 2.0, 4.0, 6.0, 7.0]  # step end times; warm-up of 2 steps ends at 1.0
    assert window_rates(times, warmup=2, steps=2, batch=4) == pytest.approx([8 / 3, 8 / 3])
    assert window_rates(times, warmup=1, steps=5, batch=1) == pytest.approx([5 / 7])


def test_forward_flops_of_a_convolution_match_the_formula() -> None:
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    assert forward_flops(conv, 3, 16) == 2 * 3 * 8 * 9 * 16 * 16
    assert train_flops_per_sample(conv, 3, 16) == 3 * forward_flops(conv, 3, 16)
    assert conv.weight.device.type == "cpu"  # counted on a meta copy


def test_depthwise_convolution_is_counted_per_group() -> None:
    depthwise = nn.Conv2d(8, 8, kernel_size=3, padding=1, groups=8, bias=False)
    assert forward_flops(depthwise, 8, 16) == 2 * 8 * 9 * 16 * 16


def test_bf16_peaks_by_device_name() -> None:
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)
    assert bf16_peak_tflops("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert bf16_peak_tflops("NVIDIA H200") == pytest.approx(989.4)
    assert bf16_peak_tflops("Some Future GPU") is None


def test_merged_keeps_unpatched_keys() -> None:
    base = {"data": {"batch_size": 16, "crop_size": 128}, "loss": [{"name": "dice"}]}
    out = merged(base, {"data": {"batch_size": 4}, "seed": 1})
    assert out == {
        "data": {"batch_size": 4, "crop_size": 128},
        "loss": [{"name": "dice"}],
        "seed": 1,
    }
    assert base["data"]["batch_size"] == 16
