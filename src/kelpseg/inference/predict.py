"""``kelpseg predict``: models (or an ensemble) over a set of tiles, masks written to a folder.

Reading runs in DataLoader worker processes, the networks on the device, and writing in a
thread pool, all at once: while batch k is written and batch k+2 read, batch k+1 is computed.
Each output is written atomically and a tile whose outputs exist is skipped, so an interrupted
run is simply started again.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Self

import numpy as np
from pydantic import Field, model_validator
from rasterio.errors import NotGeoreferencedWarning

from kelpseg.config import StrictModel, save_config
from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.inference.loading import TileSource, load_predictor, resolve_tiles, tile_loader
from kelpseg.inference.postprocess import PostprocessConfig, apply_postprocess
from kelpseg.inference.rasters import MASK_SUFFIX, PROB_SUFFIX, binarize
from kelpseg.inference.runner import PendingBatch, Precision, Predictor
from kelpseg.inference.tta import TtaConfig
from kelpseg.io.tiles import write_mask, write_probability

__all__ = [
    "PredictConfig",
    "PredictSummary",
    "Predictor",
    "load_predictor",
    "predict_tiles",
    "resolve_tiles",
    "run_predict",
]

PathLike = str | os.PathLike[str]
CONFIG_NAME = "predict_config.yaml"


class PredictConfig(StrictModel):
    """Settings of one prediction run (saved as ``predict_config.yaml`` beside the masks)."""

    models: list[str] = Field(min_length=1, description="checkpoints, run folders or run ids")
    weights: list[float] | None = Field(default=None, description="one per model; None: equal")
    weights_from_scores: bool = Field(default=False, description="weights from val Dice")
    ensemble_mode: str = "mean_prob"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="None: model's")
    device: str = "auto"
    precision: Precision = "32"
    compile_backend: str | None = Field(default=None, description="torch.compile backend")
    tta: TtaConfig = Field(default_factory=TtaConfig)
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
    batch_size: int = Field(default=16, ge=1)
    num_workers: int = Field(default=2, ge=0, description="reader processes")
    write_threads: int = Field(default=2, ge=1)
    soft: bool = Field(default=False, description="also write _prob.tif probabilities")
    overwrite: bool = False
    split: str | None = Field(default=None, description="catalog split to predict; None: all")
    tracking_uri: str | None = None

    @model_validator(mode="after")
    def _weights_fit(self) -> Self:
        if self.weights is not None and len(self.weights) != len(self.models):
            raise ValueError(f"{len(self.weights)} weights for {len(self.models)} models")
        if self.weights is not None and self.weights_from_scores:
            raise ValueError("give weights or weights_from_scores, not both")
        return self


@dataclass
class PredictSummary:
    """What a prediction run did.

    Attributes:
        out_dir: the prediction folder.
        tiles: tiles asked for.
        written: tiles predicted and written in this run.
        skipped: tiles whose outputs already existed.
        seconds: wall time, reading to last write.
        threshold: the decision threshold of the masks.
    """

    out_dir: Path
    tiles: int
    written: int = 0
    skipped: int = 0
    seconds: float = 0.0
    threshold: float = 0.5

    @property
    def tiles_per_second(self) -> float:
        """Written tiles per second of wall time."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


def output_paths(out_dir: Path, tile_id: str) -> tuple[Path, Path]:
    """The (mask, probability) files of a tile in a prediction folder."""
    return out_dir / f"{tile_id}{MASK_SUFFIX}", out_dir / f"{tile_id}{PROB_SUFFIX}"


def _done(out_dir: Path, tile_id: str, soft: bool) -> bool:
    # The mask is written last, so its presence means the tile is complete.
    mask, prob = output_paths(out_dir, tile_id)
    return mask.is_file() and (prob.is_file() or not soft)


def _write_tile(
    out_dir: Path,
    tile_id: str,
    prob: np.ndarray,
    raw: np.ndarray | None,
    threshold: float,
    soft: bool,
    postprocess: PostprocessConfig | None,
) -> None:
    mask_path, prob_path = output_paths(out_dir, tile_id)
    if soft:  # probabilities stay raw: evaluate sweeps thresholds and steps over them
        write_probability(prob_path, prob)
    mask = binarize(prob, threshold)
    if postprocess is not None:
        mask = apply_postprocess(mask, raw, postprocess)
    write_mask(mask_path, mask.astype(np.uint8))  # last: its presence marks the tile done


class _Writers:
    """Writes tiles in a thread pool; at most ``limit`` wait, so memory stays bounded."""

    def __init__(
        self, out_dir: Path, predictor: Predictor, soft: bool, post: PostprocessConfig | None
    ) -> None:
        self.args = (predictor.threshold, soft, post)
        self.out_dir, self.needs_tile = out_dir, post is not None and post.needs_tile
        self.pending: deque[Future[None]] = deque()
        self.written = 0

    def submit(self, pool: ThreadPoolExecutor, probs: np.ndarray, batch: dict[str, Any]) -> None:
        raw = batch["image"].numpy() if self.needs_tile else None
        for i, tile_id in enumerate(batch["tile_id"]):
            tile = None if raw is None else raw[i]
            job = (self.out_dir, tile_id, probs[i], tile, *self.args)
            self.pending.append(pool.submit(_write_tile, *job))

    def wait(self, limit: int = 0) -> None:
        """Wait until at most ``limit`` writes are pending (re-raising a failed write)."""
        while len(self.pending) > limit:
            self.pending.popleft().result()
            self.written += 1


def predict_tiles(
    predictor: Predictor,
    tiles: TileSource,
    out_dir: PathLike,
    *,
    soft: bool = False,
    overwrite: bool = False,
    batch_size: int = 16,
    num_workers: int = 2,
    postprocess: PostprocessConfig | None = None,
    split: str | None = None,
    write_threads: int = 2,
    show_progress: bool = True,
) -> PredictSummary:
    """Predict tiles and write ``<tile_id>_kelp.tif`` masks (and ``_prob.tif`` with ``soft``).

    Args:
        predictor: the model or ensemble (:func:`load_predictor`).
        tiles: a dataset folder, catalog parquet, tile table or list of satellite files.
        out_dir: the prediction folder (created).
        soft: also write the float32 probabilities (not post-processed).
        overwrite: predict tiles whose outputs exist too (else they are skipped).
        batch_size: tiles per device batch.
        num_workers: reader processes (0: read in this process).
        postprocess: steps applied to each mask after thresholding.
        split: keep only this catalog split (``test``, ``train``); None: every tile.
        write_threads: threads writing outputs.
        show_progress: show a progress bar.

    Raises:
        KelpsegError: no tiles, an unreadable tile, tiles of different sizes in one batch, or
            an output folder that cannot be written.
    """
    start = time.perf_counter()
    table = resolve_tiles(tiles, split)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KelpsegError(f"cannot create the output folder ({exc.strerror})", out) from exc
    total = len(table)
    if not overwrite:
        table = table[[not _done(out, t, soft) for t in table["tile_id"]]]
    post = postprocess if postprocess is not None and postprocess.steps else None
    writers = _Writers(out, predictor, soft, post)
    if len(table):
        loader = tile_loader(table, batch_size, num_workers, pin=predictor.device.type == "cuda")
        with (
            warnings.catch_warnings(),
            ThreadPoolExecutor(max(1, write_threads), thread_name_prefix="kelpseg-write") as pool,
            progress(disable=not show_progress) as bar,
        ):
            # The writers' own catch_warnings race each other (it swaps a process-wide list);
            # set here for the whole run, the filter holds whatever order they restore in.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            # On an error or interrupt, leaving this block still writes the few predictions
            # already handed to the pool (each file atomically); a re-run does the rest.
            task = bar.add_task("predicting", total=len(table))
            previous: tuple[PendingBatch, dict[str, Any]] | None = None
            for batch in chain(loader, [None]):
                if batch is not None and "error" in batch:
                    raise KelpsegError(*batch["error"])
                launched = None if batch is None else (predictor.launch(batch["image"]), batch)
                if previous is not None:  # collected while the device computes ``launched``
                    writers.submit(pool, previous[0].result(), previous[1])
                    writers.wait(limit=4 * batch_size)
                    bar.update(task, completed=writers.written)
                previous = launched
            writers.wait()
            bar.update(task, completed=writers.written)
    return PredictSummary(
        out,
        total,
        written=writers.written,
        skipped=total - len(table),
        seconds=time.perf_counter() - start,
        threshold=predictor.threshold,
    )


def run_predict(
    config: PredictConfig, tiles: TileSource, out_dir: PathLike, *, show_progress: bool = True
) -> tuple[Predictor, PredictSummary]:
    """Load the models of ``config``, predict ``tiles`` into ``out_dir``, save the config.

    The resolved config (weights normalised, the threshold actually used) is saved as
    ``predict_config.yaml`` in ``out_dir`` before predicting.
    """
    table = resolve_tiles(tiles, config.split)  # before loading models: fail fast
    predictor = load_predictor(
        config.models,
        config.weights,
        device=config.device,
        precision=config.precision,
        tta=config.tta,
        ensemble_mode=config.ensemble_mode,
        threshold=config.threshold,
        tracking_uri=config.tracking_uri,
        weights_from_scores=config.weights_from_scores,
        compile_backend=config.compile_backend,
    )
    resolved = config.model_copy(
        update={
            "weights": [float(w) for w in predictor.weights],
            "weights_from_scores": False,
            "threshold": predictor.threshold,
        }
    )
    save_config(resolved, Path(out_dir) / CONFIG_NAME)
    summary = predict_tiles(
        predictor,
        table,
        out_dir,
        soft=config.soft,
        overwrite=config.overwrite,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        postprocess=config.postprocess,
        write_threads=config.write_threads,
        show_progress=show_progress,
    )
    return predictor, summary
