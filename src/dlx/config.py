"""Typed schemas for the config groups users override most.

Registered in Hydra's ConfigStore under `schema/`; the YAML files in `configs/` extend them,
so `trainer.max_epochs=abc` or a misspelt key fails while Hydra composes, before any work.
Torch-free: this module is imported before the command decides it needs torch.
"""

from __future__ import annotations

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
    trainer: Any = None
    paths: Any = None


SCHEMAS: dict[str, Any] = {
    "run": RunConfig,
    "trainer": TrainerConfig,
    "optimizer/sgd": SGDConfig,
    "optimizer/adam": AdamConfig,
    "optimizer/adadelta": AdadeltaConfig,
    "optimizer/rmsprop": RMSpropConfig,
    "optimizer/adagrad": AdagradConfig,
    "optimizer/adamax": AdamaxConfig,
    "optimizer/nadam": NAdamConfig,
}

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
