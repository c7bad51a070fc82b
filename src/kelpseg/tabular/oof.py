"""Out-of-fold tree probabilities, for stacking a tree model under a network.

A network that takes the tree model's probability as an input channel must never see an
in-sample tree output: on the pixels a tree model was trained on, its probabilities are far
more confident than anywhere else, and the network learns to trust a channel that is weaker
on new tiles (the 1st place trained its tree model on all data and later found that removing
the channel helped). :class:`OutOfFoldPredictor` therefore answers for a training tile of fold
K with the model whose validation fold was K (trained on the other folds only), and for a test
tile with the model trained on every fold.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from kelpseg.errors import KelpsegError
from kelpseg.tabular.artifact import TabularModel, load_model
from kelpseg.tabular.predict import predict_tiles

PathLike = str | os.PathLike[str]


class OutOfFoldPredictor:
    """Routes each tile to the tree model that never saw its fold.

    Args:
        models: one model per validation fold (``train_tabular(..., fold=K)``) and optionally
            one trained on every fold (``fold=None``), as objects or model folders.

    Raises:
        KelpsegError: two models claim the same fold, a model saw its own holdout fold, or
            the models disagree on their channels.
    """

    def __init__(self, models: Iterable[TabularModel | PathLike]) -> None:
        loaded = [m if isinstance(m, TabularModel) else load_model(m) for m in models]
        if not loaded:
            raise KelpsegError("out-of-fold prediction needs at least one model")
        self.by_fold: dict[int, TabularModel] = {}
        self.full: TabularModel | None = None
        for model in loaded:
            self._add(model)
        channels = {tuple(m.channels) for m in loaded}
        if len(channels) > 1:
            raise KelpsegError("out-of-fold models must use the same channels")

    def _add(self, model: TabularModel) -> None:
        where = model.path or model.name
        if model.holdout_fold is None:
            if self.full is not None:
                raise KelpsegError("two models trained on every fold were given", where)
            self.full = model
            return
        if model.holdout_fold in model.train_folds:
            raise KelpsegError(f"model saw its holdout fold {model.holdout_fold}", where)
        if model.holdout_fold in self.by_fold:
            raise KelpsegError(f"two models hold out fold {model.holdout_fold}", where)
        self.by_fold[model.holdout_fold] = model

    @property
    def folds(self) -> list[int]:
        """The folds covered by a held-out model."""
        return sorted(self.by_fold)

    def model_for(self, fold: int | None) -> TabularModel:
        """The model for a tile of ``fold`` (``None`` or negative: a test tile).

        Raises:
            KelpsegError: no model for that fold (or no all-folds model for test tiles).
        """
        if fold is None or fold < 0:
            if self.full is None:
                raise KelpsegError("test tiles need a model trained on every fold (fold=None)")
            return self.full
        model = self.by_fold.get(int(fold))
        if model is None:
            raise KelpsegError(f"no model holds out fold {fold} (folds {self.folds})")
        return model

    def __call__(self, raw: Any, folds: Sequence[int | None]) -> Any:
        """(N, H, W) probabilities of a raw batch; tile i uses ``model_for(folds[i])``.

        Accepts and returns numpy or torch like :func:`kelpseg.tabular.predict_tiles`.
        """
        if len(folds) != raw.shape[0]:
            raise KelpsegError(f"got {len(folds)} folds for {raw.shape[0]} tiles")
        keys = [-1 if f is None or f < 0 else int(f) for f in folds]
        is_tensor = isinstance(raw, torch.Tensor)
        out: Any = (
            torch.empty(raw.shape[0], *raw.shape[2:], device=raw.device)
            if is_tensor
            else np.empty((raw.shape[0], *raw.shape[2:]), dtype=np.float32)
        )
        for key in sorted(set(keys)):
            index = [i for i, k in enumerate(keys) if k == key]
            out[index] = predict_tiles(self.model_for(key), raw[index])
        return out
