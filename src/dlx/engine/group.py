"""The process group a run is in: who this process is, what it shares with the others.

`Dist()` is the single-process case, so the engine's DDP steps all sit behind `world > 1`.
How the processes are started (`dlx train trainer.devices=N`, torchrun) is engine/launch.py.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from dlx.core.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    """This process's place in the process group; `Dist()` is the single-process case."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum_counted(self, sums: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
        """(sums, count) added up over all ranks in one all-reduce (float64: counts stay exact)."""
        packed = torch.cat([sums.double(), sums.new_tensor([count], dtype=torch.float64)])
        dist.all_reduce(packed)
        return packed[:-1].to(sums.dtype), int(packed[-1].item())

    def share(self, n: int) -> tuple[int, int]:
        """This rank's contiguous slice [lo, hi) of n items (evaluation shards)."""
        per, extra = divmod(n, self.world)
        lo = self.rank * per + min(self.rank, extra)
        return lo, lo + per + (1 if self.rank < extra else 0)


# In a worker of `dlx train trainer.devices=N`: (shared heartbeat array, this rank).
_heart: tuple[Any, int] | None = None
DONE = float("inf")  # a heartbeat that means: training is over, nothing more to watch


def watch_me(beats: Any, rank: int) -> None:
    global _heart
    _heart = (beats, rank)


def beat(value: float | None = None) -> None:
    """Tell the launcher this process is making progress (engine/launch.Watch); a no-op
    outside a spawned worker."""
    if _heart is not None:
        beats, rank = _heart
        beats[rank] = time.monotonic() if value is None else value


def current() -> Dist:
    """The process group this process is in, or the single-process Dist()."""
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    rank = dist.get_rank()
    return Dist(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def wants_cuda(accelerator: str) -> bool:
    return accelerator == "cuda" or (accelerator == "auto" and torch.cuda.is_available())


def check_devices(devices: int, accelerator: str) -> str:
    """The backend for `devices` processes on `accelerator`, or a ConfigError."""
    if accelerator == "mps":
        raise ConfigError("trainer.devices > 1 is not supported on mps; use cpu or cuda")
    if wants_cuda(accelerator):
        if not torch.cuda.is_available():
            raise ConfigError(
                "trainer.accelerator=cuda but no CUDA device is visible; use auto or cpu"
            )
        have = torch.cuda.device_count()
        if devices > have:
            raise ConfigError(
                f"trainer.devices={devices} but only {have} CUDA device(s) are visible; "
                f"use trainer.devices<={have}, or trainer.accelerator=cpu for gloo processes"
            )
        return "nccl"
    return "gloo"


class AgreedStop:
    """A stop request all ranks act on together.

    Each rank sees SIGTERM/Ctrl-C at its own step; acting on it alone would leave the others
    waiting in an all-reduce. `requested` therefore changes only in `agree()`, which the
    trainer calls where it already syncs with the host (the NaN check every
    `log_every_n_steps` and at the end of each epoch), in the same all-reduce that also
    agrees on whether any rank saw a non-finite loss.
    """

    def __init__(self, stop: Any) -> None:
        self._stop = stop
        self.requested = False

    @property
    def signum(self) -> int | None:
        return self._stop.signum

    @property
    def name(self) -> str:
        return self._stop.name or "a signal on another rank"

    def agree(self, bad: bool, device: torch.device) -> bool:
        """Returns whether any rank saw a bad loss; updates `requested` from every rank."""
        flags = torch.tensor([float(bad), float(self._stop.requested)], device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        any_bad, any_stop = flags.tolist()
        self.requested = any_stop > 0
        return any_bad > 0


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around `model` (rank 0's weights are broadcast to all)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def check_group(cfg: Any, dist_: Dist, device: torch.device) -> torch.device:
    """The trainer's settings against the process group it runs in; its device there."""
    world, devices = dist_.world, cfg.devices
    if world == 1:
        if devices > 1:
            raise ConfigError(
                f"trainer.devices={devices} starts its processes from `dlx train`; "
                "from Python, launch your script with torchrun instead"
            )
        return device
    if devices not in (1, world):
        raise ConfigError(
            f"trainer.devices={devices} but {world} processes were launched (torchrun); "
            "leave trainer.devices at 1 under torchrun"
        )
    if cfg.batch_size % world:
        raise ConfigError(
            f"trainer.batch_size={cfg.batch_size} is the global batch and must divide "
            f"evenly among {world} processes; use a multiple of {world}"
        )
    if device.type == "cuda":
        return torch.device("cuda", dist_.local_rank)
    if device.type != "cpu":
        raise ConfigError(f"DDP runs on cuda (NCCL) or cpu (gloo), not {device.type}")
    return device
