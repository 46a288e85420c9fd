"""Typed schemas: every default of dlx's own settings lives here, once.

Registered in Hydra's ConfigStore under `schema/`; the YAML files extend them and say only
what differs, so a typo or a wrong type fails while Hydra composes, before any work, and
`dlx <command> --help` lists each key with the doc written here. The value checks a type
cannot express (a positive batch size, a known precision) are each schema's `check()`,
which runs whenever the schema is built: on the composed config before any work
(`dlx.core.checks.check_values`) and when Python code builds one (`Trainer(max_epochs=0)`).

Two base schemas are open (they take more keys than they list): every data set's options
(`DatasetBase`) and every model's (`ModelBase`), merged under `dataset`/`model` before the
chosen option, so a data set's or model's YAML holds only its `_target_` and its own
parameters. What a key of theirs may be is decided by the target's signature
(`dlx.core.targets.check_arguments`), which knows the parameters a YAML does not list.
Torch-free: imported before a command decides it needs torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from dlx.core.errors import ConfigError
from dlx.core.fields import setting
from dlx.core.schemas_runs import SweepConfig

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "cuda", "mps")


def _positive(where: str, **values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise ConfigError(f"{where}.{name}={value} must be a positive integer")


@dataclass
class TrainerConfig:
    max_epochs: int = setting(20, "epochs to train; a resumed run trains on up to this many")
    batch_size: int = setting(32, "samples per step (Keras' default); under DDP the global batch")
    eval_batch_size: int | None = setting(None, "evaluation batch size; null = batch_size")
    accelerator: str = setting("auto", "auto | cpu | cuda | mps")
    devices: int = setting(1, "DDP processes: N > 1 starts N workers in this one run")
    precision: str = setting("32", "32 | bf16-mixed | 16-mixed (fp16 with a GradScaler)")
    compile: bool = setting(False, "torch.compile the model (warm-up outside the timed epochs)")
    deterministic: bool = setting(False, "torch.use_deterministic_algorithms (bit-exact reruns)")
    num_threads: int | None = setting(
        None, "CPU threads per process; null = the cores divided among the processes running"
    )
    num_workers: int = setting(2, "streamed data sets only: DataLoader worker processes")
    progress: bool = setting(True, "a progress bar (only on a terminal)")
    log_every_n_steps: int = setting(50, "how often the losses are read (NaN guard, logs)")
    limit_train_batches: int | None = setting(None, "smoke runs: batches per epoch")
    limit_eval_batches: int | None = setting(None, "smoke runs: batches per evaluation")
    checkpoint: bool = setting(True, "checkpoints/last.pt every epoch, best.pt on improvement")
    checkpoint_every_n_steps: int | None = setting(
        None, "also last.pt every N optimizer steps (long epochs, preemption)"
    )
    monitor: str | None = setting(
        None, "what best.pt watches: null = val/<task metric>, train/... without val"
    )
    monitor_mode: str | None = setting(None, "min | max; null = min for losses, else max")
    resume: str | None = setting(None, "auto (<run dir>/checkpoints/last.pt) | a checkpoint")
    resume_allow_changes: list[str] = setting(
        [], "keys a resume may change although they alter the run, e.g. [optimizer.lr]"
    )
    gradient_clip_val: float | None = setting(None, "clip the gradients' global L2 norm")
    accumulate_grad_batches: int = setting(1, "optimizer step every N batches")
    stall_timeout_s: float = setting(
        30.0, "DDP: end the run when a process makes no progress for this long"
    )

    def __post_init__(self) -> None:
        self.precision = str(self.precision)
        self.check()

    def check(self) -> None:
        """The checks no type expresses; one place, run whenever the config is built."""
        _positive(
            "trainer",
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            eval_batch_size=self.eval_batch_size,
            devices=self.devices,
            log_every_n_steps=self.log_every_n_steps,
            limit_train_batches=self.limit_train_batches,
            limit_eval_batches=self.limit_eval_batches,
            checkpoint_every_n_steps=self.checkpoint_every_n_steps,
            accumulate_grad_batches=self.accumulate_grad_batches,
            num_threads=self.num_threads,
        )
        if self.num_workers < 0:
            raise ConfigError(f"trainer.num_workers={self.num_workers} must be >= 0")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"trainer.precision={self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(
                f"trainer.accelerator={self.accelerator!r} is not one of {', '.join(ACCELERATORS)}"
            )
        if self.gradient_clip_val is not None and not self.gradient_clip_val > 0:
            raise ConfigError(f"trainer.gradient_clip_val={self.gradient_clip_val} must be > 0")
        if not self.stall_timeout_s > 0:
            raise ConfigError(f"trainer.stall_timeout_s={self.stall_timeout_s} must be > 0")
        if self.devices > 1 and self.batch_size % self.devices:
            raise ConfigError(
                f"trainer.batch_size={self.batch_size} is the global batch and must divide "
                f"evenly among trainer.devices={self.devices}; use a multiple of {self.devices}"
            )
        if self.monitor_mode not in (None, "min", "max"):
            raise ConfigError(f"trainer.monitor_mode={self.monitor_mode!r} must be min or max")


@dataclass
class SchedulerConfig:
    interval: str = setting("epoch", "epoch | step: when the scheduler steps")
    monitor: str | None = setting(None, "ReduceLROnPlateau's metric; null = trainer.monitor")
    lr_scheduler: Any = setting(None, "a torch.optim.lr_scheduler class and its arguments")

    def __post_init__(self) -> None:
        if self.interval not in ("epoch", "step"):
            raise ConfigError(f"scheduler.interval={self.interval!r} must be epoch or step")


@dataclass
class DatasetBase:
    """Options every data set takes (dlx.data.base.Dataset); open: a data set adds its own."""

    classes: list[int] | None = setting(None, "keep these class ids, relabelled 0..k-1")
    val_split: float = setting(
        0.0, "the last fraction of train held out for validation (Keras' validation_split)"
    )
    limit: int | None = setting(None, "smoke runs: a seeded, stratified sample of N per split")
    cache_dir: str | None = setting("${paths.cache_dir}", "decoded tensors are cached here")
    download: bool = setting(True, "fetch missing files (checksummed); a no-op where none")

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_split < 1.0:
            raise ConfigError(f"dataset.val_split={self.val_split} must be in [0, 1)")
        _positive("dataset", limit=self.limit)
        classes = self.classes
        if classes is not None and (not classes or len(set(classes)) != len(classes)):
            raise ConfigError(f"dataset.classes={list(classes)} must list distinct class ids")


@dataclass
class ModelBase:
    """What dlx does with any torch model before training (open: a model adds its own)."""

    init_from: str | None = setting(None, "start from a checkpoint's matching weights")
    freeze: list[str] = setting([], "modules whose parameters do not train, e.g. [features]")


@dataclass
class OptimizerBase:
    """Any torch.optim class by `_target_`, with its arguments (open)."""

    _target_: str = MISSING
    lr: float = MISSING

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optimizer.lr={self.lr} must be > 0")


@dataclass
class VizConfig:
    enabled: bool = setting(True, "draw the figures into <run dir>/plots after training")
    figures: list[str] | None = setting(None, "null = every figure that applies; or a list")
    samples: int = setting(32, "test samples in the predictions grid (the book's 6-3: 32)")
    feature_map_inputs: int = setting(10, "inputs whose conv feature maps are drawn")
    max_filters: int = setting(16, "at most this many filters per conv layer figure")
    max_conv_layers: int = setting(
        4, "feature maps of the first N conv layers (a backbone has dozens)"
    )
    dpi: int = setting(100, "figure resolution")

    def __post_init__(self) -> None:
        _positive(
            "viz",
            samples=self.samples,
            feature_map_inputs=self.feature_map_inputs,
            max_filters=self.max_filters,
            max_conv_layers=self.max_conv_layers,
            dpi=self.dpi,
        )


@dataclass
class ExtrasConfig:
    """What a run prints besides its log lines; auto = only on a terminal."""

    print_config: Any = setting(False, "the composed config as a tree at the start")
    model_summary: Any = setting("auto", "the model's layers, shapes and parameters")
    final_table: Any = setting("auto", "a table of the final metrics and the run dir")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value not in (True, False, "auto", None):
                raise ConfigError(f"extras.{f.name}={value!r} must be true, false or auto")


@dataclass
class RunConfig:
    """The top level of every command's config; the groups bring their own schemas."""

    seed: int = setting(2017, "the book's seed (random_state=2017 throughout the chapter)")
    dataset: Any = None
    model: Any = None
    task: Any = None
    optimizer: Any = None
    scheduler: Any = None
    trainer: Any = None
    callbacks: Any = None
    paths: Any = None
    stages: Any = setting(None, "runs of several stages: [{name, groups, overrides}, ...]")
    env: Any = None
    logger: Any = None
    viz: Any = None
    extras: Any = None
    # Read by `dlx train -m` only; every command has it, so that `dlx eval` and `dlx viz`
    # take the stored config of a run that has it.
    sweep: SweepConfig = field(default_factory=SweepConfig)


SCHEMAS: dict[str, Any] = {
    "run": RunConfig,
    "trainer": TrainerConfig,
    "scheduler": SchedulerConfig,
    "dataset": DatasetBase,
    "model": ModelBase,
    "optimizer": OptimizerBase,
    "viz": VizConfig,
    "extras": ExtrasConfig,
    "sweep": SweepConfig,
}
# Merged under their group's key before its option: they take the option's own keys too.
OPEN = ("dataset", "model", "optimizer")


_registered = False


def register_configs() -> None:
    """Store the schemas as `schema/<name>` (idempotent); the commands' own root schemas
    are stored by `dlx.core.roots.register_configs`, which calls this."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        node: Any = schema
        if name in OPEN:
            # Typed where it lists a key, open to the keys the option adds; what may be
            # added is judged against the target's signature (check_arguments).
            node = OmegaConf.structured(schema)
            OmegaConf.set_struct(node, False)
        cs.store(group="schema", name=name, node=node)
    _registered = True
