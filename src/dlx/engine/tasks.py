"""Tasks decide what a model is trained for: the target, the loss and the metrics.

The trainer stays the same for every model; a task turns a batch (x, y) into the model's
input and target, scores the output, and returns per-batch metric *sums* as one tensor so
the trainer can accumulate them on the device and read them once per epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Task:
    name = "task"
    metric_names: tuple[str, ...] = ()
    # What `best`/early stopping watch by default, and whether higher is better.
    monitor = "loss"
    monitor_mode = "min"

    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Model input and target for a batch; x is already float and scaled."""
        return x, y

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sums over the batch of each metric in `metric_names` (float tensor, shape [k])."""
        return output.new_zeros(0)


class Classification(Task):
    """Multi-class classification: cross-entropy on logits (softmax + categorical CE)."""

    name = "classify"
    metric_names = ("acc",)
    monitor = "acc"
    monitor_mode = "max"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target)

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output.argmax(dim=1) == target).sum(dtype=torch.float32).reshape(1)
