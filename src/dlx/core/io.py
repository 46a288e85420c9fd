"""Atomic file writes: a temp file in the same folder, fsync, then rename.

A run killed at any moment leaves either the old file or the new one, never half of one.
A write that fails (disk full, file-size limit, read-only folder) removes its temp file,
leaves the old file as it was and raises a WriteError: one line saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from dlx.core.errors import cannot_write


def _os_error(err: BaseException | None) -> OSError | None:
    """The OSError behind `err`, if any. torch.save reports a failed write as a RuntimeError
    ("unexpected pos ...") raised while handling the file's OSError: follow the chain."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _atomic(
    path: Path,
    write: Callable[[IO[bytes]], None],
    before_rename: Callable[[], None] | None = None,
) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The writer's pid in the name: a later run can tell a dead writer's leftover
        # (remove_stale_temps) from a live one's file in progress.
        prefix = f".{path.name}.{os.getpid()}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise cannot_write(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):  # a folder turned read-only keeps it; nothing to do
            Path(tmp).unlink(missing_ok=True)
        cause = _os_error(err)
        if cause is None:
            raise
        raise cannot_write(path, cause) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj: Any, path: Path, before_rename: Callable[[], None] | None = None) -> None:
    """torch.save `obj` to `path` atomically."""
    import torch

    _atomic(path, lambda f: torch.save(obj, f), before_rename)


def atomic_write_text(text: str, path: Path) -> None:
    _atomic(path, lambda f: f.write(text.encode()))


def atomic_write_bytes(data: bytes, path: Path) -> None:
    _atomic(path, lambda f: f.write(data))


def write_json(obj: Any, path: Path) -> None:
    atomic_write_text(json.dumps(obj, indent=2) + "\n", path)


def save_npz(arrays: dict[str, Any], path: Path) -> None:
    """numpy arrays to an .npz file atomically (plain arrays: loads with allow_pickle=False)."""
    import numpy as np

    _atomic(path, lambda f: np.savez(f, **arrays))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp files of writes whose process is gone (a kill mid-write leaves one;
    a checkpoint's is the size of the checkpoint, a cache's of the data set)."""
    removed = []
    try:
        candidates = list(Path(folder).glob(".*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        parts = tmp.name.rsplit(".", 3)  # .<name>.<pid>.<random>.tmp
        if len(parts) < 4 or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def check_writable(path: Path) -> None:
    """Fail early, in one line, when a run dir cannot be created or written.

    It is really tried: the folder is made (as Hydra would next) and a file opened in it.
    Asking os.access is not enough: as root it says yes to /proc.
    """
    from dlx.core.errors import ConfigError

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        raise ConfigError(
            f"cannot write the run dir {path}: {probe} is not a writable folder "
            f"({err.strerror or err}); set hydra.run.dir (or DLX_OUTPUT_DIR) to a writable place"
        ) from None


def is_main_process() -> bool:
    """Whether this process writes the run's files: the only one, or rank 0 of a group.

    Torch-free: a process group exists only once torch.distributed is imported; before
    that, torchrun's RANK says which process this is."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def why_unloadable(err: Exception) -> tuple[str, str]:
    """Why `torch.load(weights_only=True)` refused a file, as (kind, detail):

    - ("objects", "posix.system"): it pickles Python objects; weights_only refused the first
      global it did not know, so nothing in it ran;
    - ("corrupt", "failed finding central directory"): truncated or damaged;
    - ("foreign", ""): not a torch file at all.
    """
    import pickle
    import re
    import zipfile

    text = str(err)
    found = re.search(r"GLOBAL (\S+)", text)
    if isinstance(err, pickle.UnpicklingError) and found:
        return "objects", found.group(1)
    if isinstance(err, (EOFError, zipfile.BadZipFile)) or "zip archive" in text:
        first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else ""
        return "corrupt", first.removeprefix("PytorchStreamReader ") or "unexpected end"
    return "foreign", ""


def read_npz(path: Path) -> dict[str, Any]:
    """Every array of an .npz file written by `save_npz`, read without unpickling anything.

    A file holding Python objects (an object array, or a pickle under an .npz name) or a
    damaged one raises DataError naming it: nothing in it runs.
    """
    import zipfile

    import numpy as np

    from dlx.core.errors import DataError

    try:
        with np.load(path, allow_pickle=False) as saved:
            return {name: saved[name] for name in saved.files}
    except ValueError as err:
        if "pickle" in str(err):  # numpy refuses to unpickle with allow_pickle=False
            raise DataError(
                f"{path} holds pickled Python objects, not plain arrays; refused without "
                "loading them (delete it, or train the run again)"
            ) from None
        raise DataError(f"{path} is not a readable .npz file ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{path} is not a readable .npz file ({err})") from None
