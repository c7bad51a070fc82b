"""Dask clients for the EDA: a new local cluster of processes, or an existing scheduler.

``distributed`` comes with the ``data`` extra; it is imported when a client is made, so the rest
of :mod:`kelpseg.eda` (plots, report) works without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kelpseg.eda.config import DaskSettings
from kelpseg.errors import KelpsegError, MissingExtraError

if TYPE_CHECKING:
    from distributed import Client, Future


# Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's adaptive mmap
# threshold: every ~2 MB tile array is then mapped and unmapped again (about 1,300 page faults
# and +35% CPU per tile, measured). Workers we start keep glibc's default; the memory they hold
# stays flat anyway (one tile at a time). A cluster started earlier in this process without
# this setting has already exported the variable, and then it still applies.
_WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextmanager
def dask_client(
    scheduler: str | None, workers: int | None, settings: DaskSettings
) -> Iterator[Client]:
    """A Dask client: to ``scheduler`` if given, else to a new local cluster of processes.

    Args:
        scheduler: address of an existing scheduler (``tcp://host:port``), or ``None``.
        workers: local worker processes, one thread each (default: CPU count); ignored with
            ``scheduler``.
        settings: connect timeout and local memory limit.

    Raises:
        KelpsegError: the scheduler does not answer within ``settings.connect_timeout_s``.
        MissingExtraError: ``distributed`` is not installed.
    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the 'data' extra is missing
        raise MissingExtraError("data", "distributed") from exc
    if scheduler:
        try:
            client = Client(scheduler, timeout=settings.connect_timeout_s, set_as_default=False)
        except Exception as exc:  # OSError, TimeoutError, or garbage from a non-Dask port
            raise KelpsegError(
                f"cannot reach the Dask scheduler within {settings.connect_timeout_s:g} s "
                f"({type(exc).__name__}: {str(exc)[:120]})",
                scheduler,
            ) from exc
        with client:
            yield client
        return
    with (
        dask.config.set(_WORKER_ENVIRON),
        LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,  # the work is numpy + GDAL: processes, not threads, scale
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # None still binds :8787; 0 picks a free port
            silence_logs=logging.ERROR,
            memory_limit=settings.memory_limit,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def completed(client: Client, futures: Iterable[Future]) -> Iterator[Future]:
    """Yield ``futures`` as they finish (successfully or not)."""
    from distributed import as_completed

    # The client is not the default one, so as_completed needs its event loop.
    yield from as_completed(futures, loop=client.loop)
