"""Loggers: where a run's numbers go besides metrics.json and metrics.csv.

`logger=csv` (the default), `tensorboard`, `mlflow`, `wandb`, `none`, or several at once:
`logger=[csv,tensorboard]`. Each option is a `_target_` (allow-listed like models), built
with the run dir and the resolved config. The trainer hands them what it reads anyway: the
losses its NaN guard reads every `trainer.log_every_n_steps` steps and each epoch's row, so
logging adds no host sync to the loop. The run then hands them the final metrics and the
figures. Optional libraries are imported only by the logger that needs them, and a missing
one is named with the extra that installs it before anything runs.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from dlx.core.errors import ConfigError
from dlx.core.io import is_main_process

log = logging.getLogger("dlx")


class Logger:
    """The interface, with no-op defaults; a logger overrides what it records.

    Steps are optimizer steps. A resumed run calls `start` with the step it resumes at, so
    a logger can drop or purge what a killed run wrote after its last checkpoint.
    """

    # (module, extra): the library this logger imports and the dlx extra that installs it
    requires: tuple[str, str] | None = None

    def start(self, step: int, epoch: int) -> None:
        """Training starts (or resumes) at optimizer step `step`, after `epoch` epochs."""

    def log_losses(self, step: int, epoch: int, values: list[float]) -> None:
        """The training losses of the batches since the last call, read at `step`."""

    def log_epoch(self, row: dict[str, float], step: int) -> None:
        """An epoch's row (as in metrics.csv), at optimizer step `step`."""

    def log_final(
        self,
        metrics: dict[str, Any],
        plots: list[Path],
        model: Any = None,
        example: Any = None,
    ) -> None:
        """The run's final metrics and figures; `model`/`example` for a graph (torch)."""

    def flush(self) -> None:
        """A checkpoint is being written: put on disk what was logged up to it."""

    def close(self, status: str = "FINISHED") -> None:
        """FINISHED, FAILED or KILLED; called once, also when the run fails."""


class Loggers(Logger):
    """Several loggers as one: each call goes to every logger in turn."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = loggers
        self.closed = False

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def start(self, step: int, epoch: int) -> None:
        for logger in self.loggers:
            logger.start(step, epoch)

    def log_losses(self, step: int, epoch: int, values: list[float]) -> None:
        for logger in self.loggers:
            logger.log_losses(step, epoch, values)

    def log_epoch(self, row: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_epoch(row, step)

    def log_final(
        self, metrics: dict[str, Any], plots: list[Path], model: Any = None, example: Any = None
    ) -> None:
        for logger in self.loggers:
            logger.log_final(metrics, plots, model=model, example=example)

    def flush(self) -> None:
        for logger in self.loggers:
            logger.flush()

    def close(self, status: str = "FINISHED") -> None:
        if self.closed:
            return
        self.closed = True
        for logger in self.loggers:
            try:
                logger.close(status)
            except Exception as err:  # closing must not hide the error that ended the run
                if status == "FINISHED":
                    raise
                log.warning("logger %s did not close: %s", type(logger).__name__, err)


def _entries(cfg: Any) -> list[tuple[str, Any]]:
    node = cfg.get("logger")
    if not node:
        return []
    return [(str(name), entry) for name, entry in node.items() if entry is not None]


def check_loggers(cfg: Any) -> None:
    """Torch-free, before any work: each logger is a mapping with a `_target_`, and the
    library a dlx logger needs is installed (else one line naming the extra)."""
    from hydra.utils import get_class

    for name, entry in _entries(cfg):
        target = entry.get("_target_") if hasattr(entry, "get") else None
        if not target:
            raise ConfigError(
                f"logger.{name} must be a mapping with a _target_ (a logger class); "
                "pick logger=csv, tensorboard, mlflow, wandb or none"
            )
        if not str(target).startswith("dlx."):
            continue  # another package's logger: the allow-list decides when it is built
        try:
            cls = get_class(str(target))
        except Exception as err:
            raise ConfigError(
                f"logger.{name}._target_={target} cannot be imported ({err})"
            ) from None
        requires = getattr(cls, "requires", None)
        if requires and importlib.util.find_spec(requires[0]) is None:
            module, extra = requires
            raise ConfigError(
                f"logger={name} needs {module}, which is not installed; "
                f"pip install 'dlx[{extra}]' (or pick another logger)"
            )


def build_loggers(cfg: Any, run_dir: Path | None) -> Loggers:
    """The loggers `cfg.logger` names, for a run writing into `run_dir` (none without one,
    and none outside rank 0)."""
    entries = _entries(cfg)
    if run_dir is None or not entries or not is_main_process():
        return Loggers([])
    from omegaconf import OmegaConf

    from dlx.core.targets import instantiate

    check_loggers(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    built: list[Logger] = []
    for name, entry in entries:
        logger = instantiate(entry, f"logger.{name}", run_dir=Path(run_dir), config=config)
        if not isinstance(logger, Logger):
            raise ConfigError(
                f"logger.{name}._target_ built a {type(logger).__name__}, not a dlx.loggers.Logger"
            )
        built.append(logger)
    return Loggers(built)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys -> plain values (lists and None as text)."""
    out: dict[str, Any] = {}
    if isinstance(config, dict):
        for key, value in config.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    key = prefix[:-1]
    if isinstance(config, (bool, int, float, str)):
        out[key] = config
    else:
        out[key] = str(config)
    return out


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers among `metrics` (booleans and lists left out)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
