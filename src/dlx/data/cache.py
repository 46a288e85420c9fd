"""A tensor cache for decoded data sets, keyed by everything that changes the result.

Data roots may be read-only (a shared data folder, a CI mount), so caches live in their own
writable folder (`paths.cache_dir`, `DLX_CACHE_DIR`). Files are written to a temp name and
renamed, so a killed run never leaves a half-written cache, and they are read back with
`weights_only=True`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dlx.io import atomic_save

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout of cached tensors changes


def file_fingerprint(path: Path) -> list[Any]:
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


def cache_key(name: str, settings: dict[str, Any]) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "name": name, **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(cache_dir: Path, name: str, settings: dict[str, Any]) -> Path:
    """The file that holds `name`'s tensors for these settings."""
    return cache_dir / f"{name}-{cache_key(name, settings)}.pt"


def cached(
    cache_dir: Path | None,
    name: str,
    settings: dict[str, Any],
    build: Callable[[], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Return build()'s tensors, from `cache_dir` when a matching entry exists."""
    if cache_dir is None:
        return build()
    path = cache_path(cache_dir, name, settings)
    if path.exists():
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except Exception as err:  # a corrupt entry is rebuilt, not fatal
            log.warning("ignoring unreadable cache %s (%s)", path, err)
    tensors = build()
    try:
        atomic_save(tensors, path)
    except OSError as err:  # caching is an optimisation: never fail a run over it
        log.warning("could not write cache %s (%s); continuing without it", path, err)
    return tensors
