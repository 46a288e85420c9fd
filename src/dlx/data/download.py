"""Downloads through torchvision's utilities, verified by md5, with one-line failures.

torchvision is imported only here, when a file is really missing: importing it costs
seconds, and most runs find their data on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from dlx.core.errors import DataError

log = logging.getLogger(__name__)


def download_files(
    files: dict[str, str | None], mirrors: Sequence[str], folder: Path, what: str
) -> None:
    """Fetch each `name -> md5` from the first mirror that serves it into `folder`."""
    from torchvision.datasets.utils import check_integrity, download_url

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create {folder} to download {what} into ({err})") from None
    for name, md5 in files.items():
        errors = []
        for mirror in mirrors:
            log.info("downloading %s%s", mirror, name)
            try:
                # md5 is checked below, so a mismatch is reported as such.
                download_url(mirror + name, str(folder), filename=name)
            except Exception as err:  # network errors come in many types
                (folder / name).unlink(missing_ok=True)
                errors.append(f"{mirror}: {type(err).__name__}: {err}".splitlines()[0])
                continue
            if md5 is None or check_integrity(str(folder / name), md5):
                break
            (folder / name).unlink(missing_ok=True)
            errors.append(f"{mirror}: checksum mismatch")
        else:
            raise DataError(
                f"could not download {what} file {name} ({'; '.join(errors)}); "
                f"without network, copy the files into {folder} or set DLX_DATA_DIR"
            )
