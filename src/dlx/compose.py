"""Compose the config tree without a Hydra run (no run dir, no logging set-up).

For commands that only read the config (`dlx info`) and for tests. Composition errors become
one line (a DlxError) instead of an exception chain.
"""

from __future__ import annotations

from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from dlx import guard
from dlx.core.errors import ConfigError
from dlx.core.roots import register_configs

CONFIG_MODULE = "dlx.configs"
# What Hydra and OmegaConf raise for a bad override, option or value while composing.
COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, ValueError)


def compose(config_name: str = "train", overrides: list[str] | None = None) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    guard.check_argv(list(overrides or []))
    guard.install()  # the composed config's targets are checked (dlx/guard.py)
    try:
        if GlobalHydra.instance().is_initialized():  # inside a running `dlx train`
            return hydra_compose(config_name, overrides=list(overrides or []))
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            return hydra_compose(config_name, overrides=list(overrides or []))
    except COMPOSE_ERRORS as err:
        raise as_config_error(err) from None


def as_config_error(err: Exception) -> ConfigError:
    """A composition error (and the error it was raised from) as one ConfigError line."""
    lines = [str(err)]
    if err.__cause__ is not None:
        lines.append(str(err.__cause__))
    text = one_line("\n".join(lines))
    if "LexerNoViableAlt" in text or "mismatched input" in text or "no viable alternative" in text:
        # The override grammar takes plain ASCII words; anything else needs quotes.
        text += " (quote a value holding spaces or other characters: key='value')"
    return ConfigError(text)


# OmegaConf appends these context lines to its messages; the first lines say it all.
_NOISE = ("full_key:", "object_type=", "reference_type=", "Set the environment variable")


def one_line(text: str) -> str:
    """Join a multi-line Hydra/OmegaConf message into one line, dropping context lines."""
    text = text.split("Config search path:")[0]
    out = ""
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.startswith(_NOISE):
            continue
        if not out:
            out = line
        elif out.endswith(":"):
            out += f" {line}"  # "Available options in 'model':" then the first option
        elif out.endswith((".", ":")) or "Available options" in out.rsplit(";", 1)[-1]:
            out += (", " if "Available options" in out.rsplit(";", 1)[-1] else " ") + line
        else:
            out += f"; {line}"
    return out


# Groups whose options are `@package _global_`: no node of their own in the config.
GLOBAL_GROUPS = ("experiment", "debug", "hparams_search")


def split_overrides(cfg: DictConfig, overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The command line's group choices ({group: option}) and the keys it sets or deletes.

    A choice names a config group: `model=cnn`, `callbacks=[early_stopping]`, `debug=smoke`
    (the node it selects is a mapping, or nothing yet); a key holds a value. Hydra's own
    (`hydra.*`, `hydra/launcher=...`) are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups: dict[str, Any] = {}
    keys: list[str] = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key.startswith("hydra") or override.is_sweep_override():
            if override.is_sweep_override() and not key.startswith("hydra"):
                keys.append(key)  # a sweep job's value is the composed one
            continue
        node = cfg.get(key) if "." not in key else None
        is_group = "." not in key and (
            key in GLOBAL_GROUPS or node is None or isinstance(node, DictConfig)
        )
        if is_group and not override.is_delete() and isinstance(override.value(), (str, list)):
            groups[key] = override.value()
        else:
            keys.append(("~" if override.is_delete() else "") + key)
    return groups, keys


def pin(target: DictConfig, source: DictConfig, keys: list[str]) -> None:
    """Copy what the command line set in `source` (its composed values) into `target`."""
    from omegaconf import OmegaConf

    for key in keys:
        if key.startswith("~"):
            parent, _, leaf = key[1:].rpartition(".")
            node = OmegaConf.select(target, parent) if parent else target
            if isinstance(node, DictConfig) and leaf in node:
                del node[leaf]
            continue
        value = OmegaConf.select(source, key, default=None)
        OmegaConf.update(target, key, value, merge=False, force_add=True)


def stored_with_overrides(
    stored: dict[str, Any], composed: DictConfig, overrides: list[str], own: tuple[str, ...]
) -> DictConfig:
    """A finished run's config (from its checkpoint) with what the command line changed:
    a group it picked (`dataset=mnist`) replaces the stored node, a key it set takes the
    value Hydra composed for it. `own` are the command's own keys (ckpt=, split=)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(stored)
    groups, keys = split_overrides(composed, overrides)
    for group in groups:
        if group in GLOBAL_GROUPS:
            raise ConfigError(
                f"{group}= does not apply to a run that is trained already; set the keys "
                "you want to change (e.g. dataset.root=...)"
            )
        cfg[group] = composed[group]
    pin(cfg, composed, [k for k in keys if k.lstrip("~").split(".")[0] not in own])
    return cfg
