from __future__ import annotations

import os

import pytest

from kelpseg.eda.cluster import dask_client
from kelpseg.eda.config import DaskSettings


def _worker_environ() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_has_the_asked_workers_without_dasks_malloc_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An earlier cluster in this test process may have exported Dask's value: start clean.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with dask_client(None, 2, DaskSettings(memory_limit="512MiB")) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert {w["nthreads"] for w in workers.values()} == {1}
        assert set(client.run(_worker_environ).values()) == {None}
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
