"""The data contract between data sets, models and the engine.

A data set gives a `Data`: its `Spec` (what a model needs to know, without the data) and
train/val/test splits of one of two kinds:

- `Split`: every sample in memory as one tensor (uint8 pixels, int64 token ids), batched by
  index and turned into floats one batch at a time (`to_input`). Every chapter data set
  fits (CIFAR-10 is 150 MB as uint8); it moves once to the training device.
- `StreamSplit`: samples read one by one from a map-style `Samples` source (an image
  folder decoded on the fly) through a DataLoader, for data past memory. Its labels are
  known up front (class counts, stratified samples, figures need them without decoding).

Both select samples with `subset(index)` and hand over a few as a `Split` with `take`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch


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
    """Samples in memory: inputs `x` as stored, one label (or target) per sample in `y`."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))

    def subset(self, index: torch.Tensor | slice) -> Split:
        return Split(self.x[index], self.y[index])

    def take(self, index: torch.Tensor | slice) -> Split:
        return self.subset(index)


class Samples(Protocol):
    """A map-style source of one sample's input, as stored (e.g. uint8 CHW pixels)."""

    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> torch.Tensor: ...


@dataclass
class StreamSplit:
    """Samples read on demand: `samples[index[i]]` is the i-th input, `y[i]` its label.

    `augment`, for training only, maps (input, torch.Generator) to an input; the engine
    seeds the generator per sample and epoch, so an augmented epoch is the same however many
    workers read it and wherever a run resumes.
    """

    samples: Samples
    y: torch.Tensor
    index: torch.Tensor | None = None
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = torch.arange(len(self.y))
        if len(self.index) != len(self.y):
            raise ValueError(f"{len(self.index)} samples but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> StreamSplit:
        return self  # read batch by batch; the loader moves each batch

    def subset(self, index: torch.Tensor | slice) -> StreamSplit:
        assert self.index is not None
        return replace(self, y=self.y[index], index=self.index[index])

    def read(self, i: int) -> torch.Tensor:
        """The i-th sample's input, as stored."""
        assert self.index is not None
        return self.samples[int(self.index[i])]

    def take(self, index: torch.Tensor | slice) -> Split:
        """Those samples decoded now, as an in-memory Split (for figures and warm-ups)."""
        positions = torch.arange(len(self))[index]
        x = [self.read(int(i)) for i in positions]
        y = self.y[positions]
        if not x:
            return Split(torch.empty((0,), dtype=torch.uint8), y)
        return Split(torch.stack(x), y)


AnySplit = Split | StreamSplit


@dataclass
class Data:
    spec: Spec
    train: AnySplit
    val: AnySplit | None = None
    test: AnySplit | None = None
    # Model input = x.float() * scale, per batch: uint8 pixels stay 4x smaller in memory.
    # None: x goes in as stored (token ids).
    scale: float | None = 1.0
    # How a file becomes a stored sample, as plain values (the data set's `preprocessing()`;
    # see dlx/core/preprocessing.py): saved with the run for `dlx predict`.
    preprocessing: dict[str, Any] | None = None

    def to(self, device: torch.device | str) -> Data:
        move = lambda s: None if s is None else s.to(device)  # noqa: E731
        return replace(self, train=move(self.train), val=move(self.val), test=move(self.test))

    def splits(self) -> dict[str, AnySplit]:
        return {
            k: s
            for k, s in (("train", self.train), ("val", self.val), ("test", self.test))
            if s is not None
        }


def to_input(x: torch.Tensor, scale: float | None) -> torch.Tensor:
    """Stored samples -> model input: integer pixels become scaled floats, per batch."""
    if scale is None:  # token ids and other integer inputs go in as they are
        return x
    if x.is_floating_point():
        return x if scale == 1.0 else x * scale
    return x.to(torch.float32).mul_(scale)  # a fresh tensor: scaling in place is safe


def example_input(spec: Spec, batch: int = 1) -> torch.Tensor:
    """A batch a model built for `spec` accepts (summaries, graphs, exports)."""
    if spec.vocab_size is not None:  # token ids
        return torch.ones((batch, *spec.input_shape), dtype=torch.long)
    return torch.zeros((batch, *spec.input_shape))
