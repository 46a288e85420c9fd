"""Typed schemas for the config groups users override most.

Registered in Hydra's ConfigStore under `schema/`; the YAML files in `configs/` extend them,
so `trainer.max_epochs=abc` or a misspelt key fails while Hydra composes, before any work.
Torch-free: this module is imported before the command decides it needs torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "cuda", "mps")


@dataclass
class TrainerConfig:
    max_epochs: int = 20
    batch_size: int = 32
    # Evaluation batch size; null = the training batch size.
    eval_batch_size: int | None = None
    accelerator: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed
    compile: bool = False
    deterministic: bool = False
    progress: bool = True
    log_every_n_steps: int = 50
    # Smoke runs: stop each epoch (or evaluation) after this many batches.
    limit_train_batches: int | None = None
    limit_eval_batches: int | None = None
    checkpoint: bool = True
    # Also write last.pt every N optimizer steps (mid-epoch; for long epochs and preemption).
    checkpoint_every_n_steps: int | None = None
    # What best.pt (and, by default, early stopping) watch: e.g. val/acc, val/loss.
    # null = val/<task metric> when there is a validation split, else train/<task metric>.
    monitor: str | None = None
    monitor_mode: str | None = None  # min | max; null = min for losses, max otherwise
    # Resume: auto = <run dir>/checkpoints/last.pt if present; or a path to a checkpoint.
    resume: str | None = None
    gradient_clip_val: float | None = None  # clip the gradients' global L2 norm
    accumulate_grad_batches: int = 1
    # Data-parallel processes (DDP): N > 1 spawns N workers inside this one run (NCCL on
    # CUDA, one GPU each; gloo on CPU). batch_size stays the global batch.
    devices: int = 1


@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    monitor: str | None = None  # null = trainer.monitor
    mode: str | None = None
    patience: int = 5
    min_delta: float = 0.0
    restore_best_weights: bool = True


@dataclass
class CallbacksConfig:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class SchedulerConfig:
    interval: str = "epoch"  # epoch | step: when the scheduler steps
    monitor: str | None = None  # ReduceLROnPlateau: the metric it watches (null = trainer's)
    # a torch.optim.lr_scheduler class and its arguments; null = constant learning rate
    lr_scheduler: Any = None


@dataclass
class OptimizerBase:
    _target_: str = "torch.optim.SGD"
    lr: float = 0.01
    weight_decay: float = 0.0


@dataclass
class SGDConfig(OptimizerBase):
    _target_: str = "torch.optim.SGD"
    lr: float = 0.01
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False


@dataclass
class AdamConfig(OptimizerBase):
    _target_: str = "torch.optim.Adam"
    lr: float = 0.001
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False


@dataclass
class AdadeltaConfig(OptimizerBase):
    _target_: str = "torch.optim.Adadelta"
    lr: float = 1.0
    rho: float = 0.95
    eps: float = 1e-7


@dataclass
class RMSpropConfig(OptimizerBase):
    _target_: str = "torch.optim.RMSprop"
    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False


@dataclass
class AdagradConfig(OptimizerBase):
    _target_: str = "torch.optim.Adagrad"
    lr: float = 0.01
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10


@dataclass
class AdamaxConfig(OptimizerBase):
    _target_: str = "torch.optim.Adamax"
    lr: float = 0.002
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class NAdamConfig(OptimizerBase):
    _target_: str = "torch.optim.NAdam"
    lr: float = 0.002
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum_decay: float = 0.004


@dataclass
class RunConfig:
    """The top level of `train.yaml`: typed scalars; the groups bring their own schemas."""

    seed: int = 2017
    dataset: Any = None
    model: Any = None
    task: Any = None
    optimizer: Any = None
    scheduler: Any = None
    trainer: Any = None
    callbacks: Any = None
    paths: Any = None
    # Runs of several stages (transfer learning): [{name, overrides}, ...]
    stages: Any = None
    # Reinforcement-learning environment (model=qlearning): env=maze | grid
    env: Any = None
    # What a run shows: loggers, figures, console (dlx.observe checks them)
    logger: Any = None
    viz: Any = None
    extras: Any = None


SCHEMAS: dict[str, Any] = {
    "run": RunConfig,
    "trainer": TrainerConfig,
    "callbacks": CallbacksConfig,
    "scheduler": SchedulerConfig,
    "optimizer/sgd": SGDConfig,
    "optimizer/adam": AdamConfig,
    "optimizer/adadelta": AdadeltaConfig,
    "optimizer/rmsprop": RMSpropConfig,
    "optimizer/adagrad": AdagradConfig,
    "optimizer/adamax": AdamaxConfig,
    "optimizer/nadam": NAdamConfig,
}

_POSITIVE_TRAINER_INTS = (
    "max_epochs",
    "batch_size",
    "eval_batch_size",
    "log_every_n_steps",
    "limit_train_batches",
    "limit_eval_batches",
    "checkpoint_every_n_steps",
    "accumulate_grad_batches",
    "devices",
)


def check_trainer(options: Mapping[str, Any]) -> None:
    """Value checks the schema's types cannot express; torch-free, so `dlx train` can run
    them before importing torch (a bad option fails in a second, not after start-up)."""
    from dlx.errors import ConfigError

    for name in _POSITIVE_TRAINER_INTS:
        value = options.get(name)
        if value is not None and value < 1:
            raise ConfigError(f"trainer.{name}={value} must be a positive integer")
    clip = options.get("gradient_clip_val")
    if clip is not None and clip <= 0:
        raise ConfigError(f"trainer.gradient_clip_val={clip} must be > 0")
    if "precision" in options and str(options["precision"]) not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={str(options['precision'])!r} is not one of {', '.join(PRECISIONS)}"
        )
    accelerator = options.get("accelerator", "auto")
    if accelerator not in ACCELERATORS:
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} is not one of {', '.join(ACCELERATORS)}"
        )
    devices = options.get("devices") or 1
    if devices > 1 and options.get("batch_size", 32) % devices:
        raise ConfigError(
            f"trainer.batch_size={options.get('batch_size', 32)} is the global batch and must "
            f"divide evenly among trainer.devices={devices}; use a multiple of {devices}"
        )
    if options.get("monitor_mode") not in (None, "min", "max"):
        raise ConfigError(f"trainer.monitor_mode={options['monitor_mode']!r} must be min or max")


def check_split_options(val_split: float, limit: int | None) -> None:
    from dlx.errors import ConfigError

    if not 0.0 <= val_split < 1.0:
        raise ConfigError(f"dataset.val_split={val_split} must be in [0, 1)")
    if limit is not None and limit < 1:
        raise ConfigError(f"dataset.limit={limit} must be a positive number of samples")


# Seeds reach numpy's RandomState (scikit-learn's `random_state: ${seed}`), which takes
# 0..2**32-1 only; torch takes more, but one seed must work for every model.
SEED_MAX = 2**32 - 1


def check_seed(seed: Any) -> None:
    from dlx.errors import ConfigError

    if isinstance(seed, int) and not 0 <= seed <= SEED_MAX:
        raise ConfigError(
            f"seed={seed} must be in 0..{SEED_MAX} (numpy and scikit-learn take 32-bit seeds)"
        )


def _keyed_schemas() -> dict[str, Any]:
    # The root and the groups typed by one schema whatever the option (trainer, callbacks,
    # scheduler): dlx reads their keys itself. Optimizer options are typed too, but their
    # keys go to a torch.optim constructor, which takes more than the schema lists.
    return {"": RunConfig, **{k: v for k, v in SCHEMAS.items() if "/" not in k and k != "run"}}


def check_run(cfg: Any) -> None:
    """All torch-free checks of a composed `train` config."""
    from dlx.config_checks import check_ints, check_keys
    from dlx.errors import ConfigError

    check_keys(cfg, _keyed_schemas())
    check_seed(cfg.get("seed"))
    check_ints(cfg)
    check_trainer(cfg.trainer)
    ds = cfg.get("dataset")
    if ds is not None:
        check_split_options(float(ds.get("val_split", 0.0) or 0.0), ds.get("limit"))
    lr = cfg.optimizer.get("lr")
    if lr is not None and not lr > 0:
        raise ConfigError(f"optimizer.lr={lr} must be > 0")
    if cfg.scheduler.interval not in ("epoch", "step"):
        raise ConfigError(f"scheduler.interval={cfg.scheduler.interval!r} must be epoch or step")
    from dlx.observe import check_options

    check_options(cfg)


_registered = False


def register_configs() -> None:
    """Store the schemas as `schema/<name>` (idempotent)."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        group, _, leaf = f"schema/{name}".rpartition("/")
        cs.store(group=group, name=leaf, node=node)
    _registered = True
