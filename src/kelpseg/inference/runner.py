"""Batched device inference of one model or an ensemble: inputs, sizing, precision, TTA, merge.

Per batch of raw int16 tiles, each member builds its own input channels (members sharing a
feature config and band statistics build them once), pads them to what its network accepts,
runs the network (under autocast for fp16/bf16) with optional test-time augmentation, and
crops the padding away; the members' probabilities are then combined with their weights on the
device. Only the combined (N, H, W) probabilities travel back to the host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from kelpseg.errors import KelpsegError
from kelpseg.features.indices import INDICES
from kelpseg.inference.config import Precision
from kelpseg.inference.ensemble import ENSEMBLE_MODES, combine, normalise_weights
from kelpseg.inference.tta import TtaConfig, tta_predict
from kelpseg.io.tiles import BAND_NAMES, TILE_SIZE
from kelpseg.nn.models import PROBABILITY_RULES, kelp_logit
from kelpseg.nn.module import KelpSegModule, stats_to_text

if TYPE_CHECKING:
    from kelpseg.inference.loading import LoadedModel

#: precision name -> autocast dtype of the networks (None: plain float32).
PRECISIONS: dict[str, torch.dtype | None] = {
    "32": None,
    "16": torch.float16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names are checked to exist.

    Raises:
        KelpsegError: an unknown device name, or CUDA asked for where there is none.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise KelpsegError(f"unknown device {device!r} (auto, cpu, cuda, cuda:1 ...)") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise KelpsegError("CUDA is not available on this machine; use --device cpu", device)
    return resolved


def needs_dem(module: KelpSegModule) -> bool:
    """Whether a model reads the DEM band (a DEM channel, an index of it, or land masking)."""
    features = module.config.features
    for name in features.channels:
        entry = INDICES.get(name)
        reads = entry.bands if entry is not None else (name,)
        if "DEM" in reads:
            return True
        if features.mask_using_water_mask and entry is not None and entry.masked:
            return True
    return False


def _input_key(module: KelpSegModule) -> str:
    # Members trained with the same features, statistics and stored channels build identical
    # inputs.
    stacked = ",".join(module.config.data.stacked)
    return module.config.features.model_dump_json() + str(stats_to_text(module.stats)) + stacked


def stacked_folders(
    members: Sequence[LoadedModel], given: Mapping[str, str | os.PathLike[str]] | None = None
) -> dict[str, Path]:
    """The stored channels the members read (``data.stacked``), name -> folder, in first-seen
    order: each from ``given`` (e.g. a test-time folder) else the first member's training config.

    Raises:
        KelpsegError: ``given`` names a channel no member reads.
    """
    folders: dict[str, Path] = {}
    for member in members:
        for name, folder in member.module.config.data.stacked.items():
            folders.setdefault(name, Path(folder))
    unknown = sorted(set(given or {}) - set(folders))
    if unknown:
        reads = ", ".join(folders) or "none"
        raise KelpsegError(
            f"no model reads the stored channel(s) {', '.join(unknown)} (they read: {reads})",
            "--stacked",
        )
    return {name: Path((given or {}).get(name, folder)) for name, folder in folders.items()}


class PendingBatch:
    """Probabilities of a launched batch on their way to the host; :meth:`result` waits."""

    def __init__(self, prob: Tensor, event: torch.cuda.Event | None = None) -> None:
        self._prob, self._event = prob, event

    def result(self) -> np.ndarray:
        """(N, H, W) float32 kelp probabilities."""
        if self._event is not None:
            self._event.synchronize()
        return self._prob.numpy()


class Predictor:
    """Runs one model or a weighted ensemble on batches of raw tiles, on one device.

    Build it with :func:`~kelpseg.inference.predict.load_predictor`.

    Args:
        members: the loaded models.
        weights: one weight per member (normalised); None for equal weights.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a torch device.
        precision: ``"32"``, ``"16"`` or ``"bf16"`` (autocast of the networks; input channels
            and the ensemble maths stay in float32 or wider).
        tta: test-time augmentation (None: off).
        ensemble_mode: a key of :data:`~kelpseg.inference.ENSEMBLE_MODES`.
        threshold: decision threshold; None: the members' thresholds, weighted.
        channels_last: run the networks channels-last (None: on CUDA with fp16/bf16).
        compile_backend: ``torch.compile`` the networks with this backend (``inductor``);
            None: run them eagerly. The first batch of each input size pays the compilation.
        stacked: folder of each stored channel (``data.stacked``) some member reads; None or a
            missing name: the folder recorded in the member's training config.
        probability: ``softmax`` or ``sigmoid_kelp``: how a 2-class head's logits become the
            kelp probability (:func:`~kelpseg.nn.models.kelp_logit`).

    Attributes:
        tile_size: the tile size the models were made for (350; other sizes are padded or
            resized internally as each model's sizing says).
        channels: every input channel some member reads, in first-seen order.
        needs_dem: whether some member reads the DEM band.
        stacked: stored channels some member reads, name -> folder; batches carry them as
            planes after the seven bands, in this order (see :mod:`kelpseg.nn.data.stacked`).
        threshold: the decision threshold of the masks.
        threshold_source: where ``threshold`` came from.
        weights: normalised member weights.
        device: where the networks run.
        input_encoding: the integer encoding every member trained on (:mod:`kelpseg.io.encoding`);
            None when unknown (older checkpoints) or when the members differ.
    """

    def __init__(
        self,
        members: Sequence[LoadedModel],
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        device: str | torch.device = "auto",
        precision: Precision = "32",
        tta: TtaConfig | None = None,
        ensemble_mode: str = "mean_prob",
        threshold: float | None = None,
        channels_last: bool | None = None,
        compile_backend: str | None = None,
        stacked: Mapping[str, str | os.PathLike[str]] | None = None,
        probability: str = "softmax",
    ) -> None:
        if not members:
            raise KelpsegError("give at least one model to predict with")
        if precision not in PRECISIONS:
            raise KelpsegError(f"unknown precision {precision!r}; one of {', '.join(PRECISIONS)}")
        if ensemble_mode not in ENSEMBLE_MODES:
            known = ", ".join(ENSEMBLE_MODES)
            raise KelpsegError(f"unknown ensemble mode {ensemble_mode!r}; known: {known}")
        self.members = list(members)
        self.weights = normalise_weights(weights, len(self.members))
        self.device = resolve_device(device)
        self.precision: Precision = precision
        self.tta = tta or TtaConfig()
        self.ensemble_mode = ensemble_mode
        if probability not in PROBABILITY_RULES:
            known = ", ".join(PROBABILITY_RULES)
            raise KelpsegError(f"unknown probability rule {probability!r}; known: {known}")
        self.probability = probability
        self.tile_size = TILE_SIZE
        self.channels = list(
            dict.fromkeys(c for m in self.members for c in m.module.config.features.channels)
        )
        self.needs_dem = any(needs_dem(m.module) for m in self.members)
        self.stacked = stacked_folders(self.members, stacked)
        encodings = {m.module.input_encoding for m in self.members}
        self.input_encoding = encodings.pop() if len(encodings) == 1 else None
        if threshold is None:
            values = np.array([m.threshold for m in self.members], dtype=np.float64)
            self.threshold = float(np.round((values * self.weights).sum(), 9))
            sources = sorted({m.threshold_source for m in self.members})
            self.threshold_source = " and ".join(sources)
        else:
            if not 0.0 <= threshold <= 1.0:
                raise KelpsegError(f"threshold {threshold} is outside [0, 1]")
            self.threshold, self.threshold_source = float(threshold), "given"
        fast = self.device.type == "cuda" and PRECISIONS[precision] is not None
        self._channels_last = fast if channels_last is None else channels_last
        self._compile_backend = compile_backend
        self._groups: dict[str, list[int]] = {}
        for i, member in enumerate(self.members):
            self._prepare(member.module)
            self._groups.setdefault(_input_key(member.module), []).append(i)

    def _prepare(self, module: KelpSegModule) -> None:
        module.to(self.device).eval()
        if self._channels_last and not module.config.model.channels_last:
            module.config.model.channels_last = True  # makes ``logits`` convert its input
            module.model.to(memory_format=torch.channels_last)
        if self._compile_backend is not None:
            # In place, so the module's own forward (and its state dict keys) stay as they are.
            module.model.compile(backend=self._compile_backend, dynamic=False)

    @property
    def transforms(self) -> tuple[str, ...]:
        """The TTA transforms of each forward pass (``("identity",)`` when TTA is off)."""
        return tuple(self.tta.transforms) if self.tta.enabled else ("identity",)

    def predict_batch(self, raw: np.ndarray | Tensor) -> np.ndarray:
        """Kelp probabilities of a batch of raw tiles.

        Args:
            raw: (N, 7, H, W) int16 tiles, any H and W the members accept (N, 7 + E, H, W)
                with the E stored channels of :attr:`stacked` after the bands.

        Returns:
            (N, H, W) float32 probabilities: members combined, TTA applied if enabled.
        """
        return self.launch(raw).result()

    def launch(self, raw: np.ndarray | Tensor) -> PendingBatch:
        """Start a batch; on CUDA it returns while the device works (see :meth:`predict_batch`).

        Calling :meth:`PendingBatch.result` of one batch after launching the next keeps the
        device busy while the host handles results.
        """
        batch = self._to_device(raw)
        with torch.inference_mode():
            probs = self.member_probabilities(batch)
            merged = combine(probs, self.weights, self.ensemble_mode, self.threshold)[:, 0]
            merged = merged.float()
            if self.device.type != "cuda":
                return PendingBatch(merged.cpu())
            host = torch.empty(merged.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(merged, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            return PendingBatch(host, event)

    def _to_device(self, raw: np.ndarray | Tensor) -> Tensor:
        batch = torch.from_numpy(np.asarray(raw)) if not isinstance(raw, Tensor) else raw
        planes = len(BAND_NAMES) + len(self.stacked)
        if batch.ndim != 4 or batch.shape[1] != planes:
            extra = f" + stored {', '.join(self.stacked)}" if self.stacked else ""
            raise KelpsegError(
                f"expected raw tiles (N, {planes}, H, W): the bands{extra}; "
                f"got {tuple(batch.shape)}"
            )
        if batch.dtype != torch.int16:
            raise KelpsegError(f"expected int16 raw tiles, got {batch.dtype}")
        return batch.to(self.device, non_blocking=batch.is_pinned())

    def member_probabilities(self, raw: Tensor) -> list[Tensor]:
        """Each member's (N, 1, H, W) float32 probabilities of a raw batch on the device."""
        out: list[Tensor | None] = [None] * len(self.members)
        hw = (int(raw.shape[-2]), int(raw.shape[-1]))
        for indices in self._groups.values():
            module = self.members[indices[0]].module
            x = module.inputs(self._planes_of(module, raw))  # float32, outside autocast
            for i in indices:
                out[i] = self._forward(self.members[i].module, x, hw)
        return [p for p in out if p is not None]

    def _planes_of(self, module: KelpSegModule, raw: Tensor) -> Tensor:
        """The bands and, of the stored planes, those ``module`` reads, in its order."""
        names = list(self.stacked)
        own = [len(BAND_NAMES) + names.index(n) for n in module.config.data.stacked]
        if own == list(range(len(BAND_NAMES), raw.shape[1])):
            return raw
        keep = torch.tensor([*range(len(BAND_NAMES)), *own], device=raw.device)
        return raw.index_select(1, keep)

    def _forward(self, module: KelpSegModule, x: Tensor, hw: tuple[int, int]) -> Tensor:
        dtype = PRECISIONS[self.precision]
        autocast = (
            torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()
        )
        rule = self.probability
        if module.config.data.slicing.predict:  # slices are sized one by one, then averaged
            with autocast:
                return tta_predict(
                    lambda t: kelp_logit(module.built_outputs(t), rule),
                    x,
                    self.transforms,
                    self.tta.merge,
                )

        def logits(t: Tensor) -> Tensor:
            return kelp_logit(module.network_outputs(t)[0], rule)

        sized = module.sizer(x)
        with autocast:
            prob = tta_predict(logits, sized, self.transforms, self.tta.merge)
        return module.sizer.restore(prob, hw)
