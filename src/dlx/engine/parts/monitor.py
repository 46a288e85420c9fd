"""The monitored metric: its best value so far (best.pt, early stopping, plateau schedules)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dlx.core.errors import ConfigError


def mode_for(metric: str, mode: str | None) -> str:
    """min for losses and errors, max for everything else, unless set."""
    if mode is None:
        return "min" if metric.rsplit("/", 1)[-1] in ("loss", "error", "mse", "mae") else "max"
    if mode not in ("min", "max"):
        raise ConfigError(f"monitor mode {mode!r} must be min or max")
    return mode


@dataclass
class Monitor:
    """Remembers the best value of one metric."""

    key: str
    mode: str = "max"
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0

    def value(self, row: dict[str, float]) -> float:
        if self.key not in row:
            available = ", ".join(k for k in row if "/" in k)
            raise ConfigError(
                f"monitor {self.key!r} is not a metric of this run (available: {available}); "
                "set trainer.monitor (and callbacks.early_stopping.monitor), or add a "
                "validation split with dataset.val_split"
            )
        return row[self.key]

    def update(self, row: dict[str, float], epoch: int) -> bool:
        """Record this epoch's value; True when it is an improvement."""
        value = self.value(row)
        if math.isnan(value):
            return False
        sign = 1.0 if self.mode == "max" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


def monitor_for(key: str, mode: str | None, keys: list[str], option: str) -> Monitor:
    """A Monitor of `key`, refused in one line when the run has no such metric."""
    if key not in keys:
        raise ConfigError(
            f"{option}={key} is not a metric of this run (it has {', '.join(keys)}); "
            "pick one of those, or add a validation split with dataset.val_split"
        )
    return Monitor(key, mode_for(key, mode))
