"""`logger=csv` (the default): plain files in the run dir.

The trainer itself writes `metrics.csv` (one row per epoch: resume, `dlx viz` and the
learning curves read it, so it is there whatever the logger). This logger adds `steps.csv`:
the mean training loss of each window of `trainer.log_every_n_steps` steps, the values the
trainer's NaN guard reads anyway. It is rewritten atomically once per epoch, never per step.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from dlx.core.io import atomic_write_text
from dlx.loggers import Logger

FIELDS = ("step", "epoch", "loss")


class CSVLogger(Logger):
    def __init__(self, run_dir: Path, config: Any = None, filename: str = "steps.csv") -> None:
        self.path = Path(run_dir) / filename
        self.rows: list[tuple[int, int, float]] = []
        self.dirty = False

    def start(self, step: int, epoch: int) -> None:
        # A resumed run keeps the rows up to its checkpoint; a killed run's later rows go.
        self.rows = [r for r in read_steps(self.path) if r[0] <= step] if step > 0 else []
        self.dirty = True

    def log_losses(self, step: int, epoch: int, values: list[float]) -> None:
        self.rows.append((step, epoch, math.fsum(values) / len(values)))
        self.dirty = True

    def log_epoch(self, row: dict[str, float], step: int) -> None:
        self.flush()

    def close(self, status: str = "FINISHED") -> None:
        self.flush()

    def flush(self) -> None:
        if not self.dirty:
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows((s, e, repr(v)) for s, e, v in self.rows)
        atomic_write_text(out.getvalue(), self.path)
        self.dirty = False


def read_steps(path: Path) -> list[tuple[int, int, float]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [(int(r["step"]), int(r["epoch"]), float(r["loss"])) for r in csv.DictReader(f)]
