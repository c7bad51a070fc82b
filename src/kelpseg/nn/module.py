"""The LightningModule: raw int16 batch -> inputs -> sizer -> augment -> network -> loss/metrics.

Everything between the raw tile and the loss runs on the device, in batch: channel building and
normalisation (:class:`~kelpseg.features.InputBuilder`), sizing to what the network accepts
(:class:`~kelpseg.nn.data.transforms.InputSizer`), training augmentation and the network. The
prediction is brought back to the tile's own size before loss and metrics, so they are measured
on exactly the pixels the competition scores.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryJaccardIndex,
    BinaryPrecision,
    BinaryRecall,
)

from kelpseg import __version__
from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.features.stats import BandStats
from kelpseg.io.encoding import dataset_encoding
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.data.datasets import crop_batch
from kelpseg.nn.data.stacked import build_inputs
from kelpseg.nn.data.transforms import Augmenter, InputSizer
from kelpseg.nn.heads import aux_losses, build_head_loss
from kelpseg.nn.metrics import MacroDice, ProbabilityHistogram
from kelpseg.nn.models import create_model, kelp_logit
from kelpseg.nn.optim import configure_optimization
from kelpseg.nn.slicing import sliced_outputs
from kelpseg.nn.threshold import PAYLOAD_KEY, ThresholdChoice, checkpoint_choice

CHECKPOINT_KEY = "kelpseg"
#: Training tiles read, evenly spread, to tell the training data's encoding.
ENCODING_SAMPLE = 16
_AUGMENT_STREAM = 0xA06


def segmentation_metrics(prefix: str, threshold: float = 0.5) -> MetricCollection:
    """Dice, IoU, precision, recall and accuracy of kelp, accumulated over every pixel seen.

    Dice is the F1 score of the kelp class summed over all pixels of all batches before dividing,
    ``2|P∩T| / (|P| + |T|)``: exactly the competition's global Dice, not a mean of per-tile
    scores. ``dice_macro`` is the 2nd-place log's metric beside it (the mean of background and
    kelp Dice at the 2-class argmax, :class:`~kelpseg.nn.metrics.MacroDice`), whatever
    ``threshold`` is.
    """
    opts: dict[str, Any] = {"threshold": threshold, "validate_args": False}
    return MetricCollection(
        {
            "dice": BinaryF1Score(**opts),
            "iou": BinaryJaccardIndex(**opts),
            "precision": BinaryPrecision(**opts),
            "recall": BinaryRecall(**opts),
            "accuracy": BinaryAccuracy(**opts),
            "dice_macro": MacroDice(),
        },
        prefix=prefix,
    )


class KelpSegModule(L.LightningModule):
    """Trains and runs a kelp segmentation network on raw tiles.

    Args:
        config: the run config.
        stats: band statistics for ``config.features`` (None for per-sample normalisations).
        pretrained: fetch/load encoder weights (False when weights come from a checkpoint).

    Attributes:
        inputs: raw (N, 7, H, W) int16 -> normalised (N, C, H, W) float input.
        sizer: pads or resizes to what the network accepts, and back.
        augment: training-batch augmentation (identity in eval mode).
        model: the smp network (one logit per pixel, or two for the multiclass head; with
            the auxiliary head also (N, 2) tile logits).
        confusion: the last validation epoch's 2x2 confusion matrix (rows: true 0/1).
        val_histograms: per validation epoch, the kelp and background probability histograms
            and the tile count (for the threshold sweep, :mod:`kelpseg.nn.threshold`).
        threshold_choice: the decision threshold picked after training (None before, and
            for checkpoints written before thresholds were picked).
        input_encoding: the integer encoding of the training tiles (``c2l2``, ``x10000``,
            ``s2l2a``: :mod:`kelpseg.io.encoding`), measured when training starts; prediction
            refuses inputs in another one. None for older checkpoints.
    """

    def __init__(
        self, config: TrainConfig, stats: BandStats | None = None, *, pretrained: bool = True
    ) -> None:
        super().__init__()
        self.config = config
        self.stats = stats
        self.inputs = build_inputs(config.features, stats, config.data.stacked)
        self.sizer = InputSizer.from_config(config.data.sizing)
        self.augment = Augmenter(config.data.augment)
        self.in_channels = len(config.features.channels) + len(config.data.stacked)
        self.model = create_model(config.model, self.in_channels, pretrained=pretrained)
        if config.model.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.loss = build_head_loss(config.loss, config.model.head)
        threshold = config.trainer.threshold
        self.train_metrics = segmentation_metrics("train/", threshold)
        self.val_metrics = segmentation_metrics("val/", threshold)
        self.val_confusion = BinaryConfusionMatrix(threshold=threshold, validate_args=False)
        self.confusion: Tensor | None = None
        self.val_histogram = ProbabilityHistogram()
        self.val_histograms: dict[int, tuple[np.ndarray, int]] = {}
        self.threshold_choice: ThresholdChoice | None = None
        self.input_encoding: str | None = None
        self._augment_rng: torch.Generator | None = None

    # -- forward passes ---------------------------------------------------------------------

    def network_outputs(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Head logits (N, 1 or 2, H', W') of a built and sized batch, and the (N, 2) tile
        logits of the auxiliary head (None without it)."""
        if self.config.model.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        if isinstance(out, tuple):
            return out[0], out[1]
        return out, None

    def logits(self, x: Tensor) -> Tensor:
        """Kelp logits (N, 1, H', W') of an already built and sized input batch (any head)."""
        return kelp_logit(self.network_outputs(x)[0])

    def head_outputs(self, raw: Tensor) -> Tensor:
        """Head logits (N, 1 or 2, H, W) for a raw int16 batch, at the tiles' own size."""
        return self.built_outputs(self.inputs(raw))

    def built_outputs(self, x: Tensor) -> Tensor:
        """Head logits (N, 1 or 2, H, W) of a built batch at its own size.

        With ``data.slicing.predict`` the logits are those of the mean probability of the
        overlapping slices (:func:`~kelpseg.nn.slicing.sliced_outputs`).
        """
        slicing = self.config.data.slicing
        if slicing.predict:
            return sliced_outputs(self._whole_outputs, x, slicing.size, slicing.overlap)
        return self._whole_outputs(x)

    def _whole_outputs(self, x: Tensor) -> Tensor:
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        return self.sizer.restore(self.network_outputs(self.sizer(x))[0], hw)

    def forward(self, raw: Tensor) -> Tensor:
        """Kelp logits (N, 1, H, W) for a raw int16 batch, at the tiles' own size."""
        return kelp_logit(self.head_outputs(raw))

    def predict_probabilities(self, raw: Tensor) -> Tensor:
        """Kelp probabilities (N, 1, H, W) in float32 for a raw int16 batch."""
        return torch.sigmoid(self(raw).float())

    # -- training ----------------------------------------------------------------------------

    def on_train_epoch_start(self) -> None:
        """Reseed from (seed, epoch, rank): an epoch resumed from a checkpoint repeats exactly."""
        # A stream of its own (the trailing tag), independent of the sampler's (seed, epoch) one.
        entropy = [self.config.seed, self.current_epoch, self.global_rank, _AUGMENT_STREAM]
        seed = int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)
        self._augment_rng = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Loss of one augmented batch, measured on the tiles' own pixels."""
        x, y = self.inputs(batch["image"]), batch["mask"].float()
        if "crop" in batch:  # channels built on whole tiles (data.crop_context), now cropped
            x, y = crop_batch(x, batch["crop"]), crop_batch(y, batch["crop"])
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        x, y = self.sizer(x), self.sizer.size_mask(y)
        x, y = self.augment(x, y, self._augment_rng)
        out, tile_logits = self.network_outputs(x)
        out = self.sizer.restore(out, hw)
        y = self.sizer.restore_mask(y, hw).clamp(0.0, 1.0)
        parts = self.loss.breakdown(out, y)
        loss = self.loss.combine(parts)
        if tile_logits is not None:
            aux = aux_losses(tile_logits, y, self.config.model.aux_head)
            loss = loss + torch.stack(list(aux.values())).sum()
            parts.update(aux)
        n = int(x.shape[0])
        self.log("step/loss", loss, on_step=True, on_epoch=False, batch_size=n)
        self.log("step/lr", self._base_lr(), on_step=True, on_epoch=False, batch_size=n)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        if len(parts) > 1:
            for name, value in parts.items():
                self.log(f"train/loss_{name}", value, on_epoch=True, batch_size=n, sync_dist=True)
        prob = torch.sigmoid(kelp_logit(out.detach()).float())
        self.train_metrics.update(prob, (y > 0.5).int())
        return loss

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training metrics."""
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def _base_lr(self) -> float:
        optimizers = self.trainer.optimizers if self._trainer is not None else []
        return float(optimizers[0].param_groups[0]["lr"]) if optimizers else 0.0

    # -- validation and prediction -----------------------------------------------------------

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """Update the epoch's metrics; returns the probabilities (for the image grid)."""
        out = self.head_outputs(batch["image"])
        y = batch["mask"].float()
        loss = self.loss(out, y)
        prob = torch.sigmoid(kelp_logit(out).float())
        target = (y > 0.5).int()
        self.val_metrics.update(prob, target)
        self.val_confusion.update(prob, target)
        self.val_histogram.update(prob, target)
        self.log("val/loss", loss, on_epoch=True, batch_size=int(y.shape[0]), sync_dist=True)
        return {"prob": prob}

    def on_validation_epoch_end(self) -> None:
        """Log kelp Dice (also as ``val/f1``: the same number), the log's macro Dice
        (``val/dice_macro``) and the other metrics."""
        values = self.val_metrics.compute()
        values["val/f1"] = values["val/dice"]
        self.log_dict(values)
        self.confusion = self.val_confusion.compute().cpu()
        swept = self.val_histogram.compute()
        if not self.trainer.sanity_checking:
            hist = swept["histogram"].cpu().numpy()
            self.val_histograms[self.current_epoch] = (hist, int(swept["tiles"]))
        self.val_metrics.reset()
        self.val_confusion.reset()
        self.val_histogram.reset()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """``{"tile_id": [...], "prob": (N, 1, H, W) float32}`` for a predict batch."""
        return {"tile_id": batch["tile_id"], "prob": self.predict_probabilities(batch["image"])}

    # -- optimisation --------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        """Optimiser and schedule of ``config.optim`` (see :func:`configure_optimization`)."""
        monitor: tuple[str, Literal["min", "max"]] = (
            ("val/dice", "max") if self.config.has_validation else ("train/loss", "min")
        )
        total = int(self.trainer.estimated_stepping_batches)
        return configure_optimization(self.model, self.config.optim, total, monitor)

    def setup(self, stage: str) -> None:
        """Measure the training tiles' encoding; compile the network when ``model.compile``."""
        if stage == "fit" and self._trainer is not None:
            datamodule = getattr(self.trainer, "datamodule", None)
            dataset = getattr(datamodule, "train_dataset", None)
            if dataset is not None and len(dataset):
                picks = np.linspace(0, len(dataset) - 1, min(ENCODING_SAMPLE, len(dataset)))
                tiles = [dataset.read_image(int(i), None) for i in np.unique(picks.astype(int))]
                self.input_encoding = dataset_encoding(tiles)
        cfg = self.config.model
        if stage == "fit" and cfg.compile:
            # In place: the state dict keys stay those of the plain network.
            self.model.compile(mode=cfg.compile_mode, backend=cfg.compile_backend)

    # -- checkpoints ---------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the config and band statistics, so a checkpoint alone rebuilds the module."""
        checkpoint[CHECKPOINT_KEY] = {
            "config": self.config.model_dump(mode="json"),
            "stats": stats_to_text(self.stats),
            "version": __version__,
        }
        if self.threshold_choice is not None:
            checkpoint[CHECKPOINT_KEY][PAYLOAD_KEY] = self.threshold_choice.as_dict()
        checkpoint[CHECKPOINT_KEY]["input_encoding"] = self.input_encoding

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
    ) -> KelpSegModule:
        """Rebuild a module (in eval mode) from a checkpoint written by training.

        Raises:
            KelpsegError: unreadable file, or not a kelpseg checkpoint.
        """
        path = Path(path)
        if not path.is_file():
            raise KelpsegError("checkpoint does not exist", path)
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for bad files
            raise KelpsegError(f"not a readable checkpoint ({type(exc).__name__})", path) from exc
        payload = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
        if not payload or "state_dict" not in ckpt:
            raise KelpsegError("not a kelpseg training checkpoint (no config inside)", path)
        config = validate_config(TrainConfig, payload["config"], str(path))
        module = cls(config, stats_from_text(payload["stats"]), pretrained=False)
        module.load_state_dict(ckpt["state_dict"])
        module.threshold_choice = checkpoint_choice(payload)
        module.input_encoding = payload.get("input_encoding")
        return module.eval()


def stats_to_text(stats: BandStats | None) -> str | None:
    """Band statistics as their JSON text (what ``stats.json`` holds), or None."""
    if stats is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return stats.to_json(Path(tmp) / "stats.json").read_text()


def stats_from_text(text: str | None) -> BandStats | None:
    """Inverse of :func:`stats_to_text`."""
    if text is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stats.json"
        path.write_text(text)
        stats = BandStats.from_json(path)
    stats.source = None
    return stats
