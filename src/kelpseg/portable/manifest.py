"""The manifest of a model package: what the graph expects, where it came from, its checksums.

A model package is a folder: ``model.onnx`` (the whole pipeline from raw int16 tiles to kelp
probabilities), one ``member_<i>_config.yaml`` per ensemble member (its resolved training
config) and ``manifest.json``. The manifest lists the sha256 of every other file, so a package
is checked file by file before it is run. This module needs no torch: it is on the light path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from kelpseg.config import StrictModel
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.tiles import BAND_NAMES, MISSING, TILE_SIZE

PathLike = str | os.PathLike[str]
MANIFEST_NAME = "manifest.json"
GRAPH_NAME = "model.onnx"
#: The newest package format this kelpseg reads (2: int8 graphs with a ``quantization`` record;
#: a float package is still written as format 1, so older kelpseg versions read it).
FORMAT_VERSION = 2
QUANTIZED_FORMAT = 2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CHUNK = 1 << 20


def check_name(value: str, what: str = "name") -> str:
    """A model name or version: letters, digits, ``.``, ``_`` and ``-``; no ``@`` or ``/``."""
    if not _NAME.match(value):
        raise ValueError(
            f"model {what} {value!r} may hold only letters, digits, '.', '_' and '-' "
            "(and must start with a letter or digit)"
        )
    return value


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key ordering versions naturally: ``1.2 < 1.10 < 2.0``; ``1.0rc1 < 1.0``."""
    parts: list[tuple[int, int | str]] = []
    for token in re.findall(r"\d+|[A-Za-z]+", version):
        # A letter part (rc, dev, beta) sorts before the release that has none.
        parts.append((1, int(token)) if token.isdigit() else (0, token.lower()))
    return (*parts, (1, -1))


class MemberInfo(StrictModel):
    """One ensemble member as exported.

    Attributes:
        source: what the user named (checkpoint, run folder, run id or ``<module>``).
        run_id: its MLflow run, when known.
        arch, encoder: the smp architecture and encoder.
        channels: its input channels, in order.
        features: its full feature config (masking, fill, normalisation).
        sizing: how tiles were padded or resized for the network.
        weight: its normalised ensemble weight.
        threshold: the decision threshold saved with it.
        validation_dice: its best validation Dice, when known.
        config_file: its resolved training config inside the package.
        config_digest: sha256 of that YAML text.
    """

    source: str
    run_id: str | None = None
    arch: str
    encoder: str
    channels: list[str]
    features: dict[str, Any]
    sizing: dict[str, Any]
    weight: float
    threshold: float
    validation_dice: float | None = None
    config_file: str
    config_digest: str


class Verification(StrictModel):
    """ONNX Runtime vs torch on crafted tiles, measured right after export."""

    tiles: int
    sizes: list[list[int]]
    max_abs_diff: float
    mask_mismatch_share: float
    threshold: float
    provider: str


class TileSet(StrictModel):
    """A set of tiles as the manifest records it: where from, how many, which (a digest)."""

    source: str
    tiles: int
    tile_ids_sha256: str
    first_ids: list[str] = Field(default_factory=list)


class Quantization(StrictModel):
    """How an int8 graph was made, and what it costs in Dice (kelp Dice, all pixels together).

    Attributes:
        dtype: ``int8``.
        format: ``qdq`` or ``qoperator`` (ONNX Runtime's quantization formats).
        calibration: the tiles the activation ranges were calibrated on.
        holdout: the labelled tiles both graphs were scored on.
        dice_float, dice_int8: kelp Dice of the float and the int8 graph on ``holdout``.
        max_dice_loss: the tolerance the int8 graph was accepted under.
    """

    dtype: str = "int8"
    format: str
    calibration: TileSet
    holdout: TileSet
    dice_float: float
    dice_int8: float
    max_dice_loss: float


class Manifest(StrictModel):
    """Everything needed to run and trust a model package (``manifest.json``).

    Attributes:
        band_order: the raw bands the graph reads, in order (the tiles' own order).
        tile_size: the tile size the models were made for.
        min_tile_size: the smallest height/width the graph accepts.
        max_tile_size: the largest (models padding to a fixed size), or None.
        dynamic_hw: whether any height/width from ``min_tile_size`` up is accepted (else only
            ``tile_size``).
        channels: every channel some member computes, first seen first.
        needs_dem: whether the models read the DEM band.
        threshold: the decision threshold of the masks (chosen on validation when known).
        input_encoding: the integer encoding of the tiles the members trained on (``c2l2``,
            ``x10000``, ``s2l2a``: :mod:`kelpseg.io.encoding`); inputs in another one are
            refused. None: unknown (older models), nothing is checked.
        metrics: validation metrics of the package as a whole, when known.
        quantization: how the int8 graph was calibrated and scored (int8 packages only).
        files: relative path -> sha256 of every file of the package but the manifest.
    """

    format_version: int = 1
    name: str
    version: str
    created: str
    kelpseg_version: str
    graph: str = GRAPH_NAME
    input_name: str = "raw"
    output_name: str = "prob"
    opset: int
    band_order: list[str] = Field(default_factory=lambda: list(BAND_NAMES))
    input_dtype: str = "int16"
    missing_value: int = MISSING
    tile_size: int = TILE_SIZE
    min_tile_size: int = 1
    max_tile_size: int | None = None
    dynamic_hw: bool = True
    channels: list[str]
    needs_dem: bool
    ensemble_mode: str = "mean_prob"
    threshold: float = Field(ge=0.0, le=1.0)
    threshold_source: str
    input_encoding: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    members: list[MemberInfo] = Field(min_length=1)
    libraries: dict[str, str] = Field(default_factory=dict)
    verification: Verification | None = None
    quantization: Quantization | None = None
    files: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "name")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return check_name(value, "version")

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def package_files(folder: Path) -> list[str]:
    """Relative POSIX paths of every file of a package except the manifest (sorted)."""
    names = [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    ]
    return sorted(n for n in names if n != MANIFEST_NAME)


def write_manifest(manifest: Manifest, folder: PathLike) -> Path:
    """Checksum every file of ``folder`` into ``manifest.files`` and write ``manifest.json``."""
    folder = Path(folder)
    manifest.files = {name: sha256_file(folder / name) for name in package_files(folder)}
    target = folder / MANIFEST_NAME
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    return target


def read_manifest(folder: PathLike) -> Manifest:
    """Read and validate ``manifest.json`` of a package folder (no checksums: see verify).

    Raises:
        KelpsegError: no manifest, not JSON, or a field missing or wrong (named).
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise KelpsegError("not a model package (no manifest.json)", Path(folder))
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KelpsegError(f"manifest is not readable JSON ({exc})", path) from exc
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise KelpsegError(f"manifest key '{key}': {err['msg']}", path) from exc


def verify_package(folder: PathLike) -> Manifest:
    """Read the manifest and check the sha256 of every file it lists.

    Raises:
        KelpsegError: a listed file missing or whose checksum differs, or no graph listed.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.graph not in manifest.files:
        raise KelpsegError(f"manifest lists no checksum for its graph {manifest.graph}", folder)
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise KelpsegError("file listed in the manifest is missing", path)
        if sha256_file(path) != expected:
            raise KelpsegError(
                "checksum does not match the manifest (corrupt or modified file)", path
            )
    return manifest
