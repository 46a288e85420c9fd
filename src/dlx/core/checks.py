"""Checks over a whole composed config that no schema type can express; torch-free, so a
typo fails in a second, before the command imports torch.

- Each schema's own checks (`check()` / `__post_init__` in schemas.py), run by building the
  schema from the config's values: the one place each value is checked.

- Keys a schema does not know. Struct mode refuses `trainer.max_epoch=3`, but Hydra's own
  advice for that error, `+trainer.max_epoch=3`, adds the key anyway; the trainer would then
  fail on it with a traceback after the data has loaded.
- Integers past 64 bits. OmegaConf keeps Python's unbounded ints, which torch and numpy
  refuse deep inside a run ("Overflow when unpacking long long").

"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.core.errors import ConfigError
from dlx.core.schemas import (
    DatasetBase,
    ExtrasConfig,
    ModelBase,
    OptimizerBase,
    RunConfig,
    SchedulerConfig,
    TrainerConfig,
    VizConfig,
)

# Groups typed by one closed schema whatever the option: dlx reads their keys itself.
CLOSED = {"trainer": TrainerConfig, "scheduler": SchedulerConfig, "viz": VizConfig,
          "extras": ExtrasConfig}  # fmt: skip
# Open schemas: their own fields are checked; what an option adds is judged against its
# target's signature (dlx.core.targets.check_arguments).
OPEN = {"dataset": DatasetBase, "model": ModelBase, "optimizer": OptimizerBase}

# Seeds reach numpy's RandomState (scikit-learn's `random_state: ${seed}`), which takes
# 0..2**32-1 only; torch takes more, but one seed must work for every model.
SEED_MAX = 2**32 - 1


def check_values(cfg: DictConfig) -> None:
    """Every torch-free check of a composed config (any command's)."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra."))
    if missing:
        raise ConfigError(
            f"{missing[0]} has no value and needs one: add {missing[0]}=<value> to the command line"
        )
    root = OmegaConf.get_type(cfg)
    root = root if dataclasses.is_dataclass(root) else RunConfig
    check_keys(cfg, {"": root, **CLOSED})
    seed = cfg.get("seed")
    if isinstance(seed, int) and not 0 <= seed <= SEED_MAX:
        raise ConfigError(
            f"seed={seed} must be in 0..{SEED_MAX} (numpy and scikit-learn take 32-bit seeds)"
        )
    check_ints(cfg)
    for name, part in (cfg.get("callbacks") or {}).items():
        if not isinstance(part, DictConfig) or not part.get("_target_"):
            raise ConfigError(
                f"callbacks.{name} has no _target_ (a part's class); add a part with "
                f"callbacks=[<option>, ...], e.g. callbacks=[early_stopping]"
            )
    for key, schema in {**CLOSED, **OPEN}.items():
        node = cfg.get(key)
        if not isinstance(node, DictConfig) or (key in OPEN and "_target_" not in node):
            continue
        build(schema, node, key)


def build(schema: type, node: DictConfig, where: str) -> Any:
    """The schema built from the node's values for its own fields: its checks run."""
    names = [f.name for f in dataclasses.fields(schema)]  # type: ignore[arg-type]
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    try:
        return schema(**{k: v for k, v in values.items() if k in names})
    except TypeError as err:  # a value of the wrong type that no compose-time type caught
        raise ConfigError(f"{where}: {err}") from None


def has_dataset(cfg: Any) -> bool:
    """Whether the config names a data set (model=qlearning runs on an env instead)."""
    node = cfg.get("dataset")
    return node is not None and bool(node.get("_target_"))


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_keys(cfg: DictConfig, schemas: Mapping[str, type]) -> None:
    """Refuse a key that is not a field of its node's schema.

    `schemas` maps a top-level key ("" for the root) to its dataclass. Nested dataclass
    fields (callbacks.early_stopping) are checked too; fields typed Any are free-form.
    """
    for name, schema in schemas.items():
        node = cfg if name == "" else cfg.get(name)
        if isinstance(node, DictConfig):
            _check_node(node, schema, name)


def _check_node(node: DictConfig, schema: type, where: str) -> None:
    hints = typing.get_type_hints(schema)
    fields = [f.name for f in dataclasses.fields(schema)]  # type: ignore[arg-type]
    for key in node:
        key = str(key)
        if where == "" and key == "hydra":  # Hydra's own node, when a caller leaves it in
            continue
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise ConfigError(_unknown(path, key, where, fields))
        child = node._get_node(key)
        if dataclasses.is_dataclass(hints.get(key)) and isinstance(child, DictConfig):
            _check_node(child, hints[key], path)


def _unknown(path: str, key: str, where: str, fields: list[str]) -> str:
    what = f"a {where} setting" if where else "a top-level setting"
    close = difflib.get_close_matches(key, fields, n=1)
    if close:
        better = f"{where}.{close[0]}" if where else close[0]
        return f"{path} is not {what} (did you mean {better}?)"
    return f"{path} is not {what}; {where or 'top-level'} settings: {', '.join(fields)}"


def check_ints(cfg: DictConfig) -> None:
    """Refuse any integer outside the signed 64-bit range, and any float that is not a
    finite number (a NaN passes every `x <= 0` check: gradient_clip_val=nan trained to NaN
    and blamed the learning rate; min_delta=nan switched early stopping off), naming its key."""
    for path, value in _leaves(OmegaConf.to_container(cfg, resolve=False), ""):
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise ConfigError(
                f"{path}={value} does not fit in a 64-bit integer "
                f"({INT64_MIN}..{INT64_MAX}); use a value in that range"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}={value} must be a finite number")


def _leaves(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, node
