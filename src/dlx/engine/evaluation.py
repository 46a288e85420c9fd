"""One pass over a split without gradients: its loss and metrics, and its predicted classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from dlx.core.data import AnySplit
from dlx.core.tasks import Task
from dlx.engine import faults
from dlx.engine.batches import eval_batches
from dlx.engine.group import beat

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


@torch.inference_mode()
def evaluate(
    loop: Loop,
    net: nn.Module,
    task: Task,
    split: AnySplit,
    scale: float | None,
    prefix: str,
    keep: bool = False,
) -> dict[str, float]:
    """Loss and task metrics over a split, as `{prefix}/{name}`; `keep`: a classifier's
    predicted classes for the whole split go to `loop.predictions[prefix]` too (one process:
    the figures take them instead of running the model again)."""
    cfg, dist = loop.cfg, loop.dist
    was_training = net.training
    labels: list[torch.Tensor] | None = (
        [] if keep and dist.world == 1 and "acc" in task.metric_names else None
    )
    net.eval()
    names = ("loss", *task.metric_names)
    sums = torch.zeros(len(names), device=loop.device)
    seen = 0
    batches = eval_batches(
        split, scale, cfg.eval_batch_size or cfg.batch_size, loop.device, dist,
        cfg.limit_eval_batches, cfg.num_workers,
    )  # fmt: skip
    for x, y in batches:
        beat()
        if faults.ENABLED:
            faults.reach("eval")
        x, target = task.prepare(x, y)
        with loop.autocast:
            out = net(x)
            loss = task.loss(out, target)
        sums[0] += loss * y.shape[0]
        sums[1:] += task.metric_sums(out, target)
        seen += y.shape[0]
        if labels is not None:
            labels.append(task.predict(out))
    net.train(was_training)
    if labels and seen == len(split):
        loop.predictions[prefix] = torch.cat(labels).cpu().numpy()
    if dist.world > 1:
        sums, seen = dist.sum_counted(sums, seen)
    values = (sums / max(seen, 1)).tolist()
    return {f"{prefix}/{k}": v for k, v in zip(names, values, strict=True)}
