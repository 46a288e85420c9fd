"""A progress bar on a terminal: refreshed by time (about 20 times a second, as Keras'),
never by reading the loss: it shows the loss the NaN guard last read, so it adds no host
sync to the loop."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import torch

from dlx.engine.parts import Part

if TYPE_CHECKING:
    from dlx.engine.parts import Loop

REFRESH_S = 0.05


class Progress(Part):
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} samples/s"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=True,
            auto_refresh=False,
        )
        self.bar.start()
        self.task = None
        self.next = 0.0
        self.loss = "-"

    def on_train_epoch_start(self, trainer: Loop) -> None:
        s = trainer.state
        self.task = self.bar.add_task(
            f"epoch {s.epoch + 1}/{trainer.cfg.max_epochs}",
            total=trainer.batches.steps,
            completed=s.batch,
            loss=self.loss,
            rate="-",
        )
        self.t0, self.seen0 = time.perf_counter(), s.seen

    def on_losses(self, trainer: Loop, values: list[float]) -> None:
        self.loss = f"{values[-1]:.4f}"

    def on_train_batch_end(self, trainer: Loop, loss: torch.Tensor) -> None:
        now = time.perf_counter()
        if now < self.next:
            return
        self.next = now + REFRESH_S
        s = trainer.state
        rate = (s.seen - self.seen0) / max(now - self.t0, 1e-9)
        self.bar.update(self.task, completed=s.batch, loss=self.loss, rate=f"{rate:,.0f}")
        self.bar.refresh()

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None

    def teardown(self, trainer: Loop) -> None:
        self.bar.stop()


def wanted(enabled: bool) -> bool:
    return enabled and sys.stderr.isatty()
