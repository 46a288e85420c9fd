"""A rich progress bar for the training loop, or a no-op when not wanted.

The loop calls `advance()` every step; reading the loss for the bar forces a host sync, so
the bar asks for it only every `every` steps.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class NullBar:
    every = 0

    def start_epoch(self, epoch: int, max_epochs: int, steps: int) -> None: ...
    def advance(self, step: int, loss: Callable[[], float], samples: int) -> None: ...
    def end_epoch(self) -> None: ...
    def close(self) -> None: ...


class RichBar(NullBar):
    def __init__(self, every: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.every = max(1, every)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} samples/s"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self.progress.start()
        self.task = None

    def start_epoch(self, epoch: int, max_epochs: int, steps: int) -> None:
        from time import perf_counter

        self.t0, self.samples = perf_counter(), 0
        self.task = self.progress.add_task(
            f"epoch {epoch}/{max_epochs}", total=steps, loss="-", rate="-"
        )

    def advance(self, step: int, loss: Callable[[], float], samples: int) -> None:
        self.samples += samples
        if step % self.every == 0:
            from time import perf_counter

            rate = self.samples / max(perf_counter() - self.t0, 1e-9)
            self.progress.update(
                self.task, completed=step + 1, loss=f"{loss():.4f}", rate=f"{rate:,.0f}"
            )

    def end_epoch(self) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None

    def close(self) -> None:
        self.progress.stop()


def make_bar(enabled: bool, every: int) -> NullBar:
    return RichBar(every) if enabled and sys.stderr.isatty() else NullBar()
