"""Errors for bad input: each message names the config key or file at fault and says what to do."""

from __future__ import annotations

import errno
import re

# A DataLoader worker's exception reaches the main process as the same class built from one text: "Caught X in
# DataLoader worker process N.\nOriginal Traceback ...\nzfrepro.errors.X: <message>". Only the message is kept.
_WORKER_TRACEBACK = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback", re.S)


class ZFError(Exception):
    """Base class; the command line prints these as one clean line instead of a traceback."""

    def __init__(self, message: str = "", *args: object) -> None:
        if isinstance(message, str) and _WORKER_TRACEBACK.match(message):
            last = message.rstrip().splitlines()[-1]
            message = last.split(": ", 1)[1] if last.startswith(f"{__name__}.") and ": " in last else last
        super().__init__(message, *args)


class ConfigError(ZFError):
    """A config value is missing, malformed or inconsistent."""


class DataError(ZFError):
    """A dataset path, layout or file is missing or unusable."""


class TrainingError(ZFError):
    """Training cannot go on (for example the loss became NaN)."""


class DiskFullError(ZFError):
    """A result could not be written for want of space; what was finished before is intact."""


def disk_full(err: BaseException) -> bool:
    """Whether `err`, or an error it was raised from or during (torch.save wraps the OSError of a failed write in
    a RuntimeError of its own), is 'No space left on device' (or a quota exceeded)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        err = err.__cause__ or err.__context__
    return False
