"""Reading and writing tiles, masks and catalogs. Imports no other pipeline stage."""

from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import Catalog, build_catalog
from kelpseg.io.tiles import (
    BAND_NAMES,
    MISSING,
    TILE_SIZE,
    Tile,
    read_label,
    read_tile,
    write_label,
    write_mask,
    write_probability,
    write_tile,
)

__all__ = [
    "BAND_NAMES",
    "MISSING",
    "TILE_SIZE",
    "Catalog",
    "Tile",
    "atomic_path",
    "build_catalog",
    "read_label",
    "read_tile",
    "write_label",
    "write_mask",
    "write_probability",
    "write_tile",
]
