"""Checkpoints during training: last.pt every epoch (and every N optimizer steps if asked),
best.pt when the monitored metric improves. What goes in a checkpoint and how it is written
and verified is engine/checkpoint.py; `Trainer.save` puts them together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from dlx.engine.parts import Part
from dlx.engine.parts.monitor import Monitor

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


class Checkpoint(Part):
    def __init__(self, every_n_steps: int | None = None) -> None:
        self.every = every_n_steps
        self.best: Monitor | None = None

    def setup(self, trainer: Loop) -> None:
        self.best = Monitor(trainer.monitor.key, trainer.monitor.mode)

    def on_train_batch_end(self, trainer: Loop, loss: torch.Tensor) -> None:
        if self.every and trainer.boundary and trainer.state.step % self.every == 0:
            trainer.save("last.pt")

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        assert self.best is not None
        improved = self.best.update(row, int(row["epoch"]))
        trainer.save("last.pt")
        if improved:
            trainer.save("best.pt")

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.best is None else self.best.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.best is not None
        self.best.load_state_dict(state)
