"""Study storages: URLs, errors that name the fault, hidden passwords, the slot lock."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.tune.storage import default_storage_url, open_storage, safe_url
from tests.tune.conftest import fork_context


@pytest.mark.parametrize(
    ("url", "kind"),
    [("{d}/plain.db", "sqlite"), ("sqlite:///{d}/a/b/url.db", "sqlite"), ("journal:{d}/j/x.log",
                                                                           "journal")],
)  # fmt: skip
def test_urls_open_the_right_storage_and_create_its_folder(
    tmp_path: Path, url: str, kind: str
) -> None:
    opened = open_storage(url.format(d=tmp_path))
    assert opened.kind == kind
    optuna.create_study(storage=opened.storage, study_name="s")
    assert optuna.get_all_study_names(opened.storage) == ["s"]
    assert opened.lock_file is not None and opened.lock_file.parent.is_dir()


def test_the_default_storage_is_an_absolute_sqlite_file_in_the_study_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_storage_url("runs/x") == f"sqlite:///{tmp_path}/runs/x/optuna.db"


def test_bad_urls_and_missing_drivers_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="no database driver.*psycopg2-binary") as info:
        open_storage("postgresql://kelp:s3cret@db.example/optuna")
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(KelpsegError, match="cannot open the study storage"):
        open_storage("nosuchdialect://host/db")
    with pytest.raises(KelpsegError, match="heartbeat"):
        open_storage(str(tmp_path / "x.db"), heartbeat_interval=0)


def test_passwords_never_reach_the_printed_url() -> None:
    assert safe_url("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert safe_url("journal:/nfs/study.log") == "journal:/nfs/study.log"


def _hold_lock(base: str, folder: str) -> None:
    from kelpseg.tune.storage import SlotLock

    with SlotLock(Path(base)):
        Path(folder, "held").touch()
        time.sleep(0.5)
        Path(folder, "letting-go").touch()  # written while still holding the lock


def test_the_slot_lock_excludes_other_processes(tmp_path: Path) -> None:
    from kelpseg.tune.storage import SlotLock

    holder = fork_context().Process(target=_hold_lock, args=(str(tmp_path / "db"), str(tmp_path)))
    holder.start()
    while not (tmp_path / "held").exists():
        time.sleep(0.01)
    with SlotLock(tmp_path / "db"):
        # Getting the lock means the other process had finished its critical section.
        assert (tmp_path / "letting-go").exists()
    holder.join()
    assert holder.exitcode == 0
    lock = SlotLock(tmp_path / "db")
    lock.acquire()
    lock.release()
    lock.release()  # a second release is harmless
