from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kelpseg.config import load_config
from kelpseg.eda.config import DaskSettings, EdaConfig
from kelpseg.eda.plots import statistic_columns
from kelpseg.eda.runner import (
    FAILURE_COLUMNS,
    PARTIAL_DIR,
    compute_tile_stats,
    run_stats,
)
from kelpseg.eda.tile_stats import TILE_STATS
from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import CATALOG_COLUMNS, build_catalog
from kelpseg.io.tiles import write_tile
from tests.eda.conftest import crafted_tile, write_dataset
from tests.eda.test_tile_stats import HAND_COUNTED

TRAIN = {"AA001": 0, "AA002": 7, "AA003": 41, "AA004": 1, "AA005": 0}
TEST = ["TT001", "TT002"]
LABEL_COLUMNS = list(TILE_STATS["label"].columns)


def _config(chunk_size: int = 2, **kwargs: object) -> EdaConfig:
    return EdaConfig(tile_size=0, dask=DaskSettings(chunk_size=chunk_size), **kwargs)  # type: ignore[arg-type]


def _stats(catalog: pd.DataFrame, cluster: object, config: EdaConfig | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return compute_tile_stats(
        catalog,
        config or _config(),
        scheduler=cluster.scheduler_address,  # type: ignore[attr-defined]
        show_progress=False,
        **kw,  # type: ignore[arg-type]
    )


def test_two_worker_cluster_computes_every_tile(tmp_path: Path, dask_cluster: object) -> None:
    catalog = build_catalog(write_dataset(tmp_path, TRAIN, TEST)).tiles
    stats, failures = _stats(catalog, dask_cluster)
    assert failures.empty
    assert list(stats["tile_id"]) == list(catalog["tile_id"])
    pd.testing.assert_frame_equal(stats[list(CATALOG_COLUMNS)], catalog)
    for column, expected in HAND_COUNTED.items():
        assert stats[column].tolist() == pytest.approx([expected] * len(stats)), column
    train = stats[stats["split"] == "train"].set_index("tile_id")
    assert train["kelp_pixels"].to_dict() == TRAIN
    assert train["has_kelp"].to_dict() == {k: v > 0 for k, v in TRAIN.items()}
    assert train["high_kelp_pixels_pct"].sum() == 1
    assert stats.loc[stats["split"] == "test", LABEL_COLUMNS].isna().all().all()


def test_corrupt_tile_is_reported_and_the_rest_processed(
    tmp_path: Path, dask_cluster: object
) -> None:
    catalog = build_catalog(write_dataset(tmp_path, TRAIN, TEST, corrupt=["BAD01"])).tiles
    stats, failures = _stats(catalog, dask_cluster)
    assert list(failures.columns) == list(FAILURE_COLUMNS)
    assert failures["tile_id"].tolist() == ["BAD01"]
    assert "BAD01_satellite.tif" in failures["error"].iloc[0]
    assert failures["error_type"].iloc[0] == "KelpsegError"
    assert sorted(stats["tile_id"]) == sorted([*TRAIN, *TEST])


def test_without_label_folder_label_columns_are_empty(tmp_path: Path, dask_cluster: object) -> None:
    catalog = build_catalog(write_dataset(tmp_path, TRAIN, TEST, labels=False)).tiles
    stats, failures = _stats(catalog, dask_cluster)
    assert failures.empty
    assert len(stats) == len(TRAIN) + len(TEST)
    assert stats[LABEL_COLUMNS].isna().all().all()
    assert str(stats["kelp_pixels"].dtype) == "Int64"
    assert (stats["water_pixels"] == 40).all()


def test_done_chunks_are_loaded_not_recomputed(tmp_path: Path, dask_cluster: object) -> None:
    catalog = build_catalog(write_dataset(tmp_path / "data", TRAIN, TEST)).tiles
    partial = tmp_path / "partial"
    first, _ = _stats(catalog, dask_cluster, partial_dir=partial)
    done = sorted(partial.glob("chunk-*.stats.parquet"))
    assert len(done) == 4  # 7 tiles in chunks of 2
    # Tamper with chunk 0 and delete chunk 3: a re-run must keep the one and redo the other.
    frame = pd.read_parquet(done[0])
    frame.loc[0, "water_pixels"] = 999
    frame.to_parquet(done[0], index=False)
    done[3].unlink()
    second, _ = _stats(catalog, dask_cluster, partial_dir=partial)
    assert second["water_pixels"].iloc[0] == 999
    assert done[3].is_file()
    pd.testing.assert_frame_equal(second.iloc[1:], first.iloc[1:])
    # Another threshold changes every chunk key: nothing stale is reused.
    relaxed = _config(thresholds={"almost_all_water": 0.5})
    third, _ = _stats(catalog, dask_cluster, relaxed, partial_dir=partial)
    assert (third["water_pixels"] == 40).all()
    assert len(list(partial.glob("chunk-*.stats.parquet"))) == 8


def test_empty_catalog_gives_empty_typed_tables() -> None:
    empty = pd.DataFrame({c: pd.Series([], dtype="string") for c in CATALOG_COLUMNS})
    stats, failures = compute_tile_stats(empty, _config(), show_progress=False)
    assert stats.empty and failures.empty
    assert "qa_ok" in stats.columns and str(stats["has_kelp"].dtype) == "boolean"


def test_catalog_without_required_columns_is_rejected() -> None:
    with pytest.raises(KelpsegError, match="lacks columns"):
        compute_tile_stats(pd.DataFrame({"tile_id": ["A"]}), _config(), show_progress=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(60)
def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    catalog = build_catalog(write_dataset(tmp_path, {"AA001": 1}, [])).tiles
    address = f"tcp://127.0.0.1:{_free_port()}"
    config = EdaConfig(tile_size=0, dask=DaskSettings(connect_timeout_s=1))
    with pytest.raises(KelpsegError, match="cannot reach the Dask scheduler within 1 s") as err:
        compute_tile_stats(catalog, config, scheduler=address, show_progress=False)
    assert err.value.path == address


def test_run_stats_writes_every_output(tmp_path: Path, dask_cluster: object) -> None:
    data = write_dataset(tmp_path / "data", TRAIN, TEST, corrupt=["BAD01"])
    out = tmp_path / "out"
    config = _config(thresholds={"almost_all_water": 0.3})
    run = run_stats(
        data,
        out,
        config,
        scheduler=dask_cluster.scheduler_address,  # type: ignore[attr-defined]
        show_progress=False,
    )
    saved = pd.read_parquet(out / "tile_stats.parquet")
    pd.testing.assert_frame_equal(saved, run.stats)
    assert saved["almost_all_water"].all()  # 40% water > 0.3
    assert Path(saved["image_path"].iloc[0]).is_absolute()
    assert pd.read_csv(out / "failures.csv")["tile_id"].tolist() == ["BAD01"]
    assert load_config(EdaConfig, out / "eda_config.yaml") == config
    describe = pd.read_parquet(out / "describe.parquet")
    assert set(describe["statistic"]) == set(statistic_columns(saved))
    pngs = {p.name for p in (out / "plots").glob("*.png")}
    assert pngs == {f"dist_{c}.png" for c in statistic_columns(saved)} | {"correlation.png"}
    assert not (out / PARTIAL_DIR).exists()


_KILL_SCRIPT = """
import sys
from kelpseg.eda.config import DaskSettings, EdaConfig
from kelpseg.eda.runner import compute_tile_stats
from kelpseg.io.catalog import build_catalog
if __name__ == "__main__":
    data, partial, address = sys.argv[1:]
    config = EdaConfig(dask=DaskSettings(chunk_size=1))
    compute_tile_stats(build_catalog(data).tiles, config, scheduler=address,
                       show_progress=False, partial_dir=partial)
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_mid_run_loses_at_most_the_chunks_in_flight(
    tmp_path: Path, dask_cluster: object
) -> None:
    data = tmp_path / "data"
    for i in range(150):
        write_tile(data / "test_satellite" / f"T{i:04d}_satellite.tif", _full_tile(i))
    partial = tmp_path / "partial"
    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(data), str(partial), address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while len(list(partial.glob("*.stats.parquet"))) < 5 and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = len(list(partial.glob("*.stats.parquet")))
    assert 5 <= survived < 150, "the run must be killed part-way"
    config = EdaConfig(dask=DaskSettings(chunk_size=1))
    catalog = build_catalog(data).tiles
    resumed, failures = compute_tile_stats(
        catalog, config, scheduler=address, show_progress=False, partial_dir=partial
    )
    clean, _ = compute_tile_stats(catalog, config, scheduler=address, show_progress=False)
    assert failures.empty
    pd.testing.assert_frame_equal(resumed, clean)


def _full_tile(seed: int):  # type: ignore[no-untyped-def]
    import numpy as np

    tile = np.tile(crafted_tile(seed), (1, 35, 35))
    return np.ascontiguousarray(tile)


@pytest.mark.slow
def test_statistics_agree_with_the_generator_truth(tmp_path: Path, dask_cluster: object) -> None:
    synth = pytest.importorskip("kelpseg.synth")
    result = synth.generate_dataset(
        tmp_path / "data", synth.SynthConfig(n_aoi=4, seed=3, tile_size=64), show_progress=False
    )
    catalog = build_catalog(result.out_dir).tiles
    stats, failures = _stats(catalog, dask_cluster, EdaConfig(tile_size=64))
    assert failures.empty
    both = stats.merge(result.truth, on="tile_id", suffixes=("", "_truth"))
    assert len(both) == len(result.truth)
    train = both[both["split"] == "train"]
    assert train["kelp_pixels"].tolist() == train["label_kelp_pixels"].tolist()
    # QA = cloud | dropped pixel: the estimate is exact where nothing was dropped, never above.
    clean = both["spectral_missing_pixels"] == 0
    assert clean.sum() > 0
    assert both.loc[clean, "cloud_fraction"].tolist() == pytest.approx(
        both.loc[clean, "cloud_fraction_truth"].tolist()
    )
    assert (both["cloud_fraction"] <= both["cloud_fraction_truth"] + 1e-9).all()
