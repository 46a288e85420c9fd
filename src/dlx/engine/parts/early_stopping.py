"""Keras' EarlyStopping as a part (`callbacks=[early_stopping]`): stop when the monitored
metric has not improved by `min_delta` for `patience` epochs; `restore_best_weights` puts
the best epoch's weights back before the test pass."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from dlx.core.errors import ConfigError
from dlx.engine.parts import Part
from dlx.engine.parts.monitor import Monitor, monitor_for

if TYPE_CHECKING:
    from dlx.engine.parts import Loop

log = logging.getLogger("dlx")


class EarlyStopping(Part):
    name = "early_stopping"

    def __init__(
        self,
        monitor: str | None = None,
        mode: str | None = None,
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        if patience < 0:
            raise ConfigError(f"callbacks.early_stopping.patience={patience} must be >= 0")
        if min_delta < 0:
            raise ConfigError(f"callbacks.early_stopping.min_delta={min_delta} must be >= 0")
        self.key, self.mode = monitor, mode
        self.patience, self.min_delta = patience, min_delta
        self.restore_best_weights = restore_best_weights
        self.monitor: Monitor | None = None
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def setup(self, trainer: Loop) -> None:
        key = self.key or trainer.monitor.key
        option = "callbacks.early_stopping.monitor"
        self.monitor = monitor_for(key, self.mode, trainer.metric_keys, option)
        self.monitor.min_delta = self.min_delta

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        assert self.monitor is not None
        epoch = int(row["epoch"])
        if self.monitor.update(row, epoch):
            self.wait = 0
            if self.restore_best_weights:
                state = trainer.model.state_dict()
                self.best_weights = {k: v.detach().clone() for k, v in state.items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.state.should_stop = True
            log.info(
                "early stopping: %s has not improved for %d epochs (best %.4f at epoch %d)",
                self.monitor.key,
                self.patience,
                self.monitor.best,
                self.monitor.best_epoch,
            )

    def on_fit_end(self, trainer: Loop) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            trainer.model.load_state_dict(self.best_weights)
        if self.stopped_epoch:
            trainer.extra_metrics["stopped_epoch"] = self.stopped_epoch

    def state_dict(self) -> dict[str, Any] | None:
        assert self.monitor is not None
        return {
            "monitor": self.monitor.state_dict(),
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.monitor is not None
        self.monitor.load_state_dict(state["monitor"])
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_weights = state["best_weights"]
