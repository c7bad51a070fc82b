"""Write-then-rename, so an interrupted write never leaves a partial output."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kelpseg.errors import KelpsegError


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
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        tmp.replace(target)
    except OSError as exc:
        raise KelpsegError(f"cannot write ({exc.strerror or exc})", target) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
