"""The index registry: one dict from the name a user types to its :class:`IndexEntry`.

Filled in one place, here: spyndex's catalogue first, then the seed's index names with the
2nd-place author's definitions (:mod:`kelpseg.features.seed_indices`), kelpseg's 0/1 water
masks and the 1st place's per-tile channels. Names follow one scheme: a bare name is the
seed's (the author's definition) or, where the seed has none, the catalogue's; where a seed
name shadows another definition, that one stays reachable as ``<source>.<name>``:
``spyndex.TVI`` (the catalogue's formula), ``kelpseg.DEMWM`` (kelpseg's 0/1 mask). Later
channel kinds (offset NIR, land closeness, filter banks) are added to :data:`INDICES` the same
way: their function receives the whole :class:`BandSet`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from kelpseg.errors import KelpsegError
from kelpseg.features.bands import BASE_BANDS
from kelpseg.features.entry import IndexEntry
from kelpseg.features.firstplace import firstplace_entries
from kelpseg.features.seed_indices import author_entries
from kelpseg.features.spyndex_indices import spyndex_entries
from kelpseg.features.water_masks import water_mask_entries

SHADOW_PREFIX = "spyndex."


def _build() -> tuple[dict[str, IndexEntry], dict[str, str]]:
    spx, skipped = spyndex_entries()
    registry: dict[str, IndexEntry] = dict(spx)
    for name, entry in {**author_entries(), **firstplace_entries()}.items():
        if name in spx:
            registry[SHADOW_PREFIX + name] = replace(spx[name], name=SHADOW_PREFIX + name)
        registry[name] = entry
    registry.update(water_mask_entries())
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
