"""`torchrun --nproc_per_node=N -m dlx train ...`: torchrun starts N copies of the CLI. Each
joins the process group before Hydra runs (`init_torchrun`); rank 0 runs Hydra as usual and
broadcasts its run dir (`share_run_dir`); the other ranks compose the same config without
Hydra, so they create no run dir of their own and write no `.hydra/` or log file."""

from __future__ import annotations

import gc
import os
from typing import Any

import torch
import torch.distributed as dist

from dlx.engine.group import Dist, check_devices, current, initialized
from dlx.engine.runtime import set_threads

_objects_group: Any = None  # a gloo group for the run-dir broadcast when the default is NCCL


def init_torchrun(accelerator: str) -> Dist:
    """Join the group torchrun set up (env://): NCCL on CUDA, gloo on CPU."""
    global _objects_group
    if initialized():
        return current()
    world = int(os.environ["WORLD_SIZE"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    backend = check_devices(local_world, accelerator)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    set_threads(None, local_world)
    dist.init_process_group(backend, init_method="env://")
    if backend != "gloo":
        _objects_group = dist.new_group(backend="gloo")
    return current()


def leave_torchrun() -> None:
    """End the torchrun process group after a run that went well.

    Left to the interpreter's exit, NCCL warns and gloo's threads can abort the process (see
    _worker). After an error this is skipped: it could wait on ranks that are gone.
    """
    global _objects_group
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # DDP's reducer, in reference cycles, still holds work of the group
        dist.destroy_process_group()  # the default group and _objects_group
        _objects_group = None


def share_run_dir(run_dir: str | None) -> str:
    """Rank 0 sends its Hydra run dir; every rank returns it."""
    box = [run_dir]
    dist.broadcast_object_list(box, src=0, group=_objects_group)
    return str(box[0])
