"""Preemption: SIGTERM (Slurm, most schedulers) or Ctrl-C finish the current optimizer step,
write last.pt and end the run with 128 + the signal, saying how to resume."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import torch

from dlx.core.errors import DlxError
from dlx.engine.parts import Part

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


class Preempted(DlxError):
    """Stopped by SIGTERM/SIGINT after saving a checkpoint; exits with 128 + signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def stopped_after_training(trainer: Loop, signum: int) -> Preempted:
    """A signal during the test pass: training is complete and saved; resuming the run
    trains no more and does the rest."""
    name = signal.Signals(signum).name
    last = trainer.checkpoint_path()
    if last is not None and trainer.cfg.checkpoint and last.is_file():
        what = f"training is complete and saved in {last}"
        what += f"; finish it with: {trainer.resume_hint}" if trainer.resume_hint else ""
    else:
        what = "no checkpoint was kept (trainer.checkpoint=false)"
    return Preempted(f"stopped by {name} during the test pass; {what}", signum)


class Preemption(Part):
    def on_train_batch_end(self, trainer: Loop, loss: torch.Tensor) -> None:
        if trainer.boundary and trainer.stop.requested:
            self.stop(trainer)

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        if trainer.stop.requested:  # last.pt of this epoch is written by now
            self.stop(trainer)

    def stop(self, trainer: Loop) -> None:
        saved = trainer.save("last.pt")
        if trainer.dist.world > 1:  # no process leaves before rank 0 has written it
            torch.distributed.barrier()
        s, stop = trainer.state, trainer.stop
        where = f"at epoch {s.epoch + 1}, batch {s.batch}" if s.batch else f"after epoch {s.epoch}"
        what = f"saved {saved}" if saved else "no checkpoint (trainer.checkpoint=false)"
        hint = f"; resume with: {trainer.resume_hint}" if trainer.resume_hint and saved else ""
        raise Preempted(
            f"stopped by {stop.name} {where} (step {s.step}); {what}{hint}", stop.signum or 15
        )
