"""User-facing errors: one clear line, a non-zero exit, no traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class DlxError(Exception):
    """A problem the user can fix: bad option, missing data, unusable file.

    The message is printed as one line; it says what is wrong and how to fix it.
    """

    exit_code = 2


class ConfigError(DlxError):
    """A configuration value that composes but cannot be used."""


class DataError(DlxError):
    """Data files that are missing, corrupt, or cannot be fetched."""


class Interrupted(KeyboardInterrupt):
    """A signal that ends the command: it exits with 128 + the signal's number, as a shell
    reports a process killed by it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def interrupted(err: KeyboardInterrupt) -> None:
    """Exit on Ctrl-C (SIGINT) or an Interrupted signal, in one line."""
    import signal

    signum = getattr(err, "signum", signal.SIGINT)
    fail(f"interrupted by {signal.Signals(signum).name}", 128 + signum)


class WriteError(DlxError):
    """A file that could not be written: disk full, file-size limit, read-only folder.

    A fault of the machine, not of the command line: exit code 1.
    """

    exit_code = 1


def fail(message: str, code: int = 2) -> None:
    """Print `error: message` on stderr and exit; used at the CLI boundary only."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


# What a failed write means to the user (shared by dlx.core.io's writers and the CLI boundary).
# errno values that mean "this disk or folder takes no more writes", whatever the file.
WRITE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

_FIXES = {
    errno.ENOSPC: "free space on that disk",
    errno.EDQUOT: "free space within your disk quota",
    errno.EFBIG: "raise the file-size limit (ulimit -f)",
    errno.EROFS: "make that file system writable",
    errno.EACCES: "make that folder writable",
    errno.EPERM: "make that folder writable",
}


def cannot_write(path: str | Path, err: OSError) -> WriteError:
    """The one-line error for a failed write of `path`."""
    fix = _FIXES.get(err.errno or 0, "check that folder and its disk")
    reason = err.strerror or str(err)
    return WriteError(
        f"cannot write {path}: {reason}; {fix}, or write the run elsewhere (hydra.run.dir=<dir>)"
    )


def fail_on_write_fault(err: OSError) -> None:
    """A write outside dlx.core.io (Hydra's own files, a logger's library) on a full or
    read-only disk: one line as well. Any other OSError is re-raised."""
    if err.errno not in WRITE_FAULTS:
        raise err
    fail(str(cannot_write(err.filename or "a file of the run", err)), 1)


def reports_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn a DlxError raised by a command into one line on stderr and its exit code (2
    unless the error says otherwise); a write that hit a full or read-only disk too.

    SystemExit passes through Hydra's own error handler, which would otherwise print a
    stack trace for any exception raised inside a task function.
    """

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DlxError as err:
            fail(str(err), err.exit_code)
        except OSError as err:
            fail_on_write_fault(err)
        except KeyboardInterrupt as err:
            interrupted(err)

    return wrapper
