"""Frozen layers at a model's input run once per fit, not once per batch of every epoch.

Transfer learning with frozen features (6-15's second stage: `model.freeze=[features]`)
trains only the head, yet every epoch would push every image through the frozen
convolutions again. When the first layers of a model's `features` are frozen and behave the
same in training and evaluation (convolutions, dense layers, activations, pooling; not
dropout or batch norm, whose output depends on the mode or the batch), their output is the
same each epoch: it is computed once for every in-memory split, and the fit trains and
evaluates the model from there (`model.skip` of its feature layers already applied).

The random layers after the prefix draw their masks in the same order as before, so a seed
gives the same run (up to the convolutions' rounding at another batch size). Streamed data
(read from files each epoch, maybe augmented) is left as it is, and so is a cache that would
take more than MAX_BYTES.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import torch
from torch import nn

from dlx.core.data import Data, Split, to_input

log = logging.getLogger("dlx")
MAX_BYTES = 4 << 30
CHUNK = 1024
# Layers whose output is a function of their input and weights alone, in either mode (and
# their subclasses, which keep that contract: dlx's Flatten is one).
PASSIVE = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Identity, nn.Flatten,
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Softplus,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
)  # fmt: skip


def frozen_layers(model: nn.Module) -> int:
    """How many leading layers of `model.features` are frozen and passive (0: none, or the
    model does not take precomputed features: it has no `skip`)."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or not hasattr(model, "skip"):
        return 0
    count = 0
    for layer in features:
        if not isinstance(layer, PASSIVE) or any(p.requires_grad for p in layer.parameters()):
            break
        count += 1
    return count


@contextmanager
def precomputed(model: nn.Module, data: Data, device: torch.device) -> Iterator[Data]:
    """`data` with each split's inputs through the frozen layers (and `model.skip` set
    meanwhile), or `data` itself when there is nothing to precompute."""
    count = frozen_layers(model)
    splits = data.splits()
    if count == 0 or not all(isinstance(s, Split) for s in splits.values()):
        yield data
        return
    prefix = model.features[:count]  # type: ignore[index]
    with torch.no_grad():
        shape = prefix(to_input(splits["train"].x[:1].to(device), data.scale)).shape[1:]
    rows = sum(len(s) for s in splits.values())
    if rows * shape.numel() * 4 > MAX_BYTES:
        yield data
        return
    out = {name: _through(prefix, split, data.scale, device) for name, split in splits.items()}
    log.info("frozen layers: %s run once for %d samples", _names(prefix), rows)
    model.skip = count  # type: ignore[assignment]
    try:
        yield replace(data, scale=None, **out)
    finally:
        model.skip = 0  # type: ignore[assignment]


@torch.no_grad()
def _through(prefix: nn.Module, split: Split, scale: float | None, device: torch.device) -> Split:
    # passive layers: the same output in training and evaluation mode, so the mode is left be
    parts = [
        prefix(to_input(split.x[i : i + CHUNK].to(device), scale))
        for i in range(0, len(split), CHUNK)
    ]
    return Split(torch.cat(parts), split.y.to(device))


def _names(prefix: nn.Module) -> str:
    return ", ".join(type(layer).__name__ for layer in prefix)
