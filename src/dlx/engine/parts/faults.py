"""Fault injection for the kill-and-resume tests (DLX_FAULT=<point>:<n>, engine/faults.py):
the loop's named points as a part, present only when a fault is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dlx.engine import faults
from dlx.engine.parts import Part

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


class Faults(Part):
    def on_fit_start(self, trainer: Loop) -> None:
        faults.reach("start")

    def on_train_batch_end(self, trainer: Loop, loss: torch.Tensor) -> None:
        faults.reach("step")

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        faults.reach("epoch_end")
