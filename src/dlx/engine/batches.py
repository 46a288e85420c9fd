"""Batches: the order of an epoch, the position in it, this process's share, the move to the
device. The loop asks for one epoch at a time, starting where the run state says.

Two kinds behind one interface:
- `TensorBatches`: the split is one tensor in memory (on the training device); a batch is
  an `index_select` of a `randperm` slice, turned into floats there (no DataLoader).
- `StreamBatches`: the split is read sample by sample through a DataLoader (worker
  processes, pinned memory, prefetch), for data past memory.

Both draw the epoch's permutation from their own generator (on the CPU, the same on any
device; a checkpoint stores it), so both resume at the same sample. Under DDP each process
takes every world-th sample of the permutation, `batch_size / world` at a time: exactly its
strided share of each global batch, so the processes together see the single-process batches.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import torch

from dlx.core.data import AnySplit, Split, StreamSplit, to_input
from dlx.engine.group import Dist
from dlx.engine.state import RunState

log = logging.getLogger("dlx")

Batch = tuple[torch.Tensor, torch.Tensor, float]  # (model input, target, loss weight)


class Batches:
    def __init__(
        self,
        split: AnySplit,
        scale: float | None,
        batch_size: int,
        device: torch.device,
        dist: Dist,
        seed: int,
        limit_batches: int | None = None,
    ) -> None:
        self.split, self.scale, self.device, self.dist = split, scale, device, dist
        self.order = torch.Generator().manual_seed(seed)
        self.epoch_start: torch.Tensor | None = None  # the order before this epoch's draw
        self.n = n = len(split)
        self.steps = math.ceil(n / batch_size)
        self.last, self.last_weight = -1, 1.0  # DDP: an unevenly split last batch
        if dist.world > 1:
            self.steps, self.last, self.last_weight = shares(n, batch_size, dist)
        if limit_batches:
            self.steps = min(self.steps, limit_batches)
            self.last = -1 if self.steps * batch_size < n else self.last
        self.batch_size = batch_size // dist.world  # this process's share of each batch

    def permutation(self, state: RunState) -> torch.Tensor:
        """This epoch's sample order (this process's share), drawn again on a mid-epoch
        resume from the generator state saved at the epoch's start."""
        if state.batch == 0:
            self.epoch_start = self.order.get_state()
        else:
            assert self.epoch_start is not None
            self.order.set_state(self.epoch_start)
        perm = torch.randperm(self.n, generator=self.order)
        if self.dist.world > 1:
            perm = perm[self.dist.rank :: self.dist.world].contiguous()
        return perm

    def weight(self, b: int) -> float:
        return self.last_weight if b == self.last else 1.0

    def epoch(self, state: RunState) -> Iterator[Batch]:
        """The rest of this epoch's batches, from batch `state.batch` on."""
        raise NotImplementedError

    def examples(self, sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(input, target) batches of these sizes from the split's start (compile warm-up)."""
        out = []
        for k in sizes:
            part = self.split.take(slice(0, k))
            x = to_input(part.x.to(self.device), self.scale)
            out.append((x, part.y.to(self.device)))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order.get_state(), "epoch_start": self.epoch_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.set_state(state["order"])
        self.epoch_start = state["epoch_start"]


class TensorBatches(Batches):
    def epoch(self, state: RunState) -> Iterator[Batch]:
        perm = self.permutation(state).to(self.device, non_blocking=True)
        split, bs, scale = self.split, self.batch_size, self.scale
        assert isinstance(split, Split)
        for b in range(state.batch, self.steps):
            idx = perm[b * bs : (b + 1) * bs]
            x = to_input(split.x.index_select(0, idx), scale)
            yield x, split.y.index_select(0, idx), self.weight(b)


class StreamBatches(Batches):
    def __init__(self, *args: Any, num_workers: int = 2, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, seed=seed, **kwargs)
        self.num_workers = num_workers
        self.seed = seed

    def epoch(self, state: RunState) -> Iterator[Batch]:
        perm = self.permutation(state)
        bs = self.batch_size
        # Each sample carries the seed of its augmentation: (seed, epoch, sample), the same
        # whichever worker reads it and wherever a run resumed.
        batches = [
            [
                (int(i), augment_seed(self.seed, state.epoch, int(i)))
                for i in perm[b * bs : (b + 1) * bs]
            ]
            for b in range(state.batch, self.steps)
        ]
        for b, (x, y) in enumerate(self._load(batches, train=True), state.batch):
            yield self._to_device(x), y.to(self.device, non_blocking=True), self.weight(b)

    def _load(self, batches: list[list[tuple[int, int]]], train: bool) -> Any:
        from torch.utils.data import DataLoader

        split = self.split
        assert isinstance(split, StreamSplit)
        workers = self.num_workers if len(batches) > 1 else 0
        return DataLoader(
            _Reader(split, train),
            batch_sampler=batches,
            num_workers=workers,
            collate_fn=_stack,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
            # Its own generator: a DataLoader otherwise draws its workers' base seed from the
            # global RNG, which would shift dropout (and break an exact resume).
            generator=torch.Generator(),
        )

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return to_input(x.to(self.device, non_blocking=True), self.scale)

    def evaluation(
        self, lo: int, hi: int, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = [
            [(i, 0) for i in range(s, min(s + batch_size, hi))] for s in range(lo, hi, batch_size)
        ]
        for x, y in self._load(batches, train=False):
            yield self._to_device(x), y.to(self.device, non_blocking=True)


def augment_seed(seed: int, epoch: int, index: int) -> int:
    # A 64-bit mix (splitmix64's constants) of the three: nearby inputs give unrelated seeds.
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (z ^ (z >> 31)) & (2**63 - 1)


class _Reader:
    """Map-style: a sampler item (position, augmentation seed) -> (input, label)."""

    def __init__(self, split: StreamSplit, train: bool) -> None:
        self.split = split
        self.augment = split.augment if train else None

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        i, seed = item
        x = self.split.read(i)
        if self.augment is not None:
            x = self.augment(x, torch.Generator().manual_seed(seed))
        return x, self.split.y[i]


def _stack(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*items, strict=True)
    return torch.stack(xs), torch.stack(ys)


def make_batches(
    split: AnySplit,
    scale: float | None,
    batch_size: int,
    device: torch.device,
    dist: Dist,
    seed: int,
    limit_batches: int | None = None,
    num_workers: int = 2,
) -> Batches:
    """The training batches for a split: in memory, or streamed."""
    if isinstance(split, StreamSplit):
        return StreamBatches(
            split, scale, batch_size, device, dist, seed=seed, limit_batches=limit_batches,
            num_workers=num_workers,
        )  # fmt: skip
    return TensorBatches(split, scale, batch_size, device, dist, seed, limit_batches)


def eval_batches(
    split: AnySplit,
    scale: float | None,
    batch_size: int,
    device: torch.device,
    dist: Dist,
    limit_batches: int | None = None,
    num_workers: int = 2,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A split in order, `batch_size` at a time; under DDP this process's contiguous share."""
    n = len(split)
    if limit_batches:
        n = min(n, limit_batches * batch_size)
    lo, hi = dist.share(n) if dist.world > 1 else (0, n)
    if isinstance(split, StreamSplit):
        reader = StreamBatches(split, scale, batch_size, device, Dist(), num_workers=num_workers)
        yield from reader.evaluation(lo, hi, batch_size)
        return
    for s in range(lo, hi, batch_size):
        e = min(s + batch_size, hi)
        yield to_input(split.x[s:e], scale), split.y[s:e]


def shares(n: int, batch_size: int, dist: Dist) -> tuple[int, int, float]:
    """DDP: (steps, index of an unevenly split last batch or -1, its loss weight).

    DDP averages the processes' gradients; when the last batch does not divide evenly, each
    process's mean loss is weighted by its share, so the average is still the mean over that
    batch. A last batch smaller than the world would leave a process with nothing to do:
    those few samples are dropped each epoch.
    """
    world, rank = dist.world, dist.rank
    steps = math.ceil(n / batch_size)
    tail = n % batch_size
    if 0 < tail < world:
        log.warning(
            "DDP: the last %d sample(s) of each epoch are fewer than the %d processes and "
            "are skipped (train size %d, batch_size %d)",
            tail,
            world,
            n,
            batch_size,
        )
        return steps - 1, -1, 1.0
    if tail == 0 or tail % world == 0:
        return steps, -1, 1.0
    mine = len(range(rank, n, world)) - (steps - 1) * (batch_size // world)
    return steps, steps - 1, world * mine / tail
