"""`_target_` resolution restricted to an allow-list.

Hydra's instantiate builds any importable callable, and overrides come from the command
line: `model._target_=os.system` must be refused, not run. `torch.*` as a whole is too wide
(`torch.hub.load` runs code), so only the namespaces below are allowed. Users add their own
packages through the environment (`DLX_ALLOW_TARGETS=mypkg.*,other.Model`), never from a
config file, which an override could change.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from dlx.errors import ConfigError, DlxError

ALLOWED = ("dlx.*", "torch.nn.*", "torch.optim.*", "sklearn.*")
ENV_VAR = "DLX_ALLOW_TARGETS"


def allowed_patterns() -> list[str]:
    extra = os.environ.get(ENV_VAR, "")
    return [*ALLOWED, *(p.strip() for p in extra.split(",") if p.strip())]


def _targets(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, DictConfig):
        for key in node:
            child = node._get_node(key)
            if key == "_target_":
                yield path or "<root>", str(node[key])
            elif isinstance(child, (DictConfig, ListConfig)):
                yield from _targets(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            yield from _targets(child, f"{path}[{i}]")


def check_targets(cfg: Any, path: str = "") -> None:
    """Raise ConfigError for any `_target_` in cfg outside the allow-list."""
    patterns = allowed_patterns()
    for where, target in _targets(cfg, path):
        if not any(fnmatch.fnmatchcase(target, p) for p in patterns):
            raise ConfigError(
                f"{where}._target_={target} is not allowed: targets must match one of "
                f"{', '.join(patterns)}; to use your own code, export {ENV_VAR}='yourpkg.*'"
            )
        if target.startswith("sklearn."):
            _require_estimator(where, target)


def _require_estimator(where: str, target: str) -> None:
    # sklearn.* also holds helper functions; only estimator classes are buildable.
    from hydra.utils import get_object
    from sklearn.base import BaseEstimator

    try:
        obj = get_object(target)
    except Exception as err:
        raise ConfigError(f"{where}._target_={target} cannot be imported ({err})") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseEstimator)):
        raise ConfigError(f"{where}._target_={target} is not a scikit-learn estimator class")


def instantiate(cfg: Any, path: str = "", *, partial: bool = False, **kwargs: Any) -> Any:
    """Hydra's instantiate behind the allow-list, with errors turned into one line.

    partial=True returns the constructor with the config's arguments bound (for objects
    that need runtime arguments later, like a scheduler needing its optimizer).
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    if not isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.create(cfg)
    check_targets(cfg, path)
    try:
        # _convert_="all": plain lists and dicts reach constructors, so optimizer state
        # and checkpoints hold no OmegaConf objects (weights_only loading refuses them).
        # Runtime objects (a Spec, model parameters) are passed to the built partial, not
        # through Hydra, which would copy them into the config and convert them.
        factory = hydra_instantiate(cfg, _convert_="all", _partial_=True)
        return factory if partial else factory(**kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, DlxError):
            raise cause from None
        what = f"{path}: " if path else ""
        detail = f"{type(cause).__name__}: {cause}" if cause else str(err)
        raise ConfigError(
            f"{what}cannot build {cfg.get('_target_')}: {_one_line(detail)}"
        ) from None
    except (TypeError, ValueError) as err:  # wrong or unknown constructor arguments
        what = f"{path}: " if path else ""
        raise ConfigError(f"{what}cannot build {cfg.get('_target_')}: {err}") from None


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())
