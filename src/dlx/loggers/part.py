"""The loggers as a part of the training loop: they get what the loop reads anyway (the
losses the NaN guard reads, each epoch's row), and flush with every checkpoint, so after a
kill and a resume their files hold every step exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlx.engine.parts import Part
from dlx.loggers import Logger

if TYPE_CHECKING:
    from dlx.engine.loop import Trainer


class LoggerPart(Part):
    name = "loggers"

    def __init__(self, loggers: Logger) -> None:
        self.loggers = loggers

    def on_fit_start(self, trainer: Trainer) -> None:
        self.loggers.start(trainer.state.step, trainer.state.epoch)

    def on_losses(self, trainer: Trainer, values: list[float]) -> None:
        s = trainer.state
        epoch = s.epoch + 1 if s.batch else s.epoch  # the epoch the losses belong to
        self.loggers.log_losses(s.step, epoch, values)

    def on_train_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        self.loggers.log_epoch(row, trainer.state.step)

    def on_save_checkpoint(self, trainer: Trainer) -> None:
        self.loggers.flush()
