"""`_target_`s judged by the object they resolve to, not by how they are spelled.

Hydra's instantiate builds any importable callable, and a config can come from a shared
YAML or a pasted command line. A string allow-list is not enough: `dlx.*` also matches
everything a dlx module imports (`dlx.engine.checkpoint.torch.load` is `torch.load`). So a
target is checked in three steps:

1. its spelling must fall inside a namespace dlx may import from (nothing else is imported,
   so naming a module cannot run its import-time code);
2. it is resolved the way Hydra resolves it (`_locate`), unwrapped, and judged by where the object
   is *defined* (`__module__`, `__qualname__`);
3. it must be a class of an allowed kind (see KINDS), or come from a package the user
   allowed through the environment (`DLX_ALLOW_TARGETS=mypkg.*`; never from a config file,
   which an override could change). Whatever matches, NEVER always wins: loaders, process,
   file-system and import machinery are refused even under a user's pattern.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from dlx.core.arguments import check_arguments
from dlx.core.errors import ConfigError, DlxError

ENV_VAR = "DLX_ALLOW_TARGETS"

# Where a spelled target may be imported from.
NAMESPACES = (
    "dlx.*",
    "torch.nn.*",
    "torch.optim.*",
    "sklearn.*",
    "hydra.*",  # Hydra's own launchers, sweepers and callbacks
    "hydra_plugins.*",  # the joblib, submitit and Optuna plugins
    "optuna.samplers.*",  # the Optuna sweeper builds its sampler and pruner by _target_
    "optuna.pruners.*",
    "logging.*",  # handler/formatter classes of the logging configs
    "rich.logging.*",
)

# (module prefix of the defining module, the base classes an object there must subclass;
# None: any class). Only classes: building one stores its arguments, while a function
# does whatever it does (torch.load unpickles, os.system runs a shell).
KINDS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("dlx", None),
    ("torch.nn", ("torch.nn.Module",)),
    (
        "torch.optim",
        (
            "torch.optim.Optimizer",
            "torch.optim.lr_scheduler.LRScheduler",
            "torch.optim.lr_scheduler.ReduceLROnPlateau",
        ),
    ),
    ("sklearn", ("sklearn.base.BaseEstimator",)),
    ("hydra", ("hydra.plugins.plugin.Plugin", "hydra.experimental.callback.Callback")),
    ("hydra_plugins", ("hydra.plugins.plugin.Plugin", "hydra.experimental.callback.Callback")),
    ("optuna", ("optuna.samplers.BaseSampler", "optuna.pruners.BasePruner")),
    ("logging", ("logging.Handler", "logging.Formatter", "logging.Filter")),
    ("rich.logging", ("logging.Handler",)),
)

# Modules whose objects load code or pickles, start processes, touch files or the import
# system, or call what they are given. Never allowed, whatever path or pattern names them.
NEVER = (
    "builtins", "_sitebuiltins", "os", "posix", "nt", "sys", "subprocess", "_posixsubprocess",
    "pty", "signal", "shutil", "tempfile", "io", "_io", "codecs", "pathlib", "glob",
    "pickle", "_pickle", "pickletools", "copyreg", "marshal", "shelve", "dbm", "dill",
    "cloudpickle", "joblib", "yaml", "json", "importlib", "pkgutil", "runpy", "zipimport",
    "code", "codeop", "compileall", "py_compile", "ctypes", "_ctypes", "socket",
    "multiprocessing", "concurrent", "threading", "_thread", "asyncio", "webbrowser",
    "functools", "_functools", "operator", "itertools", "types", "inspect", "gc", "atexit",
    "logging.config", "torch.hub", "torch.serialization", "torch.jit", "torch.package",
    "torch.utils.cpp_extension", "torch.utils.data", "torch._dynamo", "torch.compiler",
    "torch._inductor", "torch.distributed", "torch.multiprocessing", "torch.ops",
    "torch._ops", "torch.library", "numpy", "pandas", "hydra.utils", "hydra._internal.utils",
    "hydra._internal.instantiate", "omegaconf",
)  # fmt: skip


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _never(module: str) -> bool:
    return any(_under(module, p) for p in NEVER)


def user_patterns() -> list[str]:
    """DLX_ALLOW_TARGETS, checked: each names a package of the user's, never everything."""
    patterns = [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
    for pattern in patterns:
        root = pattern.split(".")[0]
        if not root.isidentifier():
            raise ConfigError(
                f"{ENV_VAR}={pattern!r} would allow targets from any package, so any config "
                "could run code; name your own packages (e.g. mypkg.*, mypkg.models.Net)"
            )
        if _never(pattern.rstrip("*").rstrip(".")) or _never(root):
            raise ConfigError(
                f"{ENV_VAR}={pattern!r} names {root}, whose functions load code, run "
                "processes or touch files; dlx never allows it (name your own package)"
            )
    return patterns


def allowed_patterns() -> list[str]:
    return [*NAMESPACES, *user_patterns()]


def _real(obj: Any) -> Any:
    # functools.wraps chains and partials name the function they wrap, which is what runs.
    obj = inspect.unwrap(obj) if callable(obj) else obj
    while hasattr(obj, "func") and callable(obj.func) and not isinstance(obj, type):
        obj = inspect.unwrap(obj.func)
    return obj


def _qualified(obj: Any) -> tuple[str, str]:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return str(module), str(name)


def _subclass_of(obj: Any, bases: tuple[str, ...]) -> bool:
    from hydra.utils import get_class

    for base in bases:
        try:
            if issubclass(obj, get_class(base)):
                return True
        except Exception:  # a base that is not importable here (an optional package)
            continue
    return False


def _kind_allows(obj: Any, module: str, name: str) -> bool:
    if not isinstance(obj, type) or any(part.startswith("_") for part in name.split(".")):
        return False  # functions, instances and private classes are not config targets
    for prefix, bases in KINDS:
        if _under(module, prefix):
            return bases is None or _subclass_of(obj, bases)
    return False


def _user_allows(spelled: str, module: str, name: str, patterns: list[str]) -> bool:
    # The real name under a pattern, or a re-export inside the same package as the pattern
    # (mypkg.Net defined in mypkg.models.net); never an object from another package.
    real = f"{module}.{name}"
    for pattern in patterns:
        if fnmatch.fnmatchcase(real, pattern):
            return True
        if fnmatch.fnmatchcase(spelled, pattern) and _under(module, pattern.split(".")[0]):
            return True
    return False


def check_target(target: Any, where: str, resolve: bool = True) -> Any:
    """Raise ConfigError unless `target` (the value of `where`) names an allowed object.

    resolve=False: only the spelling (step 1; imports nothing). The object is then judged
    when it is built (`instantiate`), or by a later full check. Returns the object (None
    when not resolved)."""
    what = f"{where}={target}"
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{what} must be a class path (e.g. torch.nn.Linear)")
    patterns = user_patterns()
    hint = f"to use your own code, export {ENV_VAR}='yourpkg.*'"
    if not any(fnmatch.fnmatchcase(target, p) for p in [*NAMESPACES, *patterns]) or (
        "__main__" in target.split(".")
    ):
        raise ConfigError(
            f"{what} is not allowed: targets must be classes under "
            f"{', '.join(p for p in NAMESPACES)}; {hint}"
        )
    if not resolve:
        return None
    # Hydra's own lookup (what instantiate uses), without its error log line.
    from hydra._internal.utils import _locate

    try:
        obj = _real(_locate(target))
    except Exception as err:
        raise ConfigError(f"{what} cannot be imported ({_one_line(err)})") from None
    module, name = _qualified(obj)
    real = f"{module}.{name}"
    it = f"it is {real}," if real != target else "it is"
    if _never(module):
        raise ConfigError(
            f"{what} is not allowed: {it} from {module}, which dlx never lets a config call "
            "(it can load code, run processes or touch files)"
        )
    if _kind_allows(obj, module, name) or _user_allows(target, module, name, patterns):
        return obj
    raise ConfigError(
        f"{what} is not allowed: {it} not a class dlx builds from configs (torch.nn modules, "
        "torch.optim optimizers and schedulers, scikit-learn estimators, dlx's classes); " + hint
    )


def _targets(node: Any, path: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, target, the node holding it) for every `_target_` in a resolved config."""
    if isinstance(node, dict):
        for key, child in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, child, node
            else:
                yield from _targets(child, where)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _targets(child, f"{path}[{i}]")
    elif type(node) is str and "${" in node:  # not dlx.guard's Unresolved (a str too)
        # Hydra's instantiate resolves its config once more: an escaped `\${...}` that
        # resolved to `${...}` would be resolved again there, after this check.
        raise ConfigError(
            f"{path}={node!r} resolves to another interpolation; a config that is built "
            "cannot hold one (write the value itself)"
        )


def check_targets(cfg: Any, path: str = "", resolve: bool = True) -> None:
    """Check every `_target_` of cfg, as resolved (interpolations included), and that each
    node's keys are arguments its target takes; resolve=False: their spelling only (see
    check_target)."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        try:
            cfg = OmegaConf.to_container(cfg, resolve=True)
        except Exception as err:
            raise ConfigError(f"{path or 'config'}: cannot resolve ({_one_line(err)})") from None
    for where, target, node in _targets(cfg, path):
        obj = check_target(target, where, resolve)
        if obj is not None and not where.startswith("hydra."):
            check_arguments(obj, node, where.removesuffix("._target_"))


def instantiate(cfg: Any, path: str = "", *, partial: bool = False, **kwargs: Any) -> Any:
    """Hydra's instantiate behind the target check, with errors turned into one line.

    The config is checked as resolved, right before Hydra builds it, so an interpolation
    (`${oc.create:...}`) cannot hide a target. partial=True returns the constructor with the
    config's arguments bound (for objects that need runtime arguments later, like a
    scheduler needing its optimizer).
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
        return factory if partial else _build(factory, cfg, path, kwargs)
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


def _build(factory: Any, cfg: Any, path: str, kwargs: dict[str, Any]) -> Any:
    try:
        return factory(**kwargs)
    except (MemoryError, RuntimeError) as err:
        # A layer too big for memory (model.hidden=[100000000]) is a setting, not a bug.
        text = str(err)
        if not isinstance(err, MemoryError) and "allocate" not in text:
            raise
        detail = _one_line(text.split("you tried to allocate")[-1]) if text else "out of memory"
        raise ConfigError(
            f"{path or 'config'}: cannot build {cfg.get('_target_')}: not enough memory "
            f"({detail}); make it smaller"
        ) from None


def _one_line(text: Any) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())
