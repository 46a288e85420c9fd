"""Compose the config tree without a Hydra run (no run dir, no logging set-up).

For commands that only read the config (`dlx info`) and for tests. Composition errors become
one line (a DlxError) instead of an exception chain.
"""

from __future__ import annotations

from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from dlx import guard
from dlx.config import register_configs
from dlx.errors import ConfigError

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
