"""Safe extraction of downloaded tar archives, all or nothing.

An archive from the network is untrusted: a member named `../x` or `/etc/x`, or a link
pointing outside, must not write outside the target folder. Members are checked up front
(so the refusal names the member), then extracted with tarfile's `filter="data"` as a
second guard, into a temporary folder that is renamed into place only once extraction
succeeded: a truncated archive leaves nothing half-written behind.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from dlx.core.errors import DataError


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DataError(f"{archive}: member {member.name!r} escapes the target folder; refused")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = name.parent if member.issym() else PurePosixPath()
        if target.is_absolute() or ".." in (base / target).parts:
            raise DataError(
                f"{archive}: link {member.name!r} -> {member.linkname!r} escapes the target "
                "folder; refused"
            )
    elif not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: member {member.name!r} is not a file or folder; refused")


def extract_tar(archive: Path, dest: Path, top: str) -> Path:
    """Extract `archive` (tar, tar.gz) whose content lives under `top/` into `dest/top`.

    Returns `dest / top`. Raises DataError for a corrupt archive, an unsafe member or an
    archive without `top/`.
    """
    final = dest / top
    try:
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{top}.", suffix=".partial", dir=dest))
    except OSError as err:
        raise DataError(f"cannot extract {archive.name} into {dest} ({err})") from None
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()  # reads the whole index: a truncated file fails here
            for member in members:
                _check_member(member, archive)
            tar.extractall(tmp, members=members, filter="data")
        if not (tmp / top).is_dir():
            raise DataError(f"{archive} holds no {top}/ folder; is it the right archive?")
        if final.exists():  # an incomplete earlier copy: replace it
            shutil.rmtree(final)
        os.replace(tmp / top, final)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(
            f"{archive} is not a readable archive ({type(err).__name__}: {err}); "
            "delete it and download it again"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
