"""The one error type for faults a user can fix (bad input, bad config, missing files)."""

from __future__ import annotations

from os import PathLike


class KelpsegError(Exception):
    """A user-facing fault: the CLI prints it as one line and exits with code 2.

    Args:
        message: what is wrong, in one line.
        path: the file, folder or config key the fault is about (printed first).
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MissingExtraError(KelpsegError):
    """A command needs an optional dependency group that is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this needs the '{extra}' extra (missing module '{module}'): "
            f"pip install 'kelpseg[{extra}]'"
        )
