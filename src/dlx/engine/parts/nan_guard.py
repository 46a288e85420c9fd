"""The NaN guard: one host read of the step losses every `every` optimizer steps.

The loop keeps each step's loss on the device; reading them is the only host sync inside an
epoch. A non-finite loss ends the run (`Diverged`) before anything is saved from it; finite
values go to the parts that log them (`on_losses`: steps.csv, TensorBoard, progress). Under
DDP the same all-reduce tells every process whether any saw a bad loss and whether a stop
was requested (see engine/signals.AgreedStop), so they act on both together.

Other parts call `check()` before they write a checkpoint, so no checkpoint holds a state
that a NaN loss came from.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from dlx.core.errors import DlxError
from dlx.engine.checkpoint import kept_checkpoint
from dlx.engine.parts import Part

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


class Diverged(DlxError):
    """The loss became NaN or infinite."""

    exit_code = 1


class NanGuard(Part):
    def __init__(self, every: int) -> None:
        self.every = every
        self.losses = torch.zeros(0)
        self.checked = 0  # batches of this epoch whose losses were read

    def on_train_epoch_start(self, trainer: Loop) -> None:
        if len(self.losses) != trainer.batches.steps or self.losses.device != trainer.device:
            self.losses = torch.zeros(trainer.batches.steps, device=trainer.device)
        self.checked = trainer.state.batch

    def on_train_batch_end(self, trainer: Loop, loss: torch.Tensor) -> None:
        batch = trainer.state.batch
        self.losses[batch - 1] = loss.detach()
        if trainer.boundary and batch - self.checked >= self.every:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        self.check(trainer, end=trainer.batches.steps)

    def check(self, trainer: Loop, end: int | None = None) -> None:
        """Read the losses since the last read; raise Diverged on a non-finite one."""

        lo, hi = self.checked, trainer.state.batch if end is None else end
        if hi <= lo:
            return
        values = self.losses[lo:hi].tolist()  # the one host read of this window
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        epoch, steps = trainer.state.epoch + (end is None), trainer.batches.steps
        agree = getattr(trainer.stop, "agree", None)
        if agree is not None and agree(bad is not None, trainer.device) and bad is None:
            raise Diverged(
                f"the loss became non-finite on another process at epoch {epoch}, batches "
                f"{lo + 1}-{hi}/{steps}; try a lower optimizer.lr or trainer.gradient_clip_val"
            )
        if bad is not None:
            raise Diverged(
                f"loss became {values[bad]} at epoch {epoch}, batch {lo + bad + 1}/{steps}; "
                f"training stopped, {kept_checkpoint(trainer)}; try a lower optimizer.lr or "
                "trainer.gradient_clip_val"
            )
        self.checked = hi
        trainer.parts.on_losses(trainer, values)
