"""The prepared store on disk: manifest, file names and validated, read-only memory maps.

Opening a store checks what is cheap to check every time (manifest format, each split complete,
the index against the manifest's checksum, array headers and exact file sizes); :func:`verify_store`
also re-hashes every byte against the per-chunk digests written by ``kelpseg prepare``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path

FORMAT = "kelpseg-store"
VERSION = 1
MANIFEST_NAME = "manifest.json"
_RERUN = "re-run kelpseg prepare"


def split_files(split: str, *, labelled: bool) -> dict[str, str | None]:
    """File names of one split inside the store folder."""
    return {
        "images": f"{split}_images.int16.npy",
        "masks": f"{split}_masks.uint8.npy" if labelled else None,
        "index": f"{split}_index.parquet",
    }


def tile_ids_digest(tile_ids: Sequence[str]) -> str:
    """SHA-256 of the tile ids in row order: identifies which tiles a store holds."""
    return hashlib.sha256("\n".join(tile_ids).encode()).hexdigest()


def tiles_digest(
    images: Sequence[np.ndarray] | np.ndarray, masks: Sequence[np.ndarray] | np.ndarray | None
) -> str:
    """BLAKE2b of consecutive tiles (image then mask bytes, tile by tile): one manifest chunk."""
    digest = hashlib.blake2b(digest_size=16)
    for i, image in enumerate(images):
        digest.update(np.ascontiguousarray(image).tobytes())
        if masks is not None:
            digest.update(np.ascontiguousarray(masks[i]).tobytes())
    return digest.hexdigest()


def new_manifest() -> dict[str, Any]:
    """An empty manifest."""
    return {"format": FORMAT, "version": VERSION, "splits": {}}


def read_manifest(root: Path, *, strict: bool = True) -> dict[str, Any] | None:
    """The store's manifest; with ``strict=False`` ``None`` replaces the errors."""
    path = Path(root) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        if strict:
            msg = f"not a prepared store (no {MANIFEST_NAME}); run kelpseg prepare"
            raise KelpsegError(msg, root) from exc
        return None
    except (OSError, ValueError) as exc:
        if strict:
            raise KelpsegError(f"unreadable store manifest ({exc})", path) from exc
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        if strict:
            raise KelpsegError("not a kelpseg store manifest", path)
        return None
    if manifest.get("version") != VERSION:
        if strict:
            raise KelpsegError(f"store format version {manifest.get('version')}; {_RERUN}", path)
        return None
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Rewrite the manifest atomically (deterministic bytes: sorted keys, no timestamps)."""
    with atomic_path(Path(root) / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n")


@dataclass
class StoreSplit:
    """One split of a prepared store; arrays are memory-mapped lazily, read-only.

    Safe to pickle into DataLoader workers: the maps are reopened in each process.
    """

    name: str
    root: Path
    tile_ids: list[str] = field(repr=False)
    height: int
    width: int
    images_path: Path
    masks_path: Path | None
    chunk_size: int = field(repr=False)
    chunk_digests: list[str] = field(repr=False)
    _maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    _rows: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.tile_ids)

    @property
    def labelled(self) -> bool:
        """True when the split holds masks."""
        return self.masks_path is not None

    @property
    def images(self) -> np.ndarray:
        """(N, 7, H, W) int16 memory map."""
        if "images" not in self._maps:
            shape = (len(self), 7, self.height, self.width)
            self._maps["images"] = _memmap(self.images_path, shape, np.dtype(np.int16))
        return self._maps["images"]

    @property
    def masks(self) -> np.ndarray | None:
        """(N, H, W) uint8 memory map, or ``None`` for an unlabelled split."""
        if self.masks_path is None:
            return None
        if "masks" not in self._maps:
            shape = (len(self), self.height, self.width)
            self._maps["masks"] = _memmap(self.masks_path, shape, np.dtype(np.uint8))
        return self._maps["masks"]

    def rows(self, tile_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of ``tile_ids``.

        Raises:
            KelpsegError: some tiles are not in this store (it was built for other tiles).
        """
        if not self._rows:
            self._rows.update({t: i for i, t in enumerate(self.tile_ids)})
        missing = [t for t in tile_ids if t not in self._rows]
        if missing:
            raise KelpsegError(
                f"store was built for other tiles: {len(missing)} of {len(tile_ids)} requested "
                f"tiles are not in split {self.name!r} (e.g. {missing[0]}); {_RERUN}",
                self.root / str(split_files(self.name, labelled=False)["index"]),
            )
        return np.array([self._rows[t] for t in tile_ids], dtype=np.int64)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"] = {}  # a pickled memmap would copy the whole array
        return state


@dataclass
class PreparedStore:
    """A validated store folder and its splits."""

    root: Path
    splits: dict[str, StoreSplit]

    def split(self, name: str) -> StoreSplit:
        """One split by name (``train``, ``test`` ...)."""
        if name not in self.splits:
            have = ", ".join(sorted(self.splits)) or "none"
            raise KelpsegError(f"store has no split {name!r} (has: {have}); {_RERUN}", self.root)
        return self.splits[name]


def open_store(root: str | os.PathLike[str], splits: Sequence[str] | None = None) -> PreparedStore:
    """Open a prepared store, validating manifest, index checksums, headers and file sizes.

    Args:
        root: the store folder written by :func:`~kelpseg.nn.data.store.prepare_store`.
        splits: splits to open (default: all in the manifest).

    Raises:
        KelpsegError: naming the file at fault (missing, truncated, wrong shape, other tiles,
            unfinished).
    """
    root = Path(root)
    manifest = read_manifest(root)
    assert manifest is not None  # strict read raises instead
    names = list(splits) if splits is not None else sorted(manifest["splits"])
    opened = {}
    for name in names:
        entry = manifest["splits"].get(name)
        if entry is None:
            raise KelpsegError(f"store has no split {name!r}; {_RERUN}", root / MANIFEST_NAME)
        opened[name] = _open_split(root, name, entry)
    return PreparedStore(root, opened)


def _open_split(root: Path, name: str, entry: dict[str, Any]) -> StoreSplit:
    if not entry.get("complete"):
        done = f"{entry.get('completed', 0)} of {entry.get('tiles', '?')}"
        raise KelpsegError(f"split {name!r} is unfinished ({done} tiles); {_RERUN}", root)
    n, h, w = int(entry["tiles"]), int(entry["height"]), int(entry["width"])
    index = root / entry["index"]
    try:
        tile_ids = pd.read_parquet(index)["tile_id"].astype(str).tolist()
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise KelpsegError(f"unreadable store index ({str(exc)[:120]}); {_RERUN}", index) from exc
    if len(tile_ids) != n or tile_ids_digest(tile_ids) != entry["tile_ids_sha256"]:
        raise KelpsegError(f"store index does not match its manifest checksum; {_RERUN}", index)
    images = root / entry["images"]
    _check_npy(images, (n, int(entry["bands"]), h, w), np.dtype(np.int16))
    masks = root / entry["masks"] if entry.get("masks") else None
    if masks is not None:
        _check_npy(masks, (n, h, w), np.dtype(np.uint8))
    return StoreSplit(
        name, root, tile_ids, h, w, images, masks, int(entry["chunk_size"]), entry["chunk_digests"]
    )


def _read_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    with path.open("rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        return tuple(shape), bool(fortran), np.dtype(dtype), fh.tell()


def _check_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Header offset of a valid array file of exactly ``shape`` and ``dtype``."""
    if not path.is_file():
        raise KelpsegError(f"store file is missing; {_RERUN}", path)
    try:
        found, fortran, found_dtype, offset = _read_header(path)
    except (OSError, ValueError) as exc:
        raise KelpsegError(f"not a valid .npy array file ({exc}); {_RERUN}", path) from exc
    if found != shape or found_dtype != dtype or fortran:
        raise KelpsegError(
            f"holds {found} {found_dtype}, the manifest says {shape} {dtype}; {_RERUN}", path
        )
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        what = "truncated" if size < expected else "too long"
        raise KelpsegError(f"{what} store file: {size} bytes, expected {expected}; {_RERUN}", path)
    return offset


def _memmap(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    offset = _check_npy(path, shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset)


def verify_store(root: str | os.PathLike[str]) -> PreparedStore:
    """Open a store and re-hash every tile against the per-chunk digests of its manifest.

    Raises:
        KelpsegError: naming the array file and the first chunk whose bytes changed.
    """
    store = open_store(root)
    for split in store.splits.values():
        images, masks = split.images, split.masks
        step = split.chunk_size
        for number, start in enumerate(range(0, len(split), step)):
            stop = min(start + step, len(split))
            digest = tiles_digest(images[start:stop], None if masks is None else masks[start:stop])
            if number >= len(split.chunk_digests) or digest != split.chunk_digests[number]:
                raise KelpsegError(
                    f"store data changed since it was written (rows {start}-{stop - 1}); {_RERUN}",
                    split.images_path,
                )
    return store
