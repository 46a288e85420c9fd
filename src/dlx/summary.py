"""A Keras-style model summary: layer, output shape, parameters; totals at the end."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: str
    params: int
    input_shape: str = "?"  # for the model graph (dlx info info.graph=true)


def shape_of(value: object) -> str:
    """Keras' way of writing a batch's shape: (None, ...) for the first tensor found."""
    if isinstance(value, torch.Tensor):
        return str(("None", *value.shape[1:])).replace("'None'", "None")
    if isinstance(value, (tuple, list)) and value:
        return shape_of(value[0])
    return "?"


def summarize(model: nn.Module, example: torch.Tensor) -> list[LayerRow]:
    """Run one forward pass on `example` and record each leaf module's input and output."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if (
            next(module.children(), None) is not None
            and list(module.parameters(recurse=False)) == []
        ):
            continue  # containers: their children are listed instead

        def hook(mod: nn.Module, inp: object, out: object, name: str = name) -> None:
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            kind = type(mod).__name__
            rows.append(LayerRow(name or kind, kind, shape_of(out), params, shape_of(inp)))

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def render(model: nn.Module, rows: list[LayerRow], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output Shape")
    table.add_column("Param #", justify="right")
    for r in rows:
        table.add_row(f"{r.name} ({r.kind})", r.output_shape, f"{r.params:,}")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    console = Console()
    console.print(table)
    console.print(f"Total params: {total:,}")
    console.print(f"Trainable params: {trainable:,}")
    console.print(f"Non-trainable params: {total - trainable:,}")
