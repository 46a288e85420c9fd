"""Learning-rate schedules: a torch scheduler plus when it steps (epoch or step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dlx.core.errors import ConfigError


@dataclass
class Schedule:
    # A partial of a torch.optim.lr_scheduler class (from the config); None = constant lr.
    factory: Callable[..., Any] | None = None
    interval: str = "epoch"
    monitor: str | None = None

    def __post_init__(self) -> None:
        if self.interval not in ("epoch", "step"):
            raise ConfigError(f"scheduler.interval={self.interval!r} must be epoch or step")

    @property
    def needs_metric(self) -> bool:
        return (
            self.factory is not None
            and _target(self.factory) is torch.optim.lr_scheduler.ReduceLROnPlateau
        )

    def build(self, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
        if self.factory is None:
            return None
        kwargs = {}
        if getattr(self.factory, "keywords", {}).get("total_steps", 0) is None:
            kwargs["total_steps"] = total_steps  # OneCycleLR: the whole run's optimizer steps
        try:
            self._rehearse(optimizer, kwargs)
            return self.factory(optimizer, **kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"scheduler: {err}") from None

    def _rehearse(self, optimizer: torch.optim.Optimizer, kwargs: dict[str, Any]) -> None:
        # torch checks few arguments up front (StepLR(step_size=0) divides by zero at its
        # first step, after an epoch of training): step a copy on a stand-in optimizer now.
        import warnings

        params = [torch.zeros(1, requires_grad=True)]
        groups = [{**g, "params": params} for g in optimizer.param_groups[:1]]
        probe = type(optimizer)(groups)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
                sched = self.factory(probe, **kwargs)  # type: ignore[misc]
                sched.step(0.0) if self.needs_metric else sched.step()
        except (TypeError, ValueError):
            raise
        except Exception as err:
            name = getattr(_target(self.factory), "__name__", "the scheduler")
            raise ConfigError(
                f"scheduler.lr_scheduler: {name} fails at its first step "
                f"({type(err).__name__}: {err}); check its arguments"
            ) from None


def _target(factory: Callable[..., Any]) -> Any:
    return getattr(factory, "func", factory)
