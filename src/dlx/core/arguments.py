"""A `_target_` node's keys against what its target takes.

A data set's or model's node is open to new keys (its class's own parameters need no
schema), so `dataset.val_splt=0.2` composes; this is where it is caught, before anything
is built, with the nearest parameter the class does take.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from dlx.core.errors import ConfigError

# Keys of a node that dlx handles itself rather than passing to the target, by node path.
HANDLED = {"model": ("init_from", "freeze")}


def check_arguments(obj: Any, node: dict[str, Any], where: str) -> None:
    """Refuse a key of `node` that `obj` (its resolved target) does not take, with the
    nearest one it does."""
    params = _parameters(obj)
    if params is None:  # takes any keyword
        return
    skip = HANDLED.get(where, ())
    for key in node:
        key = str(key)
        if key.startswith("_") or key in skip or key in params:
            continue
        name = getattr(obj, "__qualname__", None) or type(obj).__name__
        close = difflib.get_close_matches(key, sorted(params), n=1)
        hint = (
            f"did you mean {where}.{close[0]}?"
            if close
            else f"it takes {', '.join(sorted(params))}"
        )
        raise ConfigError(f"{where}.{key} is not an option of {name} ({hint})")


def _parameters(obj: Any) -> set[str] | None:
    """The keyword arguments a class (following **kwargs up its bases) or function takes;
    None when it takes any."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    chain = [c for c in obj.__mro__ if c is not object] if isinstance(obj, type) else [obj]
    names: set[str] = set()
    for item in chain:
        init = item.__dict__.get("__init__") if isinstance(obj, type) else item
        if init is None:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in signature.parameters.values() if p.kind in kinds}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
            return names - {"self"}
    return None
