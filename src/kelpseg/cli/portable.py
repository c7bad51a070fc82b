"""``kelpseg export`` and ``kelpseg models list|show|add|remove``: portable model packages.

Only ``export`` needs the training stack; it is imported inside the command, so the registry
commands run on the light install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kelpseg.cli.options import (
    Json,
    Quiet,
    Weights,
    model_option,
    out_option,
    overwrite_option,
    parse_weights,
)
from kelpseg.cli.output import print_json, show_table
from kelpseg.console import console
from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.portable import registry
from kelpseg.portable.manifest import Manifest

models_app = typer.Typer(
    name="models",
    help="Installed model packages: list, show, add (folder, archive or URL), remove.",
    no_args_is_help=True,
)


def export(
    name: Annotated[str, typer.Option(help="Package name (letters, digits, . _ -).")],
    version: Annotated[str, typer.Option(help="Package version, e.g. 1.0.0.")],
    out: Annotated[Path, out_option("Package folder to write.")],
    model: Annotated[
        list[str] | None, model_option("Checkpoint, run folder or run id; repeat.")
    ] = None,
    ensemble: Annotated[
        Path | None,
        typer.Option(
            help="ensemble.yaml of 'kelpseg ensemble select' (models, weights, mode, "
            "threshold), instead of --model."
        ),
    ] = None,
    weights: Weights = None,
    threshold: Annotated[
        float | None, typer.Option(help="Decision threshold (default: saved with the models).")
    ] = None,
    ensemble_mode: Annotated[
        str | None, typer.Option(help="mean_prob (default) or mean_logit.")
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 18,
    fixed_size: Annotated[
        bool, typer.Option("--fixed-size", help="Accept only the tile size (no dynamic H/W).")
    ] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store of run ids.")] = None,
    overwrite: Annotated[
        bool, overwrite_option("Replace an existing package folder (and installed version).")
    ] = False,
    install: Annotated[
        bool, typer.Option("--install", help="Also add the package to the registry.")
    ] = False,
    archive: Annotated[
        Path | None, typer.Option(help="Also write the package as this .tar.gz.")
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option(
            help="int8: an int8 graph (static quantization; needs --calibration, --holdout)."
        ),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Tiles the model did not train on (folder or catalog) to calibrate on."),
    ] = None,
    holdout: Annotated[
        Path | None,
        typer.Option(help="Labelled tiles the model did not train on, to score float vs int8."),
    ] = None,
    max_dice_loss: Annotated[
        float, typer.Option(help="Refuse an int8 graph losing more kelp Dice than this.")
    ] = 0.005,
) -> None:
    """Export a model or ensemble to an ONNX model package with a checksummed manifest."""
    if bool(model) == (ensemble is not None):
        raise KelpsegError("give --model (repeatable) or --ensemble SPEC.yaml, not both")
    if ensemble is not None and (weights or ensemble_mode):
        raise KelpsegError("the ensemble spec holds the weights and the mode", "--ensemble")
    try:
        from kelpseg.export.package import export_model
        from kelpseg.export.spec import export_ensemble
    except ImportError as exc:
        raise MissingExtraError("train", exc.name or "torch") from exc
    common: dict[str, Any] = {
        "opset": opset,
        "dynamic_hw": not fixed_size,
        "threshold": threshold,
        "tracking_uri": tracking_uri,
        "overwrite": overwrite,
        "quantize": quantize,
        "calibration": calibration,
        "holdout": holdout,
        "max_dice_loss": max_dice_loss,
    }
    if ensemble is not None:
        folder = export_ensemble(ensemble, name, version, out, **common)
    else:
        mode = ensemble_mode or "mean_prob"
        folder = export_model(
            model or [], parse_weights(weights), name, version, out, ensemble_mode=mode, **common
        )
    if archive is not None:
        console.print(f"archive written to {registry.pack_package(folder, archive)}")
    if install:
        entry = registry.add(folder, overwrite=overwrite, show_progress=False)
        console.print(f"installed {entry.ref} in {entry.path}")


@models_app.command("list")
def list_cmd(json_: Json = False) -> None:
    """List the installed model packages."""
    entries = registry.list_models()
    root = registry.models_dir()
    if json_:
        print_json({"root": root, "models": [_entry_json(e) for e in entries]})
        return
    if not entries:
        console.print(f"no models installed in {root}")
        return
    table = Table(title=f"models in {root}")
    for col in ("model", "members", "channels", "threshold", "size", "created"):
        table.add_column(col, overflow="fold")
    for e in entries:
        m = e.manifest
        size = f"{e.size_bytes / 1e6:.1f} MB"
        row = (e.ref, str(len(m.members)), str(len(m.channels)), f"{m.threshold:g}", size)
        table.add_row(*row, m.created)
    show_table(table)


def _entry_json(entry: registry.ModelEntry) -> dict[str, Any]:
    m = entry.manifest
    return {
        "ref": entry.ref,
        "path": entry.path,
        "members": len(m.members),
        "channels": list(m.channels),
        "threshold": m.threshold,
        "size_bytes": entry.size_bytes,
        "created": m.created,
    }


def _print_manifest(manifest: Manifest, folder: Path) -> None:
    console.print(f"[bold]{manifest.ref}[/] in {folder} (checksums verified)", highlight=False)
    console.print(f"bands in: {', '.join(manifest.band_order)} ({manifest.input_dtype})")
    console.print(f"channels: {', '.join(manifest.channels)}")
    hw = f"{manifest.min_tile_size}..{manifest.max_tile_size or 'any'} px"
    console.print(
        f"tile size {manifest.tile_size} (accepts {hw if manifest.dynamic_hw else 'only that'})"
    )
    console.print(f"threshold {manifest.threshold:g} ({manifest.threshold_source})")
    for key, value in manifest.metrics.items():
        console.print(f"{key}: {value:.4f}")
    table = Table(title="members")
    for col in ("source", "arch", "encoder", "weight", "val dice", "config sha256"):
        table.add_column(col, overflow="fold")
    for m in manifest.members:
        dice = "-" if m.validation_dice is None else f"{m.validation_dice:.4f}"
        table.add_row(m.source, m.arch, m.encoder, f"{m.weight:.3f}", dice, m.config_digest[:12])
    show_table(table)
    if manifest.verification is not None:
        v = manifest.verification
        console.print(
            f"export check: max |onnx - torch| {v.max_abs_diff:.2g}, masks differ on "
            f"{v.mask_mismatch_share:.2e} of pixels ({v.tiles} tiles)"
        )
    if manifest.quantization is not None:
        q = manifest.quantization
        console.print(
            f"{q.dtype} graph ({q.format}): calibrated on {q.calibration.tiles} tiles of "
            f"{q.calibration.source}; kelp Dice {q.dice_int8:.4f} (float {q.dice_float:.4f}) on "
            f"{q.holdout.tiles} held-out tiles of {q.holdout.source}",
            highlight=False,
        )


@models_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or a package folder.")],
) -> None:
    """Verify a package's checksums and print its manifest."""
    folder = registry.resolve(name)
    _print_manifest(registry.show(folder), folder)


@models_app.command("add")
def add_cmd(
    source: Annotated[str, typer.Argument(help="Package folder, .tar/.tar.gz/.zip, or URL.")],
    overwrite: Annotated[bool, overwrite_option("Replace the same NAME@VERSION.")] = False,
    quiet: Quiet = False,
) -> None:
    """Install a package (checksums verified; a corrupt download is refused and removed)."""
    entry = registry.add(source, overwrite=overwrite, show_progress=not quiet)
    console.print(f"installed {entry.ref} in {entry.path}")


@models_app.command("remove")
def remove_cmd(
    name: Annotated[str, typer.Argument(help="NAME@VERSION, or NAME for every version.")],
) -> None:
    """Uninstall a package version, or every version of a name."""
    for ref in registry.remove(name):
        console.print(f"removed {ref}")
