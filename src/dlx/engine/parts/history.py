"""The run's record: metrics.csv (one row per epoch, whatever the logger) and the epoch's
log line. The rows live in the run state, so a resumed run rewrites the same file."""

from __future__ import annotations

import csv
import io
import logging
from typing import TYPE_CHECKING

from dlx.core.io import atomic_write_text
from dlx.engine.parts import Part

if TYPE_CHECKING:
    from dlx.engine.parts import Loop

log = logging.getLogger("dlx")


class History(Part):
    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        log.info(format_row(row, trainer.cfg.max_epochs))
        if trainer.run_dir is not None and trainer.dist.main:
            atomic_write_text(history_csv(trainer.state.rows), trainer.run_dir / "metrics.csv")


def history_csv(rows: list[dict[str, float]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def format_row(row: dict[str, float], max_epochs: int) -> str:
    parts = [f"epoch {int(row['epoch'])}/{max_epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if "/" in k]
    parts.append(f"{row['epoch_time_s']:.2f}s ({row['samples_per_s']:,.0f} samples/s)")
    return "  ".join(parts)
