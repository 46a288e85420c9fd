"""The data contract: a Spec, and train/val/test splits held as tensors in memory.

Every chapter data set fits in memory (CIFAR-10 is 150 MB as uint8), so splits are plain
tensors moved once to the training device and batched by index; images stay uint8 and are
turned into floats one batch at a time (`Data.scale`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from dlx.config import check_split_options
from dlx.data.cache import Layout, cache_path, cached
from dlx.errors import ConfigError


@dataclass(frozen=True)
class Spec:
    """What a model needs to know about its data, without loading it."""

    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...] = ()
    vocab_size: int | None = None

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))

    def head(self, n: int | None) -> Split:
        return self if n is None or n >= len(self) else Split(self.x[:n], self.y[:n])


@dataclass
class Data:
    spec: Spec
    train: Split
    val: Split | None = None
    test: Split | None = None
    # Model input = x.float() * scale, per batch: uint8 pixels stay 4x smaller in memory.
    # None: x goes in as stored (token ids).
    scale: float | None = 1.0

    def to(self, device: torch.device | str) -> Data:
        move = lambda s: None if s is None else s.to(device)  # noqa: E731
        return replace(self, train=move(self.train), val=move(self.val), test=move(self.test))

    def splits(self) -> dict[str, Split]:
        return {
            k: s
            for k, s in (("train", self.train), ("val", self.val), ("test", self.test))
            if s is not None
        }


class Dataset(ABC):
    """Base for in-memory data sets.

    Subclasses define `source_spec` (cheap: no file is read where possible, so `dlx info`
    works without data) and `read()` returning the (train, test) splits; the base applies
    the options every data set shares, in this order: `classes` (keep those classes,
    relabelled 0..k-1 in the order given), `val_split` (the last fraction of train, like
    Keras' `validation_split`) and `limit` (first N samples of each split, for smoke runs).
    """

    name: str = "dataset"
    scale: float | None = 1.0

    def __init__(
        self,
        val_split: float = 0.0,
        limit: int | None = None,
        cache_dir: str | Path | None = None,
        classes: Sequence[int] | None = None,
    ) -> None:
        check_split_options(val_split, limit)
        self.val_split = float(val_split)
        self.limit = limit
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.classes = None if classes is None else [int(c) for c in classes]
        if self.classes is not None and (
            not self.classes or len(set(self.classes)) != len(self.classes)
        ):
            raise ConfigError(f"dataset.classes={list(classes or [])} must list distinct class ids")
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

    @abstractmethod
    def read(self) -> tuple[Split, Split | None]:
        """Return the full (train, test) splits as CPU tensors."""

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

    def select(self, split: Split | None) -> Split | None:
        """Keep the samples of `self.classes`, relabelled 0..k-1 in the order given."""
        if split is None or self.classes is None:
            return split
        relabel = torch.full((self.source_spec.num_classes,), -1, dtype=torch.long)
        relabel[torch.tensor(self.classes)] = torch.arange(len(self.classes))
        y = split.y.long()
        inside = (y >= 0) & (y < len(relabel))
        new = torch.where(inside, relabel[y.clamp(0, len(relabel) - 1)], -1)
        keep = new >= 0
        return Split(split.x[keep], new[keep])

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
            train, val = Split(train.x[:cut], train.y[:cut]), Split(train.x[cut:], train.y[cut:])
        lim = self.limit
        return Data(
            spec=spec,
            train=train.head(lim),
            val=None if val is None else val.head(lim),
            test=None if test is None else test.head(lim),
            scale=self.scale,
        )
