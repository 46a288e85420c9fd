"""Compile before the clock starts: a warm-up that leaves no trace in the training result.

`torch.compile` compiles on the first call with each new input shape. Run inside the first
epoch, that time would be counted as training time, so the trainer calls `warm_up` once
before the loop with a batch of each shape an epoch will see (the full batch and the last,
shorter one) and reports the time as `compile_time_s`. Forward and backward run, the
optimizer does not step, and everything they touch is put back: gradients, buffers (batch-norm
statistics, an RBM's persistent chains) and every RNG (dropout, a denoising task's noise). So
a compiled run trains on the same numbers it would have without the warm-up.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from dlx.core.tasks import Task
from dlx.engine.checkpoint import rng_state, set_rng_state

log = logging.getLogger("dlx")


def warm_up(
    net: nn.Module,
    model: nn.Module,
    task: Task,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    autocast: contextlib.AbstractContextManager,
) -> float:
    """Forward + backward of `net` (the compiled, maybe DDP-wrapped `model`) on each
    (input, target) batch, then restore `model`'s gradients and buffers and every RNG.
    Returns the seconds it took (compilation included; the device is synchronised)."""
    t0 = time.perf_counter()
    rng = rng_state()
    buffers = [b.detach().clone() for b in model.buffers()]
    grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    was_training = model.training
    model.train()
    for x, target in batches:
        with autocast:
            loss = task.loss(net(x), target)
        loss.backward()
    with torch.no_grad():
        for b, saved in zip(model.buffers(), buffers, strict=True):
            b.copy_(saved)
        for p, g in zip(model.parameters(), grads, strict=True):
            p.grad = g
    model.train(was_training)
    set_rng_state(rng)
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def compile_warm_up(trainer: Any) -> float:
    """Compile for this process's batch shapes before the timed epochs (warmup.py)."""
    b, bs = trainer.batches, trainer.batches.batch_size
    mine = len(range(trainer.dist.rank, b.n, trainer.dist.world))
    sizes = [bs, min(bs, mine - (b.steps - 1) * bs)]  # a full batch, then the last one
    if trainer.dist.world == 1 and sizes[0] == sizes[1]:
        sizes.pop()  # (under DDP every process runs both: each backward is an all-reduce)
    examples = [trainer.task.prepare(x, y) for x, y in b.examples(sizes)]
    took = warm_up(trainer.train_net, trainer.model, trainer.task, examples, trainer.autocast)
    log.info("compiled in %.1fs (warm-up outside the timed epochs)", took)
    return took
