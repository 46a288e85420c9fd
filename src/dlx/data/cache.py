"""A tensor cache for decoded data sets, keyed by everything that changes the result.

Data roots may be read-only (a shared data folder, a CI mount), so caches live in their own
writable folder (`paths.cache_dir`, `DLX_CACHE_DIR`). Files are written to a temp name and
renamed, so a killed run never leaves a half-written cache, and they are read back with
`weights_only=True`. An entry is checked against the `Layout` its data set expects before
use: one that fails to load, or was tampered with or written by another version (keys,
dtypes, shapes, lengths, label range), is rebuilt from the source data, with one warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlx.core.errors import DataError, DlxError, WriteError
from dlx.core.io import atomic_save, remove_stale_temps, why_unloadable

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout of cached tensors changes

# A dimension: an exact size, a name all tensors sharing it must agree on ("train": the
# number of training samples), or None for any size.
Dim = int | str | None


@dataclass(frozen=True)
class Field:
    dtype: torch.dtype
    shape: tuple[Dim, ...]
    below: int | None = None  # values must lie in 0..below-1 (class ids, token ids)


@dataclass(frozen=True)
class Layout:
    """What a usable cache entry holds: these keys (all of `optional`, or none of them)."""

    fields: dict[str, Field]
    optional: tuple[str, ...] = ()

    def problem(self, entry: Any) -> str | None:
        """Why `entry` does not fit (one short clause), or None when it does."""
        if not isinstance(entry, dict):
            return f"it holds a {type(entry).__name__}, not a dict of tensors"
        extra = sorted(str(k) for k in entry if k not in self.fields)
        if extra:
            return f"unexpected keys {', '.join(extra)}"
        present = [k for k in self.optional if k in entry]
        required = [k for k in self.fields if k not in self.optional]
        missing = [k for k in required if k not in entry]
        if present:
            missing += [k for k in self.optional if k not in entry]
        if missing:
            return f"missing keys {', '.join(missing)}"
        sizes: dict[str, int] = {}
        for key, value in entry.items():
            why = _field_problem(key, value, self.fields[key], sizes)
            if why:
                return why
        return None


def _field_problem(key: str, value: Any, spec: Field, sizes: dict[str, int]) -> str | None:
    if not isinstance(value, torch.Tensor):
        return f"{key} is a {type(value).__name__}, not a tensor"
    if value.dtype != spec.dtype:
        return f"{key} is {value.dtype}, not {spec.dtype}"
    shape = tuple(value.shape)
    if len(shape) != len(spec.shape) or any(
        isinstance(want, int) and got != want for got, want in zip(shape, spec.shape, strict=True)
    ):
        expected = [d if isinstance(d, int) else "*" for d in spec.shape]
        return f"{key} has shape {list(shape)}, expected {expected}"
    for got, want in zip(shape, spec.shape, strict=True):
        if isinstance(want, str) and sizes.setdefault(want, got) != got:
            return f"{key} has {got} samples but the other {want} tensors {sizes[want]}"
    if spec.below is not None and value.numel():
        lo, hi = int(value.min()), int(value.max())
        if lo < 0 or hi >= spec.below:
            return f"{key} holds values {lo}..{hi}, outside 0..{spec.below - 1}"
    return None


def split_fields(
    splits: tuple[str, ...], x: Field, num_classes: int, y_dtype: torch.dtype = torch.int64
) -> dict[str, Field]:
    """`<split>_x` (x's dtype and per-sample shape) and `<split>_y` (class ids) per split."""
    out: dict[str, Field] = {}
    for split in splits:
        out[f"{split}_x"] = Field(x.dtype, (split, *x.shape), x.below)
        out[f"{split}_y"] = Field(y_dtype, (split,), num_classes)
    return out


def file_fingerprint(path: Path) -> list[Any]:
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


def cache_key(name: str, settings: dict[str, Any]) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "name": name, **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(cache_dir: Path, name: str, settings: dict[str, Any]) -> Path:
    """The file that holds `name`'s tensors for these settings."""
    return cache_dir / f"{name}-{cache_key(name, settings)}.pt"


def read_entry(path: Path, layout: Layout | None) -> tuple[dict[str, torch.Tensor] | None, str]:
    """(the entry, "") when `path` holds a usable one, else (None, why not)."""
    try:
        entry = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises many types for bad files; all mean "rebuild"
        kind, detail = why_unloadable(err)
        if kind == "objects":  # weights_only refused it: nothing in the file ran
            return None, f"it holds Python objects ({detail}), refused without running them"
        if kind == "corrupt":
            return None, f"truncated or corrupt ({detail})"
        return None, "it does not load as a tensor file"
    why = layout.problem(entry) if layout is not None else _loose_problem(entry)
    return (None, why) if why else (entry, "")


def _loose_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in entry.items()
    ):
        return "it is not a dict of tensors"
    return None


def cached(
    cache_dir: Path | None,
    name: str,
    settings: dict[str, Any],
    build: Callable[[], dict[str, torch.Tensor]],
    layout: Layout | None = None,
) -> tuple[dict[str, torch.Tensor], bool]:
    """(build()'s tensors, whether they came from `cache_dir`): from the cache when it holds
    a usable entry for these settings, else built (and written there)."""
    if cache_dir is None:
        return build(), False
    path = cache_path(cache_dir, name, settings)
    why = ""
    if path.exists():
        entry, why = read_entry(path, layout)
        if entry is not None:
            return entry, True
    try:
        tensors = build()
    except DlxError as err:
        if not why:
            raise
        raise DataError(
            f"{err} (and the cache {path} is unusable: {why}; delete it once the source data reads)"
        ) from None
    if why:  # said once the rebuild worked: a failed one is reported in one line above
        log.warning("cache %s was unusable (%s); rebuilt it from the source data", path, why)
    remove_stale_temps(cache_dir)  # a killed writer's leftover (as large as an entry)
    try:
        atomic_save(tensors, path)
    except (OSError, WriteError) as err:  # caching is an optimisation: never fail a run
        again = f"; delete {path}, or every run rebuilds it" if why else ""
        log.warning("could not write cache %s (%s); continuing without it%s", path, err, again)
    return tensors, False
