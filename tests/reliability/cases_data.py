"""Bad-input cases of the data stages: validate, catalog, EDA, band statistics, split, prepare."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from tests.reliability.cases import EARLIER, Case, Env, case, damaged_dataset, write_tile_raw

# -- validate and catalog ---------------------------------------------------------------------


@case("dataset folder missing", "validate")
def _validate_missing(env: Env) -> Case:
    missing = env.tmp / "no-such-download"
    return Case(["validate", str(missing)], str(missing), "does not exist", env.out())


@case("empty dataset folder", "catalog")
def _catalog_empty(env: Env) -> Case:
    empty = env.tmp / "empty"
    empty.mkdir()
    out = env.out("out", "catalog.parquet")
    args = ["catalog", str(empty), "--out", str(out / "catalog.parquet")]
    return Case(args, str(empty), "no *_satellite.tif tiles found", out)


@case("metadata CSV without its columns", "catalog")
def _catalog_bad_metadata(env: Env) -> Case:
    root = env.copy_data()
    meta = next(root.glob("metadata*.csv"))
    meta.write_text("name,kind\nx,y\n")
    out = env.out("out", "catalog.parquet")
    args = ["catalog", str(root), "--out", str(out / "catalog.parquet")]
    return Case(args, str(meta), "metadata lacks columns", out)


@case("two metadata files", "catalog")
def _catalog_two_metadata(env: Env) -> Case:
    root = env.copy_data()
    meta = next(root.glob("metadata*.csv"))
    shutil.copy(meta, root / "metadata_copy.csv")
    out = env.out("out", "catalog.parquet")
    args = ["catalog", str(root), "--out", str(out / "catalog.parquet")]
    return Case(args, str(root), "several metadata files", out)


@case("output folder is a file", "catalog")
def _catalog_out_is_file(env: Env) -> Case:
    out = env.out()
    blocker = out / EARLIER
    args = ["catalog", str(env.data), "--out", str(blocker / "catalog.parquet")]
    return Case(args, str(blocker), "cannot create output folder", out)


@case("read-only output folder", "catalog")
def _catalog_read_only(env: Env) -> Case:
    out = env.out("out", "catalog.parquet")
    out.chmod(0o555)
    args = ["catalog", str(env.data), "--out", str(out / "catalog.parquet")]
    return Case(args, str(out), "not writable", out)


# -- EDA, band statistics and split -----------------------------------------------------------


@case("config: unknown key", "eda stats")
def _eda_unknown_key(env: Env) -> Case:
    out = env.out("eda", "tile_stats.parquet")
    args = ["eda", "stats", str(env.data), "--out", str(out), "--set", "dask.chunks=4"]
    return Case(args, "dask.chunks", "unknown key", out)


@case("config: wrong type", "eda stats")
def _eda_wrong_type(env: Env) -> Case:
    out = env.out("eda", "tile_stats.parquet")
    args = ["eda", "stats", str(env.data), "--out", str(out), "--set", "dask.chunk_size=many"]
    return Case(args, "dask.chunk_size", "valid integer", out)


@case("unknown channel", "stats")
def _stats_unknown_channel(env: Env) -> Case:
    out = env.out("stats", "stats.json")
    args = ["stats", str(env.split), "--channels", "R,NOPE", "--out", str(out / "stats.json")]
    return Case([*args, "--quiet", "--device", "cpu"], "channels", "NOPE", out)


@case("truncated GeoTIFF", "stats")
def _stats_truncated(env: Env) -> Case:
    root, bad = damaged_dataset(env, "truncated")
    out = env.out("stats", "stats.json")
    args = ["stats", str(root), "--channels", "R,NIR", "--out", str(out / "stats.json")]
    args += ["--overwrite"]  # the earlier stats.json is in the way: the bad tile must stop it
    return Case([*args, "--quiet", "--device", "cpu"], str(bad), "GeoTIFF", out)


@case("statistics table is not parquet", "split")
def _split_not_parquet(env: Env) -> Case:
    stats = env.tmp / "tile_stats.parquet"
    stats.write_text("tile_id,split\nA,train\n")
    out = env.out("split", "split.parquet")
    args = ["split", str(stats), "--out", str(out), "--quiet", "--overwrite"]
    return Case(args, str(stats), "parquet", out)


@case("statistics table lacks columns", "split")
def _split_missing_columns(env: Env) -> Case:
    stats = env.tmp / "tile_stats.parquet"
    pd.read_parquet(env.split)[["tile_id", "split"]].to_parquet(stats)
    out = env.out("split", "split.parquet")
    args = ["split", str(stats), "--out", str(out), "--quiet", "--overwrite"]
    return Case(args, str(stats), "column", out)


# -- prepare ----------------------------------------------------------------------------------


# Faults found only when the pixels are read leave the resumable state of the chunks before them.
STORE_PROGRESS = ("manifest.json", "*_index.parquet", ".*.partial")


def _prepare_case(env: Env, fault: str, words: str, progress: tuple[str, ...] = ()) -> Case:
    root, bad = damaged_dataset(env, fault)
    out = env.out("store")
    return Case(["prepare", str(root), "--out", str(out)], str(bad), words, out, 2, progress)


@case("truncated GeoTIFF", "prepare")
def _prepare_truncated(env: Env) -> Case:
    return _prepare_case(env, "truncated", "GeoTIFF", STORE_PROGRESS)


@case("not a TIFF (PNG bytes)", "prepare")
def _prepare_not_tiff(env: Env) -> Case:
    return _prepare_case(env, "not-tiff", "GeoTIFF")


@case("4 bands instead of 7", "prepare")
def _prepare_bands(env: Env) -> Case:
    return _prepare_case(env, "bands", "expected 7 bands, found 4")


@case("float32 pixels instead of int16", "prepare")
def _prepare_dtype(env: Env) -> Case:
    return _prepare_case(env, "dtype", "expected int16 pixels, found float32")


@case("tile of another size", "prepare")
def _prepare_size(env: Env) -> Case:
    return _prepare_case(env, "size", "found 48x48")


@case("label values outside {0, 1}", "prepare")
def _prepare_label_values(env: Env) -> Case:
    root = env.copy_data()
    label = sorted((root / "train_kelp").glob("*_kelp.tif"))[1]
    write_tile_raw(label, np.full((1, 64, 64), 2, dtype=np.uint8))
    out = env.out("store")
    args = ["prepare", str(root), "--out", str(out)]
    return Case(args, str(label), "outside {0, 1}", out, 2, STORE_PROGRESS)


@case("catalog names a missing file", "prepare")
def _prepare_missing_file(env: Env) -> Case:
    frame = pd.read_parquet(env.split)
    gone = env.tmp / "gone" / "GONE1_satellite.tif"
    frame.loc[1, "image_path"] = str(gone)
    catalog = env.tmp / "catalog.parquet"
    frame.to_parquet(catalog)
    out = env.out("store")
    return Case(["prepare", str(catalog), "--out", str(out)], str(gone), "does not exist", out)


@case("duplicate tile ids in the catalog", "prepare")
def _prepare_duplicates(env: Env) -> Case:
    frame = pd.read_parquet(env.split)
    frame.loc[2, "tile_id"] = frame.loc[1, "tile_id"]
    frame.loc[2, "split"] = frame.loc[1, "split"]
    catalog = env.tmp / "catalog.parquet"
    frame.to_parquet(catalog)
    out = env.out("store")
    return Case(["prepare", str(catalog), "--out", str(out)], str(catalog), "appears twice", out)
