"""Resuming a run: which checkpoint, and whether the run it holds can go on under this config.

A checkpoint stores the config that produced it. Resumed with other values for what the run
computes (optimizer, model, data, the batches), a run would go on as neither the old one nor
the new one, or break halfway (an Adam state loaded into SGD: KeyError 'momentum'). Those
keys must match, and a resume that differs in them is refused before anything is written.
Everything else may change: max_epochs (train on), progress, loggers, viz, paths, ...

A change the user means (`trainer.resume_allow_changes=[optimizer.lr]`) is applied for real:
the optimizer's state from the checkpoint would otherwise put the old value back. Only what
can be changed between two optimizer steps is allowed: the optimizer's hyperparameters and
the gradient clipping.

`trainer.resume=auto` takes the run dir's last.pt, verified; a damaged one is passed over
for previous.pt (its predecessor), with a warning.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.core.errors import ConfigError

log = logging.getLogger("dlx")

# Compared: these groups as a whole, and these single keys.
GROUPS = ("optimizer", "model", "dataset", "task", "scheduler")
KEYS = (
    "seed",
    "trainer.batch_size",
    "trainer.accumulate_grad_batches",
    "trainer.precision",
    "trainer.gradient_clip_val",
    "trainer.deterministic",
    "trainer.limit_train_batches",  # the epoch's length
    "trainer.limit_eval_batches",  # the validation metrics: best.pt, early stopping, plateau
    # The saved best value belongs to the monitored metric: another one would be compared
    # against it.
    "trainer.monitor",
    "trainer.monitor_mode",
    "callbacks.early_stopping.monitor",
    "callbacks.early_stopping.mode",
)
# What trainer.resume_allow_changes may name: what can change between two optimizer steps.
CHANGEABLE = ("optimizer.", "trainer.gradient_clip_val")
# Not compared, though in those groups: where things are, not what is computed. (The
# checkpoint's weights replace what init_from loaded.) trainer.devices is not compared
# either: batch_size is the global batch, which the processes share, so any number of them
# computes the same batches, and the checkpoint keeps the totals for another world size.
FREE = ("model.init_from", "dataset.cache_dir", "dataset.download")
SHOWN = 6  # differences named in the error line
_ABSENT = object()


def resume_path(resume: str | None, last: Path | None) -> Path | None:
    """The checkpoint `trainer.resume` points at, or None to start fresh. For auto: the run
    dir's last.pt (`last`) if it verifies, else previous.pt if that does."""
    if not resume:
        return None
    if resume != "auto":
        path = Path(resume).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"trainer.resume={resume}: no such checkpoint; give the path of a "
                "last.pt or best.pt, or use trainer.resume=auto"
            )
        return path
    if last is None:
        return None
    from dlx.engine.checkpoint import PREVIOUS, CheckpointError, load_checkpoint

    previous = last.with_name(PREVIOUS)
    if not last.is_file():  # killed between keeping the old one and renaming the new one
        return previous if previous.is_file() else None
    try:
        load_checkpoint(last)
        return last
    except CheckpointError as err:
        if not previous.is_file():
            raise
        try:
            load_checkpoint(previous)
        except CheckpointError:
            raise err from None
        log.warning("%s; resuming from %s, the checkpoint before it", err, previous)
        return previous


def check_resume(cfg: DictConfig, run_dir: Path | None) -> list[str]:
    """Refuse, in one line, to resume a checkpoint under a config that computes otherwise;
    returns the changed keys the user allowed (trainer.resume_allow_changes)."""
    last = None if run_dir is None else run_dir / "checkpoints" / "last.pt"
    path = resume_path(cfg.trainer.get("resume"), last)
    if path is None:
        return []
    from dlx.engine.checkpoint import CheckpointError, load_checkpoint

    allowed = [str(k) for k in cfg.trainer.get("resume_allow_changes") or []]
    bad = [k for k in allowed if not k.startswith(CHANGEABLE) or k == "optimizer._target_"]
    if bad:
        raise ConfigError(
            f"trainer.resume_allow_changes: {', '.join(bad)} cannot change in the middle of a "
            "run (only optimizer hyperparameters and trainer.gradient_clip_val can); start a "
            "new run instead"
        )
    stored = load_checkpoint(path, mmap=True).get("config")
    if not stored:  # weights from elsewhere: their shapes are checked as they load
        return []
    changes = differences(stored, cfg)
    refused = [c for c in changes if c.split(" ", 1)[0] not in allowed]
    if refused:
        shown = ", ".join(refused[:SHOWN])
        if len(refused) > SHOWN:
            shown += f" and {len(refused) - SHOWN} more"
        raise CheckpointError(
            f"cannot resume {path}: the config differs in {shown}; resume with the original "
            "settings, start a new run (a new hydra.run.dir), or, for optimizer settings, "
            "say it is meant: trainer.resume_allow_changes=[<key>, ...]"
        )
    return [c.split(" ", 1)[0] for c in changes]


def differences(stored: dict[str, Any], cfg: DictConfig) -> list[str]:
    """`key (old -> new)` for each compared key whose value changed."""
    old = _compared(stored)
    # Unresolved: a value that follows another key (T_max: ${trainer.max_epochs}, cache_dir:
    # ${paths.cache_dir}) changes with it, and that key is compared or free in its own right.
    new = _compared(OmegaConf.to_container(cfg, resolve=False))
    out = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if _follows(b) or a == b:
            continue
        out.append(f"{key} ({_show(a)} -> {_show(b)})")
    return sorted(out, key=_order)


def _order(difference: str) -> tuple[int, bool]:
    # In the order of GROUPS then KEYS, a group's _target_ first.
    key = difference.split(" ", 1)[0]
    group = key.split(".", 1)[0]
    rank = GROUPS.index(group) if group in GROUPS else len(GROUPS) + KEYS.index(key)
    return rank, not key.endswith("._target_")


def _compared(config: Any) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for group in GROUPS:
        if group in config:
            flat.update(_flatten(config[group], group))
    for key in KEYS:
        value = _select(config, key)
        if value is not _ABSENT:
            flat[key] = value
    return {k: v for k, v in flat.items() if k not in FREE}


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}"))
    return flat


def _select(config: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return _ABSENT
        config = config[part]
    return config


def _follows(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
