"""``kelpseg predict``: models (or an ensemble) over a set of tiles, masks written to a folder.

A model package runs on ONNX Runtime and this module imports no torch, so it serves the light
install; checkpoints and runs load the torch predictor on demand. Reading runs in DataLoader
worker processes (reader threads for a package), the networks on the device, and writing in a
thread pool, all at once: while batch k is written and batch k+2 read, batch k+1 is computed.
Each output is written atomically and a tile whose outputs exist is skipped, so an interrupted
run is simply started again.
"""

from __future__ import annotations

import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from rasterio.errors import NotGeoreferencedWarning

from kelpseg.config import save_config
from kelpseg.console import progress
from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.inference.config import Precision, PredictConfig, TtaConfig
from kelpseg.inference.ensemble import weights_from_scores
from kelpseg.inference.postprocess import PostprocessConfig
from kelpseg.inference.reader import TileSource, read_batches, resolve_tiles
from kelpseg.inference.writers import Writers, is_done
from kelpseg.io.atomic import remove_stale_temporaries
from kelpseg.io.encoding import encoding_guard
from kelpseg.io.tiles import BAND_NAMES

if TYPE_CHECKING:
    from kelpseg.inference.runner import Predictor
    from kelpseg.portable.runtime import OnnxPredictor

    #: The torch predictor of checkpoints and runs, or ONNX Runtime on a model package.
    AnyPredictor: TypeAlias = Predictor | OnnxPredictor

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


def __getattr__(name: str) -> Any:
    # ``Predictor`` (the torch one) is importable from here as before, on first use only.
    if name == "Predictor":
        from kelpseg.inference.runner import Predictor

        return Predictor
    raise AttributeError(f"module 'kelpseg.inference.predict' has no attribute {name!r}")


def load_predictor(
    models: Sequence[PathLike],
    weights: Sequence[float] | None = None,
    *,
    device: str = "auto",
    precision: Precision = "32",
    tta: TtaConfig | None = None,
    threshold: float | None = None,
    threads: int | None = None,
    **torch_options: Any,
) -> AnyPredictor:
    """Load a model package (ONNX, no torch) or trained models (torch) for inference.

    Args:
        models: one model package (folder, ``model.onnx`` or registry ``NAME[@VERSION]``), or
            checkpoints, training run folders and MLflow run ids (an ensemble when several).
        weights: one weight per model; None: equal (a package holds its own weights).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        precision: ``"32"``, ``"16"`` or ``"bf16"`` (torch models).
        tta: test-time augmentation (torch models); None: off.
        threshold: decision threshold; None: the one saved with the model(s).
        threads: ONNX Runtime intra-op threads of a package; None: one per core.
        **torch_options: the rest of
            :func:`~kelpseg.inference.loading.load_torch_predictor` (``ensemble_mode``,
            ``tracking_uri``, ``weights_from_scores``, ``compile_backend``, ``stacked`` ...).

    Raises:
        KelpsegError: no models, TTA or several models with a package, or a model that cannot
            be loaded; :class:`~kelpseg.errors.MissingExtraError` for trained models on an
            install without the ``train`` extra.
    """
    from kelpseg.portable.registry import is_portable_ref

    if not models:
        raise KelpsegError("give at least one model to predict with")
    packages = [m for m in models if is_portable_ref(m)]
    if packages:
        if len(models) > 1:
            raise KelpsegError(
                "a model package is already an ensemble: give it alone (export several "
                "models as one package with kelpseg export)",
                str(packages[0]),
            )
        if tta is not None and tta.enabled:
            raise KelpsegError("TTA is not part of an exported ONNX graph; use --no-tta", "--tta")
        if torch_options.get("weights_from_scores"):
            raise KelpsegError("a package holds its members' weights already", str(packages[0]))
        if torch_options.get("stacked"):
            raise KelpsegError("a model package reads no stored channels", "--stacked")
        if torch_options.get("probability", "softmax") != "softmax":
            raise KelpsegError(
                "a model package's graph computes the softmax probability; "
                "probability=sigmoid_kelp needs the trained models",
                str(packages[0]),
            )
        from kelpseg.portable.runtime import load_onnx_predictor  # ONNX Runtime, no torch

        return load_onnx_predictor(packages[0], device=device, threshold=threshold, threads=threads)
    if not torch_options.get("tracking_uri"):  # with a tracking store, a bare name may be a run id
        for source in models:
            _check_model_exists(source)
    try:
        from kelpseg.inference.loading import load_torch_predictor
    except ImportError as exc:  # the light install: packages only
        raise MissingExtraError("train", exc.name or "torch") from exc
    options = {"precision": precision, "tta": tta, "threshold": threshold, **torch_options}
    return load_torch_predictor(models, weights, device=device, **options)


#: What MLflow run ids look like (uuid4 hex); any other bare name is taken as a model name.
_MLFLOW_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _check_model_exists(source: PathLike) -> None:
    """Fail early, and name the fix, for a model that is nowhere: no file, folder or run id.

    Raises:
        KelpsegError: a path that does not exist, or a bare name that is no installed package.
    """
    text = str(source)
    if Path(text).exists() or _MLFLOW_RUN_ID.fullmatch(text):
        return
    if Path(text).suffix or "/" in text or os.sep in text:
        raise KelpsegError("no such checkpoint, run folder or model package", text)
    raise KelpsegError(f"no model named {text}; see `kelpseg models list`")


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


def _uses_torch(predictor: AnyPredictor) -> bool:
    # A torch Predictor exists only once its module is imported: no import needed to tell.
    runner = sys.modules.get("kelpseg.inference.runner")
    return runner is not None and isinstance(predictor, runner.Predictor)


def _batches(
    predictor: AnyPredictor, table: Any, batch_size: int, workers: int
) -> Iterable[dict[str, Any]]:
    """A torch ``DataLoader`` (reader processes) for torch models, reader threads otherwise."""
    if not _uses_torch(predictor):
        return read_batches(table, batch_size, workers)
    from kelpseg.inference import runner
    from kelpseg.inference.loading import tile_loader

    assert isinstance(predictor, runner.Predictor)  # what _uses_torch said
    pin = predictor.device.type == "cuda"
    return tile_loader(table, batch_size, workers, pin=pin, stacked=predictor.stacked)


def predict_tiles(
    predictor: AnyPredictor,
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
    ignore_encoding: bool = False,
) -> PredictSummary:
    """Predict tiles and write ``<tile_id>_kelp.tif`` masks (and ``_prob.tif`` with ``soft``).

    Args:
        predictor: the model or ensemble (:func:`load_predictor`): torch or a package.
        tiles: a dataset folder, catalog parquet, tile table or list of satellite files.
        out_dir: the prediction folder (created).
        soft: also write the float32 probabilities (not post-processed).
        overwrite: predict tiles whose outputs exist too (else they are skipped).
        batch_size: tiles per device batch.
        num_workers: reader processes, threads for a package (0: read in this thread).
        postprocess: steps applied to each mask after thresholding.
        split: keep only this catalog split (``test``, ``train``); None: every tile.
        write_threads: threads writing outputs.
        show_progress: show a progress bar.
        ignore_encoding: go on (with one warning) when tiles read as another integer encoding
            than the model trained on (:class:`~kelpseg.io.encoding.EncodingGuard`); else stop.

    Raises:
        KelpsegError: no tiles, an unreadable tile, tiles of different sizes in one batch,
            a tile in another encoding than the model's (without ``ignore_encoding``), or an output
            folder that cannot be written.
    """
    start = time.perf_counter()
    table = resolve_tiles(tiles, split)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KelpsegError(f"cannot create the output folder ({exc.strerror})", out) from exc
    remove_stale_temporaries(out)  # left by a run killed mid-write
    total = len(table)
    if not overwrite:
        table = table[[not is_done(out, t, soft) for t in table["tile_id"]]]
    post = postprocess if postprocess is not None and postprocess.steps else None
    writers = Writers(out, predictor.threshold, soft, post)
    guard = encoding_guard(predictor, ignore_encoding)
    if len(table):
        loader = _batches(predictor, table, batch_size, num_workers)
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
            previous: tuple[Any, dict[str, Any]] | None = None
            for batch in chain(loader, [None]):
                if batch is not None and "error" in batch:
                    raise KelpsegError(*batch["error"])
                if batch is not None:
                    guard.check(batch["image"][:, : len(BAND_NAMES)], batch["tile_id"])
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
) -> tuple[AnyPredictor, PredictSummary]:
    """Load the models of ``config``, predict ``tiles`` into ``out_dir``, save the config.

    The resolved config (weights normalised, the threshold actually used) is saved as
    ``predict_config.yaml`` in ``out_dir`` once every tile is predicted.
    """
    table = resolve_tiles(tiles, config.split)  # before loading models: fail fast
    weights = config.weights
    if config.scores is not None:
        weights = weights_from_scores(config.scores).tolist()
    predictor = load_predictor(
        config.models,
        weights,
        device=config.device,
        precision=config.precision,
        tta=config.tta,
        ensemble_mode=config.ensemble_mode,
        threshold=config.threshold,
        threads=config.threads,
        tracking_uri=config.tracking_uri,
        weights_from_scores=config.weights_from_scores,
        compile_backend=config.compile_backend,
        stacked=config.stacked,
        probability=config.probability,
    )
    resolved = config.model_copy(
        update={
            "weights": [float(w) for w in predictor.weights],
            "weights_from_scores": False,
            "scores": None,  # turned into the weights above
            "threshold": predictor.threshold,
            "stacked": dict(getattr(predictor, "stacked", {})),  # the folders actually read
        }
    )
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
        ignore_encoding=config.ignore_encoding,
    )
    # Saved once every mask is written: a run that fails on a bad tile leaves the config of
    # the run that wrote the folder's masks in place.
    save_config(resolved, Path(out_dir) / CONFIG_NAME)
    return predictor, summary
