"""The learning-rate schedule: a torch scheduler stepped every optimizer step or epoch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from dlx.engine.parts import Part
from dlx.engine.parts.monitor import monitor_for
from dlx.engine.schedule import Schedule

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


class LRSchedule(Part):
    name = "lr_schedule"

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.scheduler: Any = None
        self.metric: str | None = None  # ReduceLROnPlateau's

    def setup(self, trainer: Loop) -> None:
        steps = math.ceil(trainer.batches.steps / trainer.cfg.accumulate_grad_batches)
        self.scheduler = self.schedule.build(trainer.optimizer, steps * trainer.cfg.max_epochs)
        if self.schedule.needs_metric:
            key = self.schedule.monitor or trainer.monitor.key
            self.metric = monitor_for(key, None, trainer.metric_keys, "scheduler.monitor").key

    def on_train_batch_end(self, trainer: Loop, loss: torch.Tensor) -> None:
        if trainer.boundary and self.schedule.interval == "step":
            self.scheduler.step()

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        if self.schedule.interval == "epoch":
            self.scheduler.step(row[self.metric]) if self.metric else self.scheduler.step()

    def state_dict(self) -> dict[str, Any] | None:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
