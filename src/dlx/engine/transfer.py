"""Transfer learning: start from another run's weights, freeze chosen modules."""

from __future__ import annotations

import logging

from torch import nn

from dlx.core.errors import ConfigError
from dlx.engine.checkpoint import load_checkpoint

log = logging.getLogger("dlx")


def init_from(model: nn.Module, path: str) -> None:
    """Copy every weight whose name and shape match; a new head (other classes) stays fresh."""
    state = load_checkpoint(path)["model"]
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not take:
        raise ConfigError(f"model.init_from={path}: no weight of that checkpoint fits this model")
    skipped = sorted(set(own) - set(take))
    model.load_state_dict(take, strict=False)
    log.info(
        "init_from %s: %d tensors loaded%s",
        path,
        len(take),
        f", kept fresh: {', '.join(skipped)}" if skipped else "",
    )


def freeze(model: nn.Module, names: list[str]) -> None:
    """requires_grad=False for the named submodules (and everything in them). A name is a
    module's full name, or its end when only one module's name ends so: a wrapped network's
    own names work (`layer4` for model=torchvision's `backbone.layer4`)."""
    modules = dict(model.named_modules())
    for name in names:
        found = [name] if name in modules else [n for n in modules if n.endswith("." + name)]
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
            raise ConfigError(f"model.freeze: {name!r} could be {shown}; give the full name")
        if not found:
            top = ", ".join(n for n in modules if n and "." not in n)
            raise ConfigError(f"model.freeze: no module {name!r} in this model (it has: {top})")
        for p in modules[found[0]].parameters():
            p.requires_grad_(False)
