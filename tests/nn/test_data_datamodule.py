"""KelpDataModule: folds without leakage, exclusions, batch format, seeding, Lightning hooks."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import read_tile
from kelpseg.nn.data import DataConfig, KelpDataModule, SamplerConfig, sample_weights
from kelpseg.nn.data.datamodule import read_tile_ids
from kelpseg.nn.data.store import prepare_store
from tests.nn.conftest import N_FOLDS, TILE


def _config(**changes: object) -> DataConfig:
    base = {
        "batch_size": 4,
        "num_workers": 0,
        "sampler": SamplerConfig(samples_per_epoch=12),
        "crop_size": 32,
        "kelp_crop_prob": 0.5,
    }
    return DataConfig(**{**base, **changes})


def _ids(loader) -> list[str]:
    return [tile for batch in loader for tile in batch["tile_id"]]


@pytest.mark.parametrize("fold", range(N_FOLDS))
def test_folds_never_share_tiles(split_catalog: pd.DataFrame, store_dir: Path, fold: int):
    dm = KelpDataModule.from_catalog(split_catalog, fold, _config(store=store_dir), seed=0)
    dm.setup("fit")
    train = set(dm.train_dataset.tile_ids)
    val_loaded = _ids(dm.val_dataloader())
    labelled = split_catalog[split_catalog["split"] == "train"]
    assert sorted(val_loaded) == sorted(labelled.loc[labelled["fold"] == fold, "tile_id"])
    assert train.isdisjoint(val_loaded)
    holdout = set(labelled.loc[labelled["fold"] == -1, "tile_id"])
    assert holdout and holdout.isdisjoint(train | set(val_loaded))
    assert train | set(val_loaded) | holdout == set(labelled["tile_id"])
    assert set(_ids(dm.train_dataloader())) <= train


def test_excluded_tiles_are_never_loaded(split_catalog: pd.DataFrame, tmp_path: Path):
    labelled = split_catalog[split_catalog["split"] == "train"]
    by_fold = labelled.groupby("fold")["tile_id"].first()
    listed = tmp_path / "bad_labels.txt"
    listed.write_text(f"# audited\n{by_fold[1]}  # wrong label\n\n")
    config = _config(exclude=[str(by_fold[0])], exclude_file=listed)
    dm = KelpDataModule.from_catalog(split_catalog, 0, config, seed=0)
    dm.setup("fit")
    used = set(dm.train_dataset.tile_ids) | set(dm.val_dataset.tile_ids)
    assert {by_fold[0], by_fold[1]}.isdisjoint(used)
    assert len(used) == (labelled["fold"] != -1).sum() - 2


def test_tile_id_lists_read_from_text_csv_and_parquet(tmp_path: Path):
    pd.DataFrame({"tile_id": ["A1", "B2"]}).to_csv(tmp_path / "x.csv", index=False)
    pd.DataFrame({"tile_id": ["C3"]}).to_parquet(tmp_path / "x.parquet")
    (tmp_path / "x.txt").write_text("D4\n  E5 # note\n")
    assert read_tile_ids(tmp_path / "x.csv") == ["A1", "B2"]
    assert read_tile_ids(tmp_path / "x.parquet") == ["C3"]
    assert read_tile_ids(tmp_path / "x.txt") == ["D4", "E5"]
    pd.DataFrame({"id": ["A1"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(KelpsegError, match="no 'tile_id' column"):
        read_tile_ids(tmp_path / "bad.csv")


def test_full_fit_trains_on_every_fold_without_validation(split_catalog: pd.DataFrame):
    dm = KelpDataModule.from_catalog(split_catalog, None, _config(), seed=0)
    dm.setup("fit")
    labelled = split_catalog[split_catalog["split"] == "train"]
    assert set(dm.train_dataset.tile_ids) == set(labelled.loc[labelled["fold"] >= 0, "tile_id"])
    assert dm.val_dataloader() == []


@pytest.mark.parametrize("use_store", [True, False])
def test_batches_are_raw_int16_tiles_with_float_masks(
    split_catalog: pd.DataFrame, store_dir: Path, use_store: bool
):
    config = _config(store=store_dir if use_store else None, val_batch_size=3)
    dm = KelpDataModule.from_catalog(split_catalog, 1, config, seed=0)
    dm.setup(None)
    train = next(iter(dm.train_dataloader()))
    assert train["image"].dtype == torch.int16 and train["image"].shape == (4, 7, 32, 32)
    assert train["mask"].dtype == torch.float32 and train["mask"].shape == (4, 1, 32, 32)
    assert float(train["mask"].min()) >= 0.0 and float(train["mask"].max()) <= 1.0
    assert len(train["tile_id"]) == 4 and all(isinstance(t, str) for t in train["tile_id"])
    val = next(iter(dm.val_dataloader()))
    assert val["image"].shape == (3, 7, TILE, TILE) and val["mask"].shape == (3, 1, TILE, TILE)
    first = split_catalog.set_index("tile_id").loc[val["tile_id"][0], "image_path"]
    assert torch.equal(val["image"][0], torch.from_numpy(read_tile(first, expected_size=None).data))
    test = next(iter(dm.predict_dataloader()))
    assert "mask" not in test and test["image"].shape[1:] == (7, TILE, TILE)
    assert set(test["tile_id"]) <= set(
        split_catalog.loc[split_catalog["split"] == "test", "tile_id"]
    )


def test_sampler_weights_come_from_the_catalog_statistics(split_catalog: pd.DataFrame):
    dm = KelpDataModule.from_catalog(split_catalog, 2, _config(), seed=0)
    dm.setup("fit")
    expected = sample_weights(dm.selection.train, reference=split_catalog)
    np.testing.assert_allclose(dm.train_sampler.weights, expected)
    kelp = dm.selection.train["has_kelp"].to_numpy(dtype=bool)
    assert expected[kelp].mean() > 2 * expected[~kelp].mean()
    assert expected.max() <= 1.0 and expected.min() >= 0.0


def test_predict_splits_and_files(split_catalog: pd.DataFrame):
    holdout = KelpDataModule.from_catalog(split_catalog, 0, _config(predict_split="holdout"))
    batch = next(iter(holdout.predict_dataloader()))
    labelled = split_catalog[split_catalog["split"] == "train"]
    assert batch["tile_id"] == list(labelled.loc[labelled["fold"] == -1, "tile_id"])
    assert "mask" in batch  # hold-out tiles are labelled
    paths = list(split_catalog.loc[split_catalog["split"] == "test", "image_path"])[::-1]
    files = KelpDataModule.from_files(paths, _config(crop_size=None))
    ids = _ids(files.predict_dataloader())
    assert ids == [Path(p).name.removesuffix("_satellite.tif") for p in paths]


@pytest.mark.parametrize("use_store", [True, False])
def test_same_seed_same_batches_with_or_without_workers(
    split_catalog: pd.DataFrame, store_dir: Path, use_store: bool
):
    store = store_dir if use_store else None

    def epoch(workers: int, seed: int) -> list[torch.Tensor]:
        config = _config(num_workers=workers, persistent_workers=False, store=store)
        dm = KelpDataModule.from_catalog(split_catalog, 0, config, seed=seed)
        dm.setup("fit")
        return [b["image"] for b in dm.train_dataloader()]

    a, b, c = epoch(0, 5), epoch(2, 5), epoch(0, 6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


class _Recorder(L.LightningModule):
    """A one-parameter model that records what each training epoch drew."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.drawn: dict[int, list[str]] = {}
        self.dtypes: set[torch.dtype] = set()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.drawn.setdefault(self.current_epoch, []).extend(batch["tile_id"])
        self.dtypes.add(batch["image"].dtype)
        return (self.weight * batch["mask"].mean()).sum() + self.weight.pow(2).sum()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.dtypes.add(batch["image"].dtype)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_draws_a_new_sample_each_epoch(split_catalog: pd.DataFrame, store_dir: Path):
    dm = KelpDataModule.from_catalog(split_catalog, 0, _config(store=store_dir))
    model = _Recorder()
    L.seed_everything(3, verbose=False)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    assert dm.seed == 3  # taken from seed_everything
    assert len(model.drawn[0]) == len(model.drawn[1]) == 12
    assert model.drawn[0] != model.drawn[1]
    assert model.dtypes == {torch.int16}


def test_bad_folds_and_sources_are_user_errors(
    split_catalog: pd.DataFrame, store_dir: Path, tmp_path: Path
):
    with pytest.raises(
        KelpsegError, match=r"fold 7 has no tiles; the catalog's folds are \[0, 1, 2\]"
    ):
        KelpDataModule.from_catalog(split_catalog, 7, _config()).setup("fit")
    with pytest.raises(KelpsegError, match="no 'fold' column"):
        KelpDataModule.from_catalog(split_catalog.drop(columns="fold"), 0, _config()).setup("fit")
    with pytest.raises(KelpsegError, match=r"data\.crop_size"):
        KelpDataModule.from_catalog(split_catalog, 0, _config(crop_size=128)).setup("fit")
    with pytest.raises(KelpsegError, match=r"data\.catalog"):
        KelpDataModule(_config()).setup("fit")
    with pytest.raises(KelpsegError, match="does not exist"):
        KelpDataModule.from_catalog(tmp_path / "nope.parquet", 0, _config()).setup("fit")
    partial = tmp_path / "partial-store"
    prepare_store(split_catalog.iloc[:12], partial, splits=("train", "test"), show_progress=False)
    with pytest.raises(KelpsegError, match="other tiles") as err:
        KelpDataModule.from_catalog(split_catalog, 0, _config(store=partial)).setup("fit")
    assert err.value.path == str(partial / "train_index.parquet")


@pytest.mark.parametrize("use_store", [False, True])
def test_crop_context_batches_are_whole_tiles_with_their_windows(
    split_catalog: pd.DataFrame, store_dir: Path, use_store: bool
):
    from kelpseg.nn.data.datasets import crop_batch

    store = store_dir if use_store else None
    plain = KelpDataModule.from_catalog(split_catalog, 1, _config(store=store), seed=0)
    context = KelpDataModule.from_catalog(
        split_catalog, 1, _config(store=store, crop_context=True), seed=0
    )
    cropped, whole = (next(iter(dm.train_dataloader())) for dm in (plain, context))
    assert "crop" not in cropped and whole["image"].shape == (4, 7, TILE, TILE)
    assert whole["tile_id"] == cropped["tile_id"]  # same sampler draws, same windows
    assert torch.equal(crop_batch(whole["image"], whole["crop"]), cropped["image"])
    assert torch.equal(crop_batch(whole["mask"], whole["crop"]), cropped["mask"])
    val = next(iter(context.val_dataloader()))
    assert "crop" not in val and val["image"].shape[-1] == TILE  # validation: whole tiles
