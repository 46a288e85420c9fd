"""The figure registry: `@figure("name")` on a function `(run: RunView) -> Figure`.

A figure decides itself whether it applies: it raises `Skip("why")` when the run has no
such thing to show (a confusion matrix of an autoencoder). So the figures a run gets follow
from its task, model and data, and adding one is adding a function in a module listed in
MODULES - no edit to the trainer or train.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dlx.core.errors import ConfigError

# Modules that register figures, imported on first use (they import numpy, not matplotlib).
MODULES = ("dlx.viz.curves", "dlx.viz.classify", "dlx.viz.images", "dlx.viz.rl")

FIGURES: dict[str, Callable[[Any], Any]] = {}


class Skip(Exception):
    """The figure does not apply to this run; the message says why (one short clause)."""


def figure(name: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    def register(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        FIGURES[name] = func
        return func

    return register


def figures() -> dict[str, Callable[[Any], Any]]:
    for module in MODULES:
        importlib.import_module(module)
    return FIGURES


def check_names(names: list[str], option: str) -> None:
    known = figures()
    bad = [n for n in names if n not in known]
    if bad:
        raise ConfigError(
            f"{option}: no figure named {', '.join(map(str, bad))}; figures: {', '.join(known)}"
        )
