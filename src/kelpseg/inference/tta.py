"""Test-time augmentation: flips and 90-degree rotations, each inverted on the output.

A transform is applied to the input batch, the model runs, the output is turned into
probabilities and the inverse transform brings it back to the input's orientation; the
per-transform probabilities are then merged (mean, max, min or geometric mean).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from kelpseg.errors import KelpsegError

# Defined without torch, so prediction configs load on the light install; re-exported here.
from kelpseg.inference.config import TtaConfig as TtaConfig

TensorFn = Callable[[Tensor], Tensor]


def _rot(k: int) -> TensorFn:
    return lambda t: torch.rot90(t, k, dims=(-2, -1))


def _flip(dim: int) -> TensorFn:
    return lambda t: torch.flip(t, dims=(dim,))


def _transpose(t: Tensor) -> Tensor:
    return t.transpose(-2, -1)


def _antitranspose(t: Tensor) -> Tensor:
    return torch.flip(t, dims=(-2, -1)).transpose(-2, -1)


#: name -> (forward, inverse), acting on the last two (H, W) dims: the dihedral group D4.
TRANSFORMS: dict[str, tuple[TensorFn, TensorFn]] = {
    "identity": (lambda t: t, lambda t: t),
    "hflip": (_flip(-1), _flip(-1)),
    "vflip": (_flip(-2), _flip(-2)),
    "rot90": (_rot(1), _rot(-1)),
    "rot180": (_rot(2), _rot(-2)),
    "rot270": (_rot(3), _rot(-3)),
    "transpose": (_transpose, _transpose),
    "antitranspose": (_antitranspose, _antitranspose),
}

DEFAULT_TRANSFORMS: tuple[str, ...] = tuple(TRANSFORMS)

_EPS = 1e-7


def _gmean(stack: Tensor) -> Tensor:
    # Clamped so that one member's exact 0 does not turn every other opinion into log(0).
    return torch.exp(torch.log(stack.clamp_min(_EPS)).mean(dim=0))


#: name -> merge of a (T, N, 1, H, W) stack of probabilities into (N, 1, H, W).
MERGES: dict[str, Callable[[Tensor], Tensor]] = {
    "mean": lambda s: s.mean(dim=0),
    "max": lambda s: s.amax(dim=0),
    "min": lambda s: s.amin(dim=0),
    "gmean": _gmean,
}


def to_probability(out: Tensor, output: Literal["logits", "probs"] = "logits") -> Tensor:
    """Model output (N, 1 or 2, H, W) -> kelp probability (N, 1, H, W), float32.

    One channel is a binary head (sigmoid of logits); two channels are a softmax head whose
    channel 1 is kelp.
    """
    if out.ndim != 4 or out.shape[1] not in (1, 2):
        raise KelpsegError(f"model output must be (N, 1 or 2, H, W), got {tuple(out.shape)}")
    out = out.float()
    if out.shape[1] == 1:
        return torch.sigmoid(out) if output == "logits" else out
    probs = torch.softmax(out, dim=1) if output == "logits" else out
    return probs[:, 1:2]


def tta_predict(
    fn: TensorFn,
    x: Tensor,
    transforms: Sequence[str] = DEFAULT_TRANSFORMS,
    merge: str = "mean",
    output: Literal["logits", "probs"] = "logits",
) -> Tensor:
    """Kelp probabilities of a batch, averaged over test-time transforms.

    Args:
        fn: the model (or any callable) mapping (N, C, H, W) to (N, 1 or 2, H', W') outputs
            with the spatial size of its input.
        x: the input batch (N, C, H, W).
        transforms: names from :data:`TRANSFORMS`; ``("identity",)`` switches TTA off.
        merge: one of :data:`MERGES`.
        output: whether ``fn`` returns logits or probabilities.

    Returns:
        (N, 1, H, W) float32 probabilities in the orientation of ``x``.
    """
    if x.ndim != 4:
        raise KelpsegError(f"TTA input must be (N, C, H, W), got {tuple(x.shape)}")
    if merge not in MERGES:
        raise KelpsegError(f"unknown TTA merge {merge!r}; known: {', '.join(MERGES)}")
    if not transforms:
        raise KelpsegError("TTA needs at least one transform")
    outputs = []
    with torch.no_grad():
        for name in transforms:
            if name not in TRANSFORMS:
                known = ", ".join(TRANSFORMS)
                raise KelpsegError(f"unknown TTA transform {name!r}; known: {known}")
            forward, inverse = TRANSFORMS[name]
            moved = forward(x)
            prob = to_probability(fn(moved), output)
            if prob.shape[-2:] != moved.shape[-2:] or prob.shape[0] != x.shape[0]:
                raise KelpsegError(
                    f"model output {tuple(prob.shape)} does not match its input "
                    f"{tuple(moved.shape)}"
                )
            outputs.append(inverse(prob))
        if len(outputs) == 1:
            return outputs[0]
        return MERGES[merge](torch.stack(outputs))
