"""A timm CNN encoder as a DEM embedder (``embedder: timm:<model_name>``): the seed's approach.

Kept in its own module because it needs torch and timm (the ``train`` extra); the weight-free
``dem`` embedder does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.io.tiles import MISSING
from kelpseg.split.config import TimmEmbedderConfig

try:
    import timm
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingExtraError("train", exc.name or "timm") from exc


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise KelpsegError(f"config key 'timm.device': {exc}") from exc


def create_encoder(model_name: str, config: TimmEmbedderConfig) -> torch.nn.Module:
    """A timm model with one input channel: pooled features out, or the classifier's outputs
    with ``config.classifier`` (the seed embedded with ResNet-50's 1,000 ImageNet logits).

    Raises:
        KelpsegError: unknown model, or pretrained weights that cannot be loaded.
    """
    overlay = None
    if config.pretrained and config.checkpoint is not None:
        if not config.checkpoint.is_file():
            raise KelpsegError("weights file does not exist", config.checkpoint)
        overlay = {"file": str(config.checkpoint)}
    # Random initialisation is seeded so that embeddings (and the cache) are reproducible.
    torch.manual_seed(config.init_seed)
    head: dict[str, Any] = {} if config.classifier else {"num_classes": 0}
    try:
        model = timm.create_model(
            model_name,
            pretrained=config.pretrained,
            in_chans=1,
            pretrained_cfg_overlay=overlay,
            **head,
        )
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise KelpsegError(f"config key 'embedder': unknown timm model {model_name!r}") from exc
        raise KelpsegError(f"cannot build timm model {model_name!r}: {exc}") from exc
    except Exception as exc:  # hub / network errors come in many types
        raise KelpsegError(
            f"cannot load pretrained weights of {model_name!r} ({type(exc).__name__}); "
            "set timm.checkpoint=FILE or timm.pretrained=false"
        ) from exc
    return model.eval()


class TimmEmbedder:
    """Embeds DEMs with a timm encoder: per-tile min-max scaled elevation, resized, normalised.

    Features are not centred: like the seed, similarity is the cosine of raw pooled features.
    """

    def __init__(self, model_name: str, config: TimmEmbedderConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self.device = _device(config.device)
        self.model = create_encoder(model_name, config).to(self.device)
        cfg: dict[str, Any] = dict(getattr(self.model, "pretrained_cfg", None) or {})
        self.mean = float(np.mean(cfg.get("mean", (0.5,))))
        self.std = float(np.mean(cfg.get("std", (0.25,))))

    def _inputs(self, dems: np.ndarray) -> torch.Tensor:
        elev = np.where(dems == MISSING, 0, np.maximum(dems, 0)).astype(np.float32)
        low = elev.min(axis=(1, 2), keepdims=True)
        span = elev.max(axis=(1, 2), keepdims=True) - low
        scaled = np.where(span > 0, (elev - low) / np.maximum(span, 1e-6), 0.0)
        x = torch.from_numpy(scaled.astype(np.float32))[:, None].to(self.device)
        size = self.config.image_size
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        return (x - self.mean) / self.std

    def __call__(self, dems: np.ndarray) -> np.ndarray:
        """Embed (n, H, W) int16 DEMs as (n, num_features) float32 vectors."""
        with torch.inference_mode():
            out = self.model(self._inputs(dems))
        return out.float().cpu().numpy()
