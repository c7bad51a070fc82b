"""What one registry entry is: a named channel computed on a whole batch of bands."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import torch

from kelpseg.errors import KelpsegError
from kelpseg.features.bands import BASE_BANDS, SYMBOLS, BandSet
from kelpseg.features.expression import compile_formula

Source = Literal["spyndex", "author", "kelpseg"]
ChannelFn = Callable[[BandSet], torch.Tensor]


@dataclass(frozen=True)
class IndexEntry:
    """One channel of the registry.

    Attributes:
        name: the key users type (``"NDVI"``).
        compute: function of a :class:`BandSet` returning a (N, H, W) float tensor.
        bands: base bands it reads (``("NIR", "R")``), for docs and checks.
        source: ``"spyndex"`` (formula from the Awesome Spectral Indices catalogue),
            ``"author"`` (the 2nd-place author's definition of a seed index) or ``"kelpseg"``
            (written here).
        description: the long name and, where it matters, how it differs from a namesake.
        formula: the formula as text (spyndex symbols: B, G, R, N, S1, DEM).
        constants: default values of the formula's constants (overridable in config).
        masked: whether QA / land masking applies (false for channels that are masks of the
            DEM, which clouds do not hide).
        reference: where the formula comes from.
        tile_context: the value of a pixel depends on the whole tile (a tile median, the
            distance to the nearest land), so a training crop sees another value than
            prediction on the whole tile does.
    """

    name: str
    compute: ChannelFn
    bands: tuple[str, ...]
    source: Source
    description: str
    formula: str
    constants: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    masked: bool = True
    reference: str = ""
    tile_context: bool = False

    def __deepcopy__(self, memo: dict[int, object]) -> IndexEntry:
        # Immutable registry entries are shared, not copied: a deep copy of a module that
        # holds the registry (SWA's averaged model) would otherwise trip on the constants.
        return self


def ordered_bands(names: Iterable[str]) -> tuple[str, ...]:
    """Band names in tile order (SWIR1, NIR, R, G, B, QA, DEM), without repeats."""
    wanted = set(names)
    return tuple(b for b in BASE_BANDS if b in wanted)


def formula_entry(
    name: str,
    formula: str,
    description: str,
    *,
    source: Source,
    constants: Mapping[str, float] | None = None,
    reference: str = "",
) -> IndexEntry:
    """An entry computed from a formula string over spyndex band symbols and constants.

    Raises:
        KelpsegError: the formula reads a symbol that is neither a band nor a given constant.
    """
    compiled = compile_formula(formula)
    constants = dict(constants or {})
    band_symbols = sorted(compiled.symbols & SYMBOLS.keys())
    unknown = compiled.symbols - SYMBOLS.keys() - constants.keys()
    if unknown:
        raise KelpsegError(f"index {name}: formula reads unknown symbols {sorted(unknown)}")
    const_names = sorted(compiled.symbols & constants.keys())

    def compute(bands: BandSet) -> torch.Tensor:
        env: dict[str, torch.Tensor | float] = {s: bands[s] for s in band_symbols}
        env.update({c: bands.constant(c, constants[c]) for c in const_names})
        value = compiled(env)
        if isinstance(value, torch.Tensor):
            return value
        return torch.full_like(bands.reference, value)

    used = {c: constants[c] for c in const_names}
    return IndexEntry(
        name=name,
        compute=compute,
        bands=ordered_bands(SYMBOLS[s] for s in band_symbols),
        source=source,
        description=description,
        formula=formula,
        constants=MappingProxyType(used),
        reference=reference,
    )
