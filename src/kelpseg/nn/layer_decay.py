"""Layer-wise learning-rate decay over the encoder's blocks (the 1st place's recipe).

The encoder is cut into blocks in the order data flows through it: its children, with
containers (``Sequential``, ``ModuleList``, ``ModuleDict``, single-child wrappers such as smp's
timm encoder) opened up, so a ResNet gives stem conv, stem norm, then one block per residual
unit. The deepest block keeps the encoder's learning rate; each shallower one gets ``decay``
times the next, so the ImageNet-tuned early filters move least.
"""

from __future__ import annotations

from typing import Any

from torch import nn

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def encoder_blocks(encoder: nn.Module) -> list[list[nn.Parameter]]:
    """The encoder's parameters grouped by block, shallowest first (every parameter once)."""
    blocks: list[list[nn.Parameter]] = []
    seen: set[int] = set()

    def visit(module: nn.Module) -> None:
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        children = list(module.children())
        opens = isinstance(module, _CONTAINERS) or (len(children) == 1 and not own)
        if opens and children:
            for child in children:
                visit(child)
            return
        params = [p for p in module.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            blocks.append(params)

    own = list(encoder.parameters(recurse=False))
    if own:  # parameters held by the encoder itself (e.g. position embeddings) come first
        seen.update(id(p) for p in own)
        blocks.append(own)
    for child in encoder.children():
        visit(child)
    return blocks


def layer_decay_groups(
    encoder: nn.Module, lr: float, decay: float, weight_decay: float | None = None
) -> list[dict[str, Any]]:
    """Optimiser parameter groups of ``encoder``: block ``i`` of ``n`` at ``lr x decay^(n-1-i)``.

    Args:
        encoder: the network's encoder.
        lr: learning rate of the deepest block.
        decay: factor per block towards the input (1 = one rate).
        weight_decay: set on every group when given.
    """
    blocks = encoder_blocks(encoder)
    n = len(blocks)
    groups: list[dict[str, Any]] = []
    for i, params in enumerate(blocks):
        group: dict[str, Any] = {"params": params, "lr": lr * decay ** (n - 1 - i)}
        if weight_decay is not None:
            group["weight_decay"] = weight_decay
        groups.append(group)
    return groups
