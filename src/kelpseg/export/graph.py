"""The exportable pipeline: raw int16 tiles -> every member's inputs, sizing, network -> mean.

One torch module holds the whole inference path of a model or an ensemble, so that the ONNX
graph exported from it needs no preprocessing code: each member's
:class:`~kelpseg.features.InputBuilder` (members with the same features and band statistics
share one), padding or resizing as the member's :class:`~kelpseg.nn.data.InputSizer` does,
the network, the sigmoid, the crop back to the tile, and the weighted mean. :func:`onnx_export`
turns such a module into an ONNX graph.

The padding amounts are written as ``(-h) % multiple`` on purpose: the exporter simplifies
``(ceil(h / m) * m - h) // 2`` into a term with ``(-h) // 2``, which ONNX integer division
truncates instead of flooring, so every odd-sized tile was shifted by one pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kelpseg.errors import KelpsegError
from kelpseg.features.channels import InputBuilder
from kelpseg.nn.data.transforms import InputSizer
from kelpseg.nn.models import kelp_logit
from kelpseg.nn.module import KelpSegModule, stats_to_text

#: Above this many bytes of weights the graph keeps them in ``model.onnx.data`` (protobuf: 2 GB).
EXTERNAL_DATA_BYTES = 1_500_000_000
#: Ensemble modes the graph can hold (the logical vote modes need a threshold per member).
GRAPH_MODES = ("mean_prob", "mean_logit")
_EPS = 1e-7


def min_tile_size(sizer: InputSizer) -> int:
    """The smallest height/width the exported sizing handles like :class:`InputSizer` does.

    Reflection padding is one pass in the graph: each side's pad must stay below the tile's
    own size (the torch sizer repeats reflections for tinier tiles).
    """
    if sizer.strategy == "resize" or sizer.pad_mode != "reflect":
        return 2
    if sizer.size is None:
        return sizer.multiple // 2 + 1
    size = 2
    while -(-(sizer.size - size) // 2) > size - 1:
        size += 1
    return size


class ExportSizer(nn.Module):
    """The pad strategy of an :class:`InputSizer`, written with shape maths ONNX keeps right."""

    def __init__(self, sizer: InputSizer) -> None:
        super().__init__()
        if sizer.strategy != "pad":
            raise KelpsegError("only the pad strategy has a dynamic-size export")
        self.size, self.multiple, self.mode = sizer.size, sizer.multiple, sizer.pad_mode

    def pads(self, n: int) -> tuple[int, int]:
        """(before, after) padding of one dimension of ``n`` pixels."""
        total = (-n) % self.multiple if self.size is None else (self.size - n) % (2 * self.size)
        before = total // 2
        return before, total - before

    def forward(self, x: Tensor) -> Tensor:
        """Pad a (N, C, H, W) batch, centred, as the torch sizer does."""
        top, bottom = self.pads(x.shape[-2])
        left, right = self.pads(x.shape[-1])
        mode = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}[self.mode]
        return F.pad(x, (left, right, top, bottom), mode=mode)

    def restore(self, y: Tensor, height: int, width: int) -> Tensor:
        """Crop the padding away again."""
        top, _ = self.pads(height)
        left, _ = self.pads(width)
        return y[..., top : top + height, left : left + width]


class StaticSizer(nn.Module):
    """Any sizing strategy at a fixed tile size (the torch sizer itself, traced at that size)."""

    def __init__(self, sizer: InputSizer) -> None:
        super().__init__()
        self.sizer = sizer

    def forward(self, x: Tensor) -> Tensor:
        """Size a batch."""
        return self.sizer(x)

    def restore(self, y: Tensor, height: int, width: int) -> Tensor:
        """Bring a prediction back to the tile size."""
        return self.sizer.restore(y, (height, width))


class PortableEnsemble(nn.Module):
    """Raw (N, 7, H, W) int16 tiles -> (N, 1, H, W) float32 kelp probabilities.

    Args:
        modules: the trained members (their input builders, sizers and networks are shared,
            not copied).
        weights: normalised member weights.
        mode: ``mean_prob`` (the seed's) or ``mean_logit``.
        dynamic_hw: size with :class:`ExportSizer` (any tile size) rather than the fixed size.
    """

    def __init__(
        self,
        modules: Sequence[KelpSegModule],
        weights: Sequence[float],
        mode: str = "mean_prob",
        *,
        dynamic_hw: bool = True,
    ) -> None:
        super().__init__()
        if mode not in GRAPH_MODES:
            raise KelpsegError(f"ensemble mode {mode!r} cannot be exported; one of {GRAPH_MODES}")
        self.mode = mode
        self.weights = [float(w) for w in weights]
        keys: dict[str, int] = {}
        builders: list[InputBuilder] = []
        self.builder_of: list[int] = []
        for module in modules:
            # Members trained with the same features and statistics build identical inputs.
            key = module.config.features.model_dump_json() + str(stats_to_text(module.stats))
            if key not in keys:
                keys[key] = len(builders)
                builders.append(module.inputs)
            self.builder_of.append(keys[key])
        self.builders = nn.ModuleList(builders)
        self.networks = nn.ModuleList(m.model for m in modules)
        sizers = [ExportSizer(m.sizer) if dynamic_hw else StaticSizer(m.sizer) for m in modules]
        self.sizers = nn.ModuleList(sizers)

    def forward(self, raw: Tensor) -> Tensor:
        """Kelp probabilities of a raw batch, at the tiles' own size."""
        height, width = raw.shape[-2], raw.shape[-1]
        inputs = [builder(raw) for builder in self.builders]
        merged: Tensor | None = None
        for i, (network, sizer) in enumerate(zip(self.networks, self.sizers, strict=True)):
            out = network(sizer(inputs[self.builder_of[i]]))
            restore: Any = sizer.restore  # ExportSizer or StaticSizer (ModuleList loses the type)
            # A 2-class softmax head becomes its kelp logit; an auxiliary tile head is dropped.
            head = kelp_logit(out[0] if isinstance(out, tuple) else out)
            logits = restore(head, height, width)
            term = torch.sigmoid(logits.float())
            if self.mode == "mean_logit":
                p = term.clamp(_EPS, 1.0 - _EPS)
                term = torch.log(p) - torch.log1p(-p)
            term = term * self.weights[i]
            merged = term if merged is None else merged + term
        assert merged is not None  # members are never empty (checked by the caller)
        return torch.sigmoid(merged) if self.mode == "mean_logit" else merged


def _kthvalue(x: Any, k: int, dim: int = -1, keepdim: bool = False) -> tuple[Any, Any]:
    """ONNX for ``aten.kthvalue`` (per-sample quantiles), which the exporter lacks: TopK."""
    from onnxscript import opset18

    op: Any = opset18  # onnxscript's stubs type Constant's output too loosely for TopK
    values, indices = op.TopK(x, op.Constant(value_ints=[k]), axis=dim, largest=0, sorted=1)
    start, end = op.Constant(value_ints=[k - 1]), op.Constant(value_ints=[k])
    axes = op.Constant(value_ints=[dim])
    values, indices = op.Slice(values, start, end, axes), op.Slice(indices, start, end, axes)
    if not keepdim:
        values, indices = op.Squeeze(values, axes), op.Squeeze(indices, axes)
    return values, indices


def onnx_export(
    module: torch.nn.Module, example: torch.Tensor, path: Path, *, dynamic_hw: bool, opset: int
) -> None:
    """Export ``module`` (raw tiles in, one tensor out) with a dynamic batch and, optionally,
    dynamic height and width; the graph's input is ``raw`` and its output ``prob``.

    Raises:
        KelpsegError: the exporter failed (its first line is kept).
    """
    dyn = torch.export.Dim.DYNAMIC
    shapes = {0: dyn, 2: dyn, 3: dyn} if dynamic_hw else {0: dyn}
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    try:
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=True,
            opset_version=opset,
            input_names=["raw"],
            output_names=["prob"],
            dynamic_shapes={"raw": shapes},
            external_data=weight_bytes > EXTERNAL_DATA_BYTES,
            custom_translation_table={torch.ops.aten.kthvalue.default: _kthvalue},
            verbose=False,
        )
    except Exception as exc:  # the exporter raises many types; the first line says enough
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise KelpsegError(f"ONNX export failed ({type(exc).__name__}: {first})") from exc
