"""Parts of the loop: small classes called at named points of `Trainer.fit`.

A part overrides the hooks it needs; the loop calls, in order, only the parts that override
each hook. The names follow Lightning's callbacks. Built-in parts (checkpoints, the NaN
guard, progress, preemption ...) are switched by `trainer.*` settings; a part of yours is a
`_target_` in the `callbacks` group (one Python file and one YAML), run after the NaN guard
and before the checkpoint is written, so what it decides is in the checkpoint.

`state_dict()` / `load_state_dict()`: what a part must carry across a resume (plain values
and tensors: checkpoints load with weights_only=True).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dlx.core.data import AnySplit, Data
    from dlx.core.schemas import TrainerConfig
    from dlx.core.tasks import Task
    from dlx.engine.batches import Batches
    from dlx.engine.group import Dist
    from dlx.engine.parts.monitor import Monitor
    from dlx.engine.state import RunState


class Loop(Protocol):
    """What parts, and the loop's own helpers (engine/snapshot, report), see of the loop
    (engine/loop.Trainer). A protocol, so that they do not import the loop that calls them:
    the imports stay one-way."""

    cfg: TrainerConfig
    state: RunState
    model: nn.Module  # as built; `net` is what runs (compiled, DDP-wrapped)
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    task: Task
    data: Data
    config: dict[str, Any] | None  # the run's composed config, kept in its checkpoints
    batches: Batches  # `.steps` a epoch
    monitor: Monitor  # trainer.monitor, resolved against the run's metrics
    metric_keys: list[str]  # every "split/metric" the run reports
    dist: Dist
    device: torch.device
    parts: Parts
    callbacks: list[Part]  # the config's parts, in its order
    run_dir: Path | None
    resume_hint: str
    boundary: bool  # whether the last step ended with an optimizer step
    stop: Any  # the stop request (a signal) while fit runs
    extra_metrics: dict[str, Any]  # what parts add to the final metrics
    predictions: dict[str, Any]  # a split's predicted classes (evaluate(keep=True))
    autocast: Any  # the precision's context manager, around each forward
    startup_s: float | None
    compile_time_s: float | None

    def save(self, name: str) -> Path | None: ...

    def checkpoint_path(self, name: str = "last.pt") -> Path | None: ...

    def evaluate(
        self,
        net: nn.Module,
        task: Task,
        split: AnySplit,
        scale: float | None,
        prefix: str,
        keep: bool = False,
    ) -> dict[str, float]: ...


class Part:
    name: str = ""  # its key in a checkpoint's `parts` (the callbacks key, or the class name)

    def setup(self, trainer: Loop) -> None:
        """Before training and before a resume restores the parts: build, check options."""

    def on_fit_start(self, trainer: Loop) -> None:
        """Training starts, or resumes at `trainer.state`."""

    def on_train_epoch_start(self, trainer: Loop) -> None: ...

    def on_train_batch_end(self, trainer: Loop, loss: torch.Tensor) -> None:
        """After each batch; `trainer.boundary` says an optimizer step was taken."""

    def on_losses(self, trainer: Loop, values: list[float]) -> None:
        """The training losses since the last read, read once by the NaN guard."""

    def on_train_epoch_end(self, trainer: Loop, row: dict[str, float]) -> None:
        """After the epoch's metrics (`row`, as in metrics.csv) are in."""

    def on_save_checkpoint(self, trainer: Loop) -> None:
        """A checkpoint is about to be written: flush what must match it."""

    def on_fit_end(self, trainer: Loop) -> None:
        """Training is over (max_epochs, or stopped early), before the test pass."""

    def teardown(self, trainer: Loop) -> None:
        """Always, however fit ends (close bars, files)."""

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


HOOKS = (
    "setup",
    "on_fit_start",
    "on_train_epoch_start",
    "on_train_batch_end",
    "on_losses",
    "on_train_epoch_end",
    "on_save_checkpoint",
    "on_fit_end",
    "teardown",
)


class Parts:
    """The parts of one fit, in order; `parts.<hook>(...)` calls each part that has it."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = list(parts)
        names = [p.name or type(p).__name__ for p in self.parts]
        if len(set(names)) != len(names):
            raise ValueError(f"two parts share a name: {names}")
        for hook in HOOKS:
            own = [getattr(p, hook) for p in self.parts if _overrides(p, hook)]
            setattr(self, hook, _fan_out(own))

    def __iter__(self):
        return iter(self.parts)

    def get(self, kind: type) -> Any:
        return next((p for p in self.parts if isinstance(p, kind)), None)

    def state_dict(self) -> dict[str, Any]:
        states = {(p.name or type(p).__name__): p.state_dict() for p in self.parts}
        return {k: v for k, v in states.items() if v is not None}

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for p in self.parts:
            state = states.get(p.name or type(p).__name__)
            if state is not None:
                p.load_state_dict(state)

    # filled in per hook by __init__
    setup: Callable[..., None]
    on_fit_start: Callable[..., None]
    on_train_epoch_start: Callable[..., None]
    on_train_batch_end: Callable[..., None]
    on_losses: Callable[..., None]
    on_train_epoch_end: Callable[..., None]
    on_save_checkpoint: Callable[..., None]
    on_fit_end: Callable[..., None]
    teardown: Callable[..., None]


def _overrides(part: Part, hook: str) -> bool:
    return getattr(type(part), hook, None) is not getattr(Part, hook)


def _fan_out(calls: list[Callable[..., None]]) -> Callable[..., None]:
    # The step-end hook runs every batch: no loop at all when no part has it.
    if not calls:
        return lambda *args: None
    if len(calls) == 1:
        return calls[0]

    def call_all(*args: Any) -> None:
        for call in calls:
            call(*args)

    return call_all
