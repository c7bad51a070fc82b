"""Band statistics fanned out over a real Dask LocalCluster (2 worker processes, loopback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kelpseg.features import FeatureConfig, compute_band_stats

distributed = pytest.importorskip("distributed")


@pytest.mark.slow
def test_dask_partials_merge_to_the_local_result(stats_tiles: list[Path]) -> None:
    config = FeatureConfig(channels=["NIR", "NDVI", "DEMWM"])
    local = compute_band_stats(stats_tiles, config, device="cpu", show_progress=False)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        memory_limit="4GiB",  # a worker imports torch (~600 MiB); 1 GiB made Dask pause it forever
        dashboard_address=":0",
    ) as cluster:
        fanned = compute_band_stats(
            stats_tiles,
            config,
            device="cpu",
            scheduler=cluster.scheduler_address,
            partition_size=2,
            show_progress=False,
        )
    assert fanned.count == local.count and fanned.min == local.min and fanned.max == local.max
    assert fanned.quantiles == local.quantiles  # histogram counts add exactly
    for c in config.channels:
        np.testing.assert_allclose(fanned.mean[c], local.mean[c], rtol=1e-12)
        np.testing.assert_allclose(fanned.std[c], local.std[c], rtol=1e-10)
    assert fanned.options["scheduler"] == cluster.scheduler_address
    assert fanned.options["tiles"] == len(stats_tiles)
