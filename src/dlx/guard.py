"""Every config Hydra composes is checked before anything is built from it.

Hydra itself builds objects from a composed config before a dlx task function runs:
`hydra.callbacks` right after composing, the launcher and sweeper (with what they nest,
e.g. Optuna's sampler), and the logging configs, which Python's `dictConfig` turns into
objects through their `()` and `class` keys. dlx builds the rest (`instantiate` in
dlx/targets.py checks each node again, resolved, just before building it).

Hydra has no hook between composing a config and building its callbacks, so `install()`
wraps the two methods every composition goes through (a run, a multirun, each sweep job,
`hydra.compose`): `ConfigLoaderImpl.load_configuration` and `load_sweep_config`.
The checks see the config as it resolves; an interpolation that cannot be resolved yet
(one naming `hydra.runtime`, filled in later) is refused only where it could create a
node, which is what could hide a `_target_` until after the check.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig

from dlx.core.errors import ConfigError, DlxError, fail
from dlx.core.targets import check_target

# Resolvers that turn a string into config nodes (which may hold a `_target_`).
_NODE_MAKERS = ("oc.create", "oc.decode", "oc.dict.")
_LOGGING = ("hydra.job_logging", "hydra.hydra_logging")
_STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
# What `hydra.job.env_set` may set: variables that tune, never ones that load code
# (LD_PRELOAD, PYTHONPATH, NCCL_NET_PLUGIN, DLX_ALLOW_TARGETS ...).
SAFE_ENV = re.compile(
    r"(CUDA_VISIBLE_DEVICES|CUDA_LAUNCH_BLOCKING|(OMP|MKL|OPENBLAS)_NUM_THREADS"
    r"|PYTORCH_CUDA_ALLOC_CONF|TOKENIZERS_PARALLELISM|TF_CPP_MIN_LOG_LEVEL"
    r"|DLX_(DATA|CACHE|OUTPUT)_DIR|TORCH_HOME|WANDB_(MODE|PROJECT|DIR)|MLFLOW_TRACKING_URI)"
)
_MAX_DEPTH = 64


class Unresolved(str):
    """An interpolation that does not resolve yet (its raw text)."""


def resolved(node: Any, depth: int = 0) -> Any:
    """The config as plain values, each interpolation resolved where it can be."""
    if depth > _MAX_DEPTH:
        raise ConfigError("the config nests deeper than 64 levels (an interpolation of itself?)")
    if isinstance(node, DictConfig):
        if node._is_missing() or node._is_none() or node._is_interpolation():
            return None
        return {str(key): _child(node, key, depth) for key in node}
    if isinstance(node, ListConfig):
        if node._is_missing() or node._is_none() or node._is_interpolation():
            return None
        return [_child(node, i, depth) for i in range(len(node))]
    return node


def _child(parent: Any, key: Any, depth: int) -> Any:
    child = parent._get_node(key)
    if child is not None and child._is_interpolation():
        try:
            value = parent[key]
        except Exception:
            return Unresolved(child._value())
        return resolved(value, depth + 1)
    if isinstance(child, (DictConfig, ListConfig)):
        return resolved(child, depth + 1)
    return None if child is None else child._value()


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every leaf and every dict key of a resolved config."""
    if isinstance(node, dict):
        for key, child in node.items():
            where = f"{path}.{key}" if path else key
            if isinstance(child, (dict, list)):
                yield from _walk(child, where)
            else:
                yield where, key, child
    elif isinstance(node, list):
        for i, child in enumerate(node):
            where = f"{path}[{i}]"
            if isinstance(child, (dict, list)):
                yield from _walk(child, where)
            else:
                yield where, str(i), child


def check_config(cfg: Any, jobs_objects: bool = True) -> None:
    """Refuse a composed config (hydra node included) that could make anything run code.

    jobs_objects=False: the job's own targets (model, dataset, ...) are checked by spelling
    only; dlx builds them, through `instantiate`, which judges each object before building
    it, and RunChecks judges them all before the run dir exists. What Hydra builds itself
    (under `hydra.`) is always judged in full here. Resolving a job's targets imports their
    modules (torch: seconds), which a typo in a value should not wait for."""
    from hydra.core.hydra_config import HydraConfig

    # `${hydra:...}` must not resolve to another (a previous sweep job's) config here.
    holder = HydraConfig.instance()
    before, holder.cfg = holder.cfg, None
    try:
        tree = resolved(cfg)
    finally:
        holder.cfg = before
    for where, key, value in _walk(tree, ""):
        _check_leaf(where, key, value)
    _check_built(tree, "", jobs_objects)
    hydra = tree.get("hydra") if isinstance(tree, dict) else None
    if isinstance(hydra, dict):
        _check_hydra(hydra)


def _check_leaf(where: str, key: str, value: Any) -> None:
    logging = where.startswith(_LOGGING)
    factory = logging and key in ("()", "class")  # what dictConfig calls
    if isinstance(value, Unresolved):
        if key == "_target_" or factory or any(maker in value for maker in _NODE_MAKERS):
            raise ConfigError(
                f"{where}={value!s} cannot be checked before it is used (it resolves later "
                "and could create a _target_); write the value itself"
            )
    elif factory:
        check_target(value, where)
    elif (
        logging and isinstance(value, str) and value.startswith("ext://") and value not in _STREAMS
    ):
        raise ConfigError(
            f"{where}={value} is not allowed: a logging config may name only "
            f"{' or '.join(_STREAMS)}"
        )


def _check_built(node: Any, path: str, jobs_objects: bool) -> None:
    # Inside a node Hydra instantiates, a resolved `${` is resolved again (see targets.py).
    if isinstance(node, dict):
        if "_target_" in node:
            from dlx.core.targets import check_targets

            check_targets(node, path, resolve=jobs_objects or path.startswith("hydra."))
            return
        for key, child in node.items():
            _check_built(child, f"{path}.{key}" if path else key, jobs_objects)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            _check_built(child, f"{path}[{i}]", jobs_objects)


def _check_hydra(hydra: dict[str, Any]) -> None:
    env = ((hydra.get("job") or {}).get("env_set")) or {}
    for name in env:
        if not SAFE_ENV.fullmatch(str(name)):
            raise ConfigError(
                f"hydra.job.env_set.{name} is not allowed: a config may set only tuning "
                "variables (threads, CUDA devices, dlx's folders), never ones that change "
                "what code runs; export it in your shell instead"
            )
    setup = (hydra.get("launcher") or {}).get("setup")
    if setup:
        raise ConfigError(
            "hydra.launcher.setup runs shell commands before each job, and a config cannot "
            "run code; put them in the script or environment that starts dlx on the cluster"
        )


# Command-line flags of Hydra that read code or pickles, not config files.
_REFUSED_FLAGS = {
    "--experimental-rerun": "loads a pickle, which can run code",
}


def check_argv(argv: list[str]) -> None:
    """Refuse the command-line flags and search paths that would import or unpickle."""
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in _REFUSED_FLAGS:
            raise ConfigError(f"{flag} is not supported: it {_REFUSED_FLAGS[flag]}")
        if flag in ("--config-path", "-cp", "--config-dir", "-cd") or arg.startswith(
            ("hydra.searchpath=", "+hydra.searchpath=", "++hydra.searchpath=")
        ):
            _check_search_path(arg)


def _check_search_path(arg: str) -> None:
    # pkg://<package> imports the package to find its files: that runs its __init__.
    for package in re.findall(r"pkg://([\w.]+)", arg):
        if package.split(".")[0] not in ("dlx", "hydra", "hydra_plugins"):
            raise ConfigError(
                f"{arg}: pkg://{package} would import {package}; give your config folder "
                "as file://<path>"
            )


_cli = False
_inspecting = False
# Hydra's flag that only prints the composed config: nothing is built, no logging is set up
# (--help, unlike it, configures Hydra's logging from the config, so it is checked).
_INSPECT = ("--cfg", "-c")
_RUN = ("--run", "-r", "--multirun", "-m")


def inspect_only(argv: list[str]) -> None:
    """`dlx train --cfg job`: Hydra composes only to print, so the targets are not imported
    to be judged (which imports torch: seconds, for a printout)."""
    global _inspecting
    flags = {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    _inspecting = bool(flags & set(_INSPECT)) and not flags & set(_RUN)


def install(cli: bool = False) -> None:
    """Check every config Hydra composes from now on (idempotent). cli=True: a refused
    config ends the command in one line, wherever Hydra composed it (a sweep job, a
    launcher's worker), since Hydra would print its own report."""
    global _cli
    _cli = _cli or cli
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    if getattr(ConfigLoaderImpl, "_dlx_checked", False):
        return
    for name in ("load_configuration", "load_sweep_config"):
        setattr(ConfigLoaderImpl, name, _checked(getattr(ConfigLoaderImpl, name)))
    ConfigLoaderImpl._dlx_checked = True  # type: ignore[attr-defined]


def _checked(load: Any) -> Any:
    @functools.wraps(load)
    def checked_load(self: Any, *args: Any, **kwargs: Any) -> Any:
        cfg = load(self, *args, **kwargs)
        if _inspecting:
            return cfg
        try:
            check_config(cfg, jobs_objects=False)
        except DlxError as err:
            if _cli:
                fail(str(err), err.exit_code)
            raise
        return cfg

    return checked_load
