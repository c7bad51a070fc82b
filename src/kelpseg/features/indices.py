"""The index registry: one dict from the name a user types to its :class:`IndexEntry`.

Filled in one place, here: spyndex's catalogue first, then kelpseg's own entries. Where the
seed meant a different index than spyndex under the same acronym (AVI, GDVI, MVI) or used
other constants (ATSAVI), the seed's keeps the name and spyndex's is kept as
``spyndex.<name>``. Later channel kinds (offset NIR, land closeness, filter banks) are added
to :data:`INDICES` the same way: their function receives the whole :class:`BandSet`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from kelpseg.errors import KelpsegError
from kelpseg.features.aquatic import kelpseg_entries
from kelpseg.features.bands import BASE_BANDS
from kelpseg.features.entry import IndexEntry, formula_entry
from kelpseg.features.firstplace import firstplace_entries
from kelpseg.features.spyndex_indices import spyndex_entries

# Same spyndex formula, the seed's constants (the Index DataBase's Landsat soil line).
SEED_CONSTANTS: dict[str, dict[str, float]] = {"ATSAVI": {"sla": 1.22, "slb": 0.03}}
SHADOW_PREFIX = "spyndex."


def _build() -> tuple[dict[str, IndexEntry], dict[str, str]]:
    spx, skipped = spyndex_entries()
    registry: dict[str, IndexEntry] = dict(spx)
    for name, constants in SEED_CONSTANTS.items():
        base = spx[name]
        registry[SHADOW_PREFIX + name] = replace(base, name=SHADOW_PREFIX + name)
        registry[name] = formula_entry(
            name,
            base.formula,
            f"{base.description}; the seed's constants",
            source="spyndex",
            constants={**base.constants, **constants},
            reference=base.reference,
        )
    for name, entry in {**kelpseg_entries(), **firstplace_entries()}.items():
        if name in spx:
            registry[SHADOW_PREFIX + name] = replace(spx[name], name=SHADOW_PREFIX + name)
        registry[name] = entry
    ordered = dict(sorted(registry.items(), key=lambda item: (item[0].lower(), item[0])))
    return ordered, skipped


INDICES: dict[str, IndexEntry]
SKIPPED_SPYNDEX: dict[str, str]
INDICES, SKIPPED_SPYNDEX = _build()


def available_channels() -> list[str]:
    """Every channel name a config may list: the seven base bands, then every index."""
    return [*BASE_BANDS, *INDICES]


def known_constants() -> list[str]:
    """The names of every formula constant some registry entry reads (``alpha``, ``L`` ...)."""
    return sorted({key for entry in INDICES.values() for key in entry.constants})


def unknown_channels(
    names: Sequence[str], registry: Mapping[str, IndexEntry] | None = None
) -> list[str]:
    """The names in ``names`` that are neither a base band nor a registry entry."""
    known = set(BASE_BANDS) | (INDICES if registry is None else registry).keys()
    return [n for n in names if n not in known]


def check_channels(names: Sequence[str], registry: Mapping[str, IndexEntry] | None = None) -> None:
    """Raise :class:`KelpsegError` naming unknown channels, with close matches."""
    bad = unknown_channels(names, registry)
    if not bad:
        return
    known = [*BASE_BANDS, *(INDICES if registry is None else registry)]
    hints = []
    for name in bad:
        close = difflib.get_close_matches(name, known, n=3)
        hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    raise KelpsegError(f"unknown channel(s) {'; '.join(hints)}; see `kelpseg channels`")
