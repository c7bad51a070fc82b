"""TTA: every transform is undone on the output; merges; equivariant models are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.inference.tta import (
    DEFAULT_TRANSFORMS,
    MERGES,
    TRANSFORMS,
    TtaConfig,
    to_probability,
    tta_predict,
)

# Where input pixel (r, c) of an H x W image lands after each transform, and the frame's
# shape there: written out by hand, independently of torch's flip/rot90.
_WHERE = {
    "identity": lambda r, c, h, w: ((r, c), (h, w)),
    "hflip": lambda r, c, h, w: ((r, w - 1 - c), (h, w)),
    "vflip": lambda r, c, h, w: ((h - 1 - r, c), (h, w)),
    "rot180": lambda r, c, h, w: ((h - 1 - r, w - 1 - c), (h, w)),
    "rot90": lambda r, c, h, w: ((w - 1 - c, r), (w, h)),
    "rot270": lambda r, c, h, w: ((c, h - 1 - r), (w, h)),
    "transpose": lambda r, c, h, w: ((c, r), (w, h)),
    "antitranspose": lambda r, c, h, w: ((w - 1 - c, h - 1 - r), (w, h)),
}


def _position_fn(y: torch.Tensor) -> torch.Tensor:
    """Not equivariant: adds each pixel's flat index (in the frame it sees) to channel 0."""
    h, w = y.shape[-2:]
    index = torch.arange(h * w, dtype=torch.float64).reshape(h, w)
    return y[:, :1] + index


def test_the_registry_covers_the_dihedral_group() -> None:
    assert set(TRANSFORMS) == set(_WHERE)
    assert tuple(TRANSFORMS) == DEFAULT_TRANSFORMS


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_inverse_undoes_forward_on_a_non_square_batch(name: str) -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    forward, inverse = TRANSFORMS[name]
    assert torch.equal(inverse(forward(x)), x)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_each_transform_is_inverted_on_the_output(name: str) -> None:
    h, w = 4, 6
    x = torch.zeros(1, 2, h, w, dtype=torch.float64)
    x[0, 0] = torch.rand(h, w, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = tta_predict(_position_fn, x, transforms=(name,), output="probs")
    assert out.shape == (1, 1, h, w)
    expected = np.empty((h, w))
    for r in range(h):
        for c in range(w):
            (i, j), (_, fw) = _WHERE[name](r, c, h, w)
            expected[r, c] = x[0, 0, r, c].item() + i * fw + j
    np.testing.assert_allclose(out[0, 0].double().numpy(), expected, rtol=0, atol=1e-3)


@pytest.mark.parametrize("merge", list(MERGES))
def test_an_equivariant_model_gives_the_same_result_with_and_without_tta(merge: str) -> None:
    x = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(0))

    def per_pixel(y: torch.Tensor) -> torch.Tensor:
        return 1.5 * y[:, :1] - 0.7 * y[:, 2:3] + 0.1

    plain = tta_predict(per_pixel, x, transforms=("identity",))
    merged = tta_predict(per_pixel, x, transforms=DEFAULT_TRANSFORMS, merge=merge)
    torch.testing.assert_close(merged, plain, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(plain, torch.sigmoid(per_pixel(x)))


def test_merges_reduce_over_transforms_as_documented() -> None:
    stack = torch.tensor([0.2, 0.8, 0.5]).reshape(3, 1, 1, 1, 1)
    assert MERGES["mean"](stack).item() == pytest.approx(0.5)
    assert MERGES["max"](stack).item() == pytest.approx(0.8)
    assert MERGES["min"](stack).item() == pytest.approx(0.2)
    assert MERGES["gmean"](stack).item() == pytest.approx((0.2 * 0.8 * 0.5) ** (1 / 3))


def test_max_merge_takes_the_largest_inverted_output_per_pixel() -> None:
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    names = ("identity", "hflip", "rot90")
    out = tta_predict(_position_fn, x, transforms=names, merge="max", output="probs")
    singles = [tta_predict(_position_fn, x, transforms=(n,), output="probs") for n in names]
    torch.testing.assert_close(out, torch.stack(singles).amax(dim=0))
    assert not torch.equal(singles[0], singles[1])


def test_two_channel_softmax_heads_give_channel_one() -> None:
    logits = torch.tensor([[[[0.0]], [[2.0]]]])
    prob = to_probability(logits)
    assert prob.shape == (1, 1, 1, 1)
    assert prob.item() == pytest.approx(np.exp(2) / (1 + np.exp(2)))
    assert to_probability(torch.full((1, 1, 2, 2), 0.3), "probs").max().item() == pytest.approx(0.3)


def test_bad_arguments_are_kelpseg_errors() -> None:
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(KelpsegError, match="unknown TTA transform"):
        tta_predict(lambda y: y[:, :1], x, transforms=("mirror",))
    with pytest.raises(KelpsegError, match="unknown TTA merge"):
        tta_predict(lambda y: y[:, :1], x, merge="median")
    with pytest.raises(KelpsegError, match="does not match"):
        tta_predict(lambda y: y[:, :1, :4], x)
    with pytest.raises(KelpsegError, match="N, 1 or 2"):
        tta_predict(lambda y: y, x)
    with pytest.raises(KelpsegError, match="N, C, H, W"):
        tta_predict(lambda y: y, x[0])


def test_tta_config_checks_names() -> None:
    assert TtaConfig().transforms == list(DEFAULT_TRANSFORMS)
    with pytest.raises(ValueError, match="unknown or no transforms"):
        TtaConfig(transforms=["spin"])
    with pytest.raises(ValueError, match="unknown merge"):
        TtaConfig(merge="median")
