"""The parts every fit has, around the config's own (`callbacks`), in the order the loop
calls them: the schedule and the NaN guard first, the config's parts, then the record
(metrics.csv), checkpoints, the progress bar, fault injection and preemption last."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlx.engine import faults
from dlx.engine.parts import Part
from dlx.engine.parts.checkpoint import Checkpoint
from dlx.engine.parts.faults import Faults
from dlx.engine.parts.history import History
from dlx.engine.parts.lr_schedule import LRSchedule
from dlx.engine.parts.nan_guard import NanGuard
from dlx.engine.parts.preemption import Preemption
from dlx.engine.parts.progress import Progress, wanted
from dlx.engine.schedule import Schedule

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


def builtin_parts(trainer: Loop, schedule: Schedule) -> list[Part]:
    """The built-in parts around the config's own, in the order they are called."""
    cfg = trainer.cfg
    parts: list[Part] = [LRSchedule(schedule)] if schedule.factory is not None else []
    parts += [NanGuard(cfg.log_every_n_steps), *trainer.callbacks, History()]
    if cfg.checkpoint and trainer.run_dir is not None:
        parts.append(Checkpoint(cfg.checkpoint_every_n_steps))
    if wanted(cfg.progress and trainer.dist.main):
        parts.append(Progress())
    if faults.ENABLED:
        parts.append(Faults())
    return [*parts, Preemption()]
