"""``kelpseg labels audit | misaligned | realign``: label audit and DEM misalignment tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from kelpseg.cli.options import (
    Overrides,
    Overwrite,
    Quiet,
    config_option,
    out_option,
    overwrite_option,
)
from kelpseg.cli.output import refuse_existing, show_table
from kelpseg.config import load_config
from kelpseg.console import console
from kelpseg.quality.audit import audit_labels, mislabelled_ids, precision_at_k
from kelpseg.quality.config import AuditConfig
from kelpseg.quality.realign import misaligned_tiles, realign_dataset
from kelpseg.quality.report import RANKING_FILE, write_audit, write_tile_list

app = typer.Typer(
    no_args_is_help=True, help="Data quality: audit labels, re-align misaligned DEMs."
)

Stats = Annotated[
    Path, typer.Argument(help="EDA statistics: tile_stats.parquet or its folder (eda stats).")
]


def audit(
    predictions: Annotated[
        list[Path],
        typer.Option(
            help="Out-of-fold predictions: folder of *_prob.tif (or *_kelp.tif); repeat for a "
            "committee (e.g. a network's and a tree model's), combined by the config's combine."
        ),
    ],
    data: Annotated[
        Path, typer.Option(help="Labels: split catalog parquet (for --fold), or dataset folder.")
    ],
    out: Annotated[Path, out_option("Output folder.")],
    top: Annotated[int | None, typer.Option(help="Worst tiles in the gallery (20).")] = None,
    fold: Annotated[int | None, typer.Option(help="Only the tiles of this fold.")] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Generator truth (synth_truth.parquet): print precision@k."),
    ] = None,
    config: Annotated[Path | None, config_option("Audit config YAML.")] = None,
    overrides: Overrides = None,
    overwrite: Annotated[bool, overwrite_option("Replace an earlier audit in OUT.")] = False,
    quiet: Quiet = False,
) -> None:
    """Rank training tiles by out-of-fold disagreement; gallery and exclusion list.

    Exit code 1 when labelled tiles had no prediction (they were left out of the audit).
    """
    extra = [f"top={top}"] * (top is not None) + [f"fold={fold}"] * (fold is not None)
    cfg = load_config(AuditConfig, config, [*(overrides or []), *extra])
    refuse_existing(Path(out) / RANKING_FILE, overwrite)
    result = audit_labels(predictions, data, cfg, show_progress=not quiet)
    paths = write_audit(result, predictions, out, show_progress=not quiet)
    rule = f", {cfg.combine} of {len(predictions)} members" if len(predictions) > 1 else ""
    table = Table(title=f"worst labels ({cfg.score}{rule})")
    for col in ("rank", "tile_id", "score", "Dice", "label px", "pred px", "flagged"):
        table.add_column(col, justify="left" if col == "tile_id" else "right")
    for row in result.ranking.head(min(cfg.top, 10)).itertuples(index=False):
        table.add_row(
            str(row.rank), str(row.tile_id), f"{row.score:.3f}", f"{row.dice:.3f}",
            str(row.label_pixels), str(row.pred_pixels), "yes" if row.flagged else "",
        )  # fmt: skip
    show_table(table)
    if result.unpredicted:
        console.print(f"[yellow]{len(result.unpredicted)} labelled tiles had no prediction[/]")
    if truth is not None:
        _print_precision(result.ranking, mislabelled_ids(truth), len(result.flagged) or cfg.top)
    console.print(
        f"{len(result.flagged)} labels flagged of {len(result.ranking)} audited; "
        f"exclusion list {paths.exclude}, gallery {paths.gallery}"
    )
    if result.unpredicted:
        raise typer.Exit(1)


def _print_precision(ranking: pd.DataFrame, positives: list[str], k: int) -> None:
    audited = int(ranking["tile_id"].isin(positives).sum())
    if audited == 0:
        console.print("against the generator: no mislabelled tile among those audited")
        return
    p_at_k = precision_at_k(ranking, positives, k)
    console.print(
        f"against the generator: precision@{k} {p_at_k:.2f} "
        f"(recall {p_at_k * min(k, len(ranking)) / audited:.2f}; {audited} mislabelled audited)"
    )


def realign(
    stats: Stats,
    out: Annotated[Path, out_option("Folder of the re-aligned dataset copy.")],
    min_px: Annotated[float, typer.Option(help="Re-align tiles shifted by more (pixels).")] = 1.0,
    test: Annotated[bool, typer.Option("--test", help="Re-align test tiles too.")] = False,
    overwrite: Annotated[bool, overwrite_option("Write into a folder that is not empty.")] = False,
    quiet: Quiet = False,
) -> None:
    """Copy a dataset with the DEM of misaligned training tiles shifted back."""
    refuse_existing(Path(out), overwrite)
    splits = ("train", "test") if test else ("train",)
    result = realign_dataset(stats, out, min_px=min_px, splits=splits, show_progress=not quiet)
    console.print(
        f"{len(result.realigned)} tiles re-aligned, {result.linked} linked unchanged; "
        f"dataset written to {result.out_dir}"
    )


def misaligned(
    stats: Stats,
    out: Annotated[Path | None, out_option("Write the tile ids here (one a line).")] = None,
    min_px: Annotated[float, typer.Option(help="List tiles shifted by more (pixels).")] = 1.0,
    split: Annotated[str | None, typer.Option(help="Only this split (train, test).")] = None,
    overwrite: Overwrite = False,
) -> None:
    """List tiles whose DEM is shifted against the image by more than --min-px pixels."""
    frame = misaligned_tiles(stats, min_px, split)
    if out is not None:
        refuse_existing(out, overwrite)
    table = Table(title=f"{len(frame)} tiles with a DEM shifted by more than {min_px:g} px")
    for col in ("tile_id", "split", "row", "col", "pixels", "score"):
        table.add_column(col, justify="left" if col in ("tile_id", "split") else "right")
    for row in frame.head(20).itertuples(index=False):
        table.add_row(
            str(row.tile_id), str(getattr(row, "split", "")), f"{row.dem_shift_row:+.1f}",
            f"{row.dem_shift_col:+.1f}", f"{row.dem_shift_px:.1f}",
            f"{getattr(row, 'dem_shift_score', float('nan')):.2f}",
        )  # fmt: skip
    show_table(table)
    if out is not None:
        header = f"kelpseg labels misaligned: DEM shifted by more than {min_px:g} px"
        write_tile_list(frame["tile_id"].astype(str), out, header)
        console.print(f"{len(frame)} misaligned tiles listed in {out}")


def oof(
    run: Annotated[Path, typer.Argument(help="kelpseg train-cv output folder (fold-K inside).")],
    data: Annotated[Path, typer.Option(help="The split catalog the run trained on.")],
    out: Annotated[Path, out_option("Folder of out-of-fold *_prob.tif (resumed).")],
    folds: Annotated[
        str | None, typer.Option(help="Folds to predict, e.g. 0,1 (default: every fold-K).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Tiles per batch.")] = 8,
    tta: Annotated[bool, typer.Option("--tta", help="Test-time augmentation.")] = False,
    quiet: Quiet = False,
) -> None:
    """Predict each fold's tiles with the model that held that fold out (for labels audit)."""
    from kelpseg.cli.train import parse_folds
    from kelpseg.quality.oof import predict_out_of_fold

    done = predict_out_of_fold(
        run, data, out, folds=parse_folds(folds), device=device, batch_size=batch_size, tta=tta,
        show_progress=not quiet,
    )  # fmt: skip
    tiles, new = sum(d.tiles for d in done), sum(d.predicted for d in done)
    console.print(
        f"{tiles} tiles of {len(done)} folds out-of-fold in {out} ({new} predicted now); "
        f"next: kelpseg labels audit --predictions {out} --data {data} --out AUDIT"
    )


app.command("audit", help="Rank labels by out-of-fold disagreement; gallery, exclusion list.")(
    audit
)
app.command("oof", help="Out-of-fold predictions of a train-cv run, for the audit.")(oof)
app.command("realign", help="Copy a dataset with misaligned DEMs shifted back.")(realign)
app.command("misaligned", help="List tiles whose DEM is shifted against the image.")(misaligned)
