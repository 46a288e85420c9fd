"""The data contract: a Spec, and train/val/test splits held as tensors in memory.

Every chapter data set fits in memory (CIFAR-10 is 150 MB as uint8), so splits are plain
tensors moved once to the training device and batched by index; images stay uint8 and are
turned into floats one batch at a time (`Data.scale`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path

import torch

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
        return {k: s for k, s in (("train", self.train), ("val", self.val), ("test", self.test))
                if s is not None}


class Dataset(ABC):
    """Base for in-memory data sets.

    Subclasses define `spec` (cheap: no file is read, so `dlx info` works without data)
    and `read()` returning the (train, test) splits; the base applies the options every
    data set shares: `val_split` (the last fraction of train, like Keras'
    `validation_split`) and `limit` (first N samples of each split, for smoke runs).
    """

    name: str = "dataset"
    scale: float | None = 1.0

    def __init__(
        self,
        val_split: float = 0.0,
        limit: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if not 0.0 <= val_split < 1.0:
            raise ConfigError(f"dataset.val_split={val_split} must be in [0, 1)")
        if limit is not None and limit < 1:
            raise ConfigError(f"dataset.limit={limit} must be a positive number of samples")
        self.val_split = float(val_split)
        self.limit = limit
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None

    @property
    @abstractmethod
    def spec(self) -> Spec: ...

    @abstractmethod
    def read(self) -> tuple[Split, Split | None]:
        """Return the full (train, test) splits as CPU tensors."""

    def load(self) -> Data:
        train, test = self.read()
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
            spec=self.spec,
            train=train.head(lim),
            val=None if val is None else val.head(lim),
            test=None if test is None else test.head(lim),
            scale=self.scale,
        )
