"""Where a study lives: an SQLite file, any SQLAlchemy database URL, or an Optuna journal file.

Several workers share a study through its storage. Two things are added on top of Optuna:

- a *slot lock* (file-based storages only) so that checking "are N trials started?" and
  starting the next trial is one atomic step: workers stop at exactly N trials in total;
- a heartbeat for journal files (Optuna's own heartbeat covers database storages only): a
  trial whose worker stopped beating for ``grace_period`` seconds is marked FAIL by the next
  worker that looks, so a killed machine does not leave a trial RUNNING forever.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, TrialState

from kelpseg.errors import KelpsegError

StaleCallback = Callable[[optuna.Study, FrozenTrial], None]
StorageKind = Literal["sqlite", "rdb", "journal"]
JOURNAL_PREFIX = "journal:"
HEARTBEAT_ATTR = "kelpseg:heartbeat"
# File locks left by a worker killed while holding them are broken after this long.
_LOCK_GRACE_S = 30


@dataclass
class StudyStorage:
    """An opened storage and how to coordinate workers on it.

    Attributes:
        storage: the Optuna storage.
        url: the URL as given, password hidden (safe to print and log).
        kind: ``sqlite``, ``rdb`` (a database server) or ``journal``.
        lock_file: base path of the slot lock (file-based storages), else None.
        heartbeat_interval: seconds between a running trial's heartbeats.
        grace_period: seconds without a heartbeat after which a trial is failed.
        on_stale: called with each trial this worker marks failed.
    """

    storage: BaseStorage
    url: str
    kind: StorageKind
    lock_file: Path | None
    heartbeat_interval: int
    grace_period: int
    on_stale: StaleCallback | None = None

    def slot_lock(self) -> SlotLock:
        """A lock that makes "count the started trials, start one" atomic across workers."""
        return SlotLock(self.lock_file)

    def heartbeat(self, trial: optuna.Trial) -> contextlib.AbstractContextManager[None]:
        """Beat for ``trial`` while it runs (journal only; Optuna beats for databases)."""
        if self.kind != "journal":
            return contextlib.nullcontext()
        return _journal_heartbeat(self.storage, trial._trial_id, self.heartbeat_interval)

    def fail_stale_trials(self, study: optuna.Study) -> None:
        """Mark RUNNING trials of dead workers FAIL (``on_stale`` is called for each)."""
        if self.kind == "journal":
            _fail_stale_journal_trials(study, self.storage, self.grace_period, self.on_stale)
        else:
            optuna.storages.fail_stale_trials(study)  # calls the storage's stale callback


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    if "://" not in url:
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def default_storage_url(out_dir: str | os.PathLike[str]) -> str:
    """``sqlite:///<out_dir>/optuna.db`` (absolute): the embedded default."""
    return f"sqlite:///{(Path(out_dir) / 'optuna.db').resolve()}"


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = 60,
    grace_period: int | None = None,
    on_stale: StaleCallback | None = None,
) -> StudyStorage:
    """Open a study storage.

    Args:
        url: ``sqlite:///path.db``, a plain ``path.db`` (SQLite), any SQLAlchemy URL
            (``postgresql://user:pw@host/db``, ``mysql+pymysql://...``), or
            ``journal:<path>`` for an Optuna journal file (NFS-safe locking).
        heartbeat_interval: seconds between heartbeats of a running trial.
        grace_period: seconds without a heartbeat before a trial counts as dead (default:
            twice the interval, Optuna's own default).
        on_stale: called for each dead worker's trial this process marks failed.

    Raises:
        KelpsegError: an unusable URL, a missing database driver, or an unreachable database.
    """
    if heartbeat_interval < 1:
        raise KelpsegError("heartbeat interval must be at least 1 second", "heartbeat_interval")
    grace = grace_period or 2 * heartbeat_interval
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url.removeprefix(JOURNAL_PREFIX)).expanduser()
        _make_parent(path, url)
        lock = JournalFileOpenLock(str(path), grace_period=_LOCK_GRACE_S)
        storage: BaseStorage = JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
        return StudyStorage(storage, url, "journal", path, heartbeat_interval, grace, on_stale)
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    kind: StorageKind = "sqlite" if url.startswith("sqlite") else "rdb"
    db_file = _sqlite_file(url) if kind == "sqlite" else None
    if db_file is not None:
        _make_parent(db_file, url)
    # Workers starting together would each create the schema of a new SQLite file; one does.
    with SlotLock(db_file):
        rdb = _rdb_storage(url, heartbeat_interval, grace, on_stale, sqlite=kind == "sqlite")
    return StudyStorage(rdb, safe_url(url), kind, db_file, heartbeat_interval, grace, on_stale)


def _rdb_storage(
    url: str, interval: int, grace: int, on_stale: StaleCallback | None, *, sqlite: bool
) -> RDBStorage:
    # Workers on one SQLite file wait for each other's writes instead of failing at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if sqlite else None
    try:
        with _quiet_experimental():
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=on_stale,
            )
    except ImportError as exc:
        cause = exc.__cause__ or exc
        raise KelpsegError(
            f"no database driver for this URL ({cause}); install it, e.g. psycopg2-binary "
            "for postgresql://, PyMySQL for mysql+pymysql://",
            safe_url(url),
        ) from exc
    except Exception as exc:  # SQLAlchemy's errors: bad URL, unreachable or locked database
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KelpsegError(f"cannot open the study storage ({first})", safe_url(url)) from exc


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _sqlite_file(url: str) -> Path | None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return None if not path or path == ":memory:" else Path(path)


def _make_parent(path: Path, url: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KelpsegError(f"cannot create the storage folder ({exc.strerror})", url) from exc


class SlotLock:
    """A cross-process file lock (NFS-safe), or nothing for database servers.

    :meth:`release` may be called more than once: a trial releases the lock as soon as it has
    been created, and the worker loop releases it again in case the trial never started.
    """

    def __init__(self, base: Path | None) -> None:
        self._lock = (
            None
            if base is None
            else JournalFileOpenLock(f"{base}.kelpseg-slots", grace_period=_LOCK_GRACE_S)
        )
        self._held = False

    def acquire(self) -> None:
        """Block until this process holds the lock."""
        if self._lock is not None:
            self._lock.acquire()
        self._held = True

    def release(self) -> None:
        """Release the lock if held (a lock broken by another worker is simply dropped)."""
        if not self._held:
            return
        self._held = False
        if self._lock is not None:
            with contextlib.suppress(RuntimeError):
                self._lock.release()

    def __enter__(self) -> SlotLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def _journal_heartbeat(storage: BaseStorage, trial_id: int, interval: int) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while True:
            # A storage hiccup must not kill the trial: the next beat retries.
            with contextlib.suppress(Exception):
                storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"kelpseg-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _fail_stale_journal_trials(
    study: optuna.Study, storage: BaseStorage, grace: int, on_stale: StaleCallback | None
) -> None:
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = trial.system_attrs.get(HEARTBEAT_ATTR)
        if last is None and trial.datetime_start is not None:
            last = trial.datetime_start.timestamp()
        if last is None or now - float(last) <= grace:
            continue
        try:
            changed = storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            changed = False  # another worker got there first
        if changed and on_stale is not None:
            on_stale(study, storage.get_trial(trial._trial_id))
