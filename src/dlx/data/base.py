"""The base of every data set: read the real format, then the options all data sets share.

Subclasses define `source_spec` (cheap: no file is read where possible, so `dlx info`
works without data) and `read()` returning the (train, test) splits, in memory (`Split`) or
streamed (`StreamSplit`). The base applies the shared options (`DatasetBase` in
dlx/core/schemas.py holds their defaults and checks), in this order: `classes` (keep those,
relabelled 0..k-1 in the order given), `val_split` (the last fraction of train, like Keras'
`validation_split`) and `limit` (a seeded, stratified sample of N per split, for smoke runs:
the first N of a class-ordered test set would hold one or two classes).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from dlx.core.data import AnySplit, Data, Spec
from dlx.core.errors import ConfigError
from dlx.core.schemas import DatasetBase
from dlx.data.cache import Layout, cache_path, cached

log = logging.getLogger("dlx")

# The sample `limit` takes is fixed by this seed, not the run's: every run of a smoke
# config (any seed, any model) sees the same samples.
LIMIT_SEED = 2017


def check_test_size(test_size: float) -> None:
    """For data sets that hold out their own test split (no published one)."""
    if not 0.0 < test_size < 1.0:
        raise ConfigError(
            f"dataset.test_size={test_size} must be in (0, 1): the fraction held out for test"
        )


class Dataset(ABC):
    name: str = "dataset"
    scale: float | None = 1.0
    # Image data sets: the largest stored pixel value (255; the 8x8 digits: 16). It makes
    # `preprocessing()` say how an image file becomes a stored sample (dlx predict).
    pixel_max: int | None = None

    def __init__(
        self,
        val_split: float = 0.0,
        limit: int | None = None,
        cache_dir: str | Path | None = None,
        classes: Sequence[int] | None = None,
        download: bool = True,  # a data set with nothing to fetch ignores it
    ) -> None:
        if classes is not None:
            bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, int)]
            if bad:
                raise ConfigError(
                    f"dataset.classes={list(classes)}: {bad[0]!r} is not a class id "
                    "(whole numbers, e.g. [0, 1, 2])"
                )
        base = DatasetBase(  # the one place these options are checked
            classes=None if classes is None else list(classes),
            val_split=float(val_split),
            limit=limit,
            cache_dir=None if cache_dir is None else str(cache_dir),
            download=bool(download),
        )
        self.val_split = base.val_split
        self.limit = base.limit
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.classes = base.classes
        self.download = base.download
        # Where `cached()` looked for this data set's tensors (for `dlx data`).
        self.cache_files: list[Path] = []
        self.cache_hit = False

    @property
    @abstractmethod
    def source_spec(self) -> Spec:
        """The Spec of the data as stored, before `classes` selects some of them."""

    @property
    def spec(self) -> Spec:
        spec = self.source_spec
        if self.classes is None:
            return spec
        bad = [c for c in self.classes if not 0 <= c < spec.num_classes]
        if bad:
            raise ConfigError(
                f"dataset.classes={self.classes}: {bad} not in 0..{spec.num_classes - 1} "
                f"({self.name} has {spec.num_classes} classes)"
            )
        names = tuple(spec.class_names[c] for c in self.classes) if spec.class_names else ()
        return replace(spec, num_classes=len(self.classes), class_names=names)

    def preprocessing(self) -> dict[str, Any] | None:
        """How an input file becomes one stored sample, as plain values saved with the run
        (dlx/core/preprocessing.py); called once `read()` has run. None: no file format."""
        if self.pixel_max is None:
            return None
        channels, height, width = self.source_spec.input_shape
        return {"kind": "image", "channels": channels, "height": height, "width": width,
                "max_value": self.pixel_max}  # fmt: skip

    @abstractmethod
    def read(self) -> tuple[AnySplit, AnySplit | None]:
        """Return the full (train, test) splits (tensors on the CPU, or streamed)."""

    def cached(
        self,
        settings: dict[str, Any],
        build: Callable[[], dict[str, torch.Tensor]],
        layout: Layout | None = None,
    ) -> dict[str, torch.Tensor]:
        """`cache.cached` under this data set's name and cache folder, remembering where;
        an entry that does not fit `layout` is rebuilt."""
        if self.cache_dir is not None:
            self.cache_files.append(cache_path(self.cache_dir, self.name, settings))
        tensors, self.cache_hit = cached(self.cache_dir, self.name, settings, build, layout)
        return tensors

    def select(self, split: AnySplit | None) -> AnySplit | None:
        """Keep the samples of `self.classes`, relabelled 0..k-1 in the order given."""
        if split is None or self.classes is None:
            return split
        relabel = torch.full((self.source_spec.num_classes,), -1, dtype=torch.long)
        relabel[torch.tensor(self.classes)] = torch.arange(len(self.classes))
        y = split.y.long()
        inside = (y >= 0) & (y < len(relabel))
        new = torch.where(inside, relabel[y.clamp(0, len(relabel) - 1)], -1)
        keep = torch.nonzero(new >= 0).flatten()
        return replace(split.subset(keep), y=new[keep])

    def load(self) -> Data:
        spec = self.spec  # checks `classes` before any file is read
        train, test = self.read()
        train, test = self.select(train), self.select(test)
        assert train is not None
        val = None
        if self.val_split > 0:
            cut = int(len(train) * (1.0 - self.val_split))
            if cut < 1 or cut >= len(train):
                raise ConfigError(
                    f"dataset.val_split={self.val_split} leaves no train or no val samples "
                    f"out of {len(train)}"
                )
            train, val = train.subset(slice(0, cut)), train.subset(slice(cut, None))
        splits = {"train": train, "val": val, "test": test}
        if self.limit is not None:
            splits = {k: v if v is None else sample(v, self.limit) for k, v in splits.items()}
            warn_missing_classes(splits, spec.num_classes, f"dataset.limit={self.limit}")
        return Data(spec=spec, scale=self.scale, preprocessing=self.preprocessing(), **splits)


def sample(split: AnySplit, n: int) -> AnySplit:
    """A seeded sample of n, stratified by label (each class keeps its share, at least one
    sample while there is room), in the split's own order. Targets that are not class ids
    are sampled at random."""
    if n >= len(split):
        return split
    g = torch.Generator().manual_seed(LIMIT_SEED)
    y = split.y
    if y.is_floating_point() or y.ndim != 1:
        return split.subset(torch.randperm(len(split), generator=g)[:n].sort().values)
    classes, counts = torch.unique(y, return_counts=True)
    # Largest remainders: shares that add up to n exactly.
    exact = counts.double() * n / len(split)
    take = exact.floor().long()
    if n >= len(classes):
        take = take.clamp(min=1)  # a rare class is not dropped while there is room
    rest = n - int(take.sum())
    if rest > 0:
        order = torch.argsort(exact - exact.floor(), descending=True, stable=True)
        take[order[:rest]] += 1
    elif rest < 0:  # the minimum of one overshot: trim the largest classes
        for i in torch.argsort(take, descending=True, stable=True)[:-rest]:
            take[i] -= 1
    picked = []
    for c, k in zip(classes.tolist(), take.tolist(), strict=True):
        members = torch.nonzero(y == c).flatten()
        picked.append(members[torch.randperm(len(members), generator=g)[:k]])
    return split.subset(torch.cat(picked).sort().values)


def warn_missing_classes(splits: dict[str, AnySplit | None], num_classes: int, why: str) -> None:
    for name, split in splits.items():
        if split is None or split.y.is_floating_point() or split.y.ndim != 1:
            continue
        present = torch.unique(split.y).numel()
        if 0 < present < num_classes:
            log.warning(
                "%s: the %s split holds %d of the %d classes (%d samples); its metrics do "
                "not cover the others",
                why,
                name,
                present,
                num_classes,
                len(split),
            )
