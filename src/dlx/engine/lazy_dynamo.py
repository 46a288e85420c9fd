"""Keep `torch._dynamo` out of eager runs: importing it takes 1-2 s, nearly as long as torch.

torch.optim imports torch._dynamo the first time an optimizer adds a parameter group or
steps, for two calls: `disable(fn)` (through `torch._disable_dynamo`, which wraps
`add_param_group`, `zero_grad`, `state_dict`, `load_state_dict`) and `graph_break()` (in
every `step`). Both matter only while dynamo traces code, which an eager run never does.

`defer()` registers torch._dynamo the way `importlib.util.LazyLoader` would: the module
object exists (with its real spec and path) but its code has not run. Until it does, the
two calls above are answered by stand-ins. Anything else (an attribute such as
`torch._dynamo.config`, `torch.compile`, DDP's constructor, an import of a submodule) first
runs the real `torch/_dynamo/__init__.py` in that same module object, and undoes what the
stand-ins cached; from then on torch behaves as if nothing had been deferred. A torch
release that asks dynamo for something new costs those seconds, never a wrong result.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

NAME = "torch._dynamo"
_PREFIX = NAME + "."
_lock = threading.RLock()
_not_disabled: list[Callable[..., Any]] = []  # functions whose disable() the stand-in answered


def _disable(fn: Callable[..., Any] | None = None, recursive: bool = True, **kwargs: Any) -> Any:
    """Stand-in for torch._dynamo.disable: outside tracing the real one just calls fn."""
    if fn is None:  # decorator with arguments: @disable(recursive=False)
        return lambda f: _disable(f, recursive, **kwargs)
    # torch._disable_dynamo caches what this returns as fn.__dynamo_disable; _load removes it
    # so that the real disable() is asked again once the real module is there.
    _not_disabled.append(fn)
    return fn


def _graph_break(msg: str = "") -> None:
    """Stand-in for torch._dynamo.graph_break, which does nothing outside tracing."""


_STAND_INS = {"disable": _disable, "graph_break": _graph_break}


class _Deferred(types.ModuleType):
    """torch._dynamo before its code has run; a missing attribute runs it."""

    def __getattr__(self, name: str) -> Any:
        _load(self)
        return getattr(self, name)


def _load(module: types.ModuleType) -> None:
    with _lock:
        if type(module) is not _Deferred:
            return
        module.__class__ = types.ModuleType
        for name in _STAND_INS:
            del module.__dict__[name]  # the package defines the real ones
        try:
            module.__spec__.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException:
            sys.modules.pop(NAME, None)  # as after a failed import: the next one retries
            raise
        for fn in _not_disabled:
            if fn.__dict__.get("__dynamo_disable") is fn:
                del fn.__dict__["__dynamo_disable"]
        _not_disabled.clear()


class _PackageFirst(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Importing a submodule of deferred torch._dynamo runs the package's code first.

    That is the order a normal import has. importlib has already decided that the submodule
    is not loaded when it asks this finder; if running the package loaded it, the spec
    returned here hands that module back instead of executing its file a second time.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if not name.startswith(_PREFIX):
            return None
        package = sys.modules.get(NAME)
        if type(package) is not _Deferred:
            return None
        _load(package)
        if name not in sys.modules:
            return None  # the usual finders load it, under the now-initialised package
        spec = importlib.util.spec_from_loader(name, self)
        spec.loader_state = sys.modules[name].__spec__  # type: ignore[union-attr]
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return sys.modules[spec.name]

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = module.__spec__.loader_state  # importlib set ours; put back its own


_FINDER = _PackageFirst()


def defer() -> bool:
    """Register torch._dynamo without running it, unless it is imported already.

    Returns True while its code has not run (also when an earlier call deferred it).
    """
    with _lock:
        if NAME in sys.modules:
            return type(sys.modules[NAME]) is _Deferred
        torch = importlib.import_module("torch")
        spec = importlib.util.find_spec(NAME)  # finds the file; runs nothing
        if spec is None or spec.loader is None:
            return False
        module = importlib.util.module_from_spec(spec)
        module.__dict__.update(_STAND_INS)
        module.__class__ = _Deferred
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)
        sys.modules[NAME] = module
        torch._dynamo = module  # else each torch._dynamo goes through torch.__getattr__
        return True


def is_deferred() -> bool:
    """True while torch._dynamo is registered but its code has not run."""
    return type(sys.modules.get(NAME)) is _Deferred
