"""Write-then-rename, so an interrupted write never leaves a partial output."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kelpseg.errors import KelpsegError


def _temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")


#: What :func:`atomic_path` names its temporary files: ``.<name>.<8 hex digits>.tmp``.
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> int:
    """Delete the temporary files a killed writer left in ``folder``; return how many.

    Only names of :func:`atomic_path`'s pattern are touched. Call it when a resumable command
    starts, before it writes (never while another process writes to the same folder).
    """
    root = Path(folder)
    if not root.is_dir():
        return 0
    stale = [p for p in root.iterdir() if p.is_file() and _TEMPORARY.match(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same folder so the final ``os.replace`` is atomic on
    POSIX. On any exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KelpsegError(f"cannot create output folder ({exc.strerror})", target.parent) from exc
    if not os.access(target.parent, os.W_OK):
        raise KelpsegError("output folder is not writable", target.parent)
    tmp = _temporary_name(target)
    try:
        yield tmp
        tmp.replace(target)
    except OSError as exc:
        raise KelpsegError(f"cannot write ({exc.strerror or exc})", target) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
