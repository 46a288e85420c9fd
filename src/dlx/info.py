"""`dlx info [overrides] [info.graph=true]`: the composed model's summary, without data
files or training; with info.graph=true also its architecture as a picture (see graph.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dlx.core.errors import ConfigError


def info(cfg: DictConfig) -> None:
    import torch

    from dlx.command import check
    from dlx.core.data import example_input
    from dlx.core.targets import instantiate
    from dlx.models import build_model
    from dlx.summary import render, summarize

    check(cfg, None)
    dataset = instantiate(cfg.dataset, "dataset")
    spec = dataset.spec  # no file is read for this
    model = build_model(cfg.model, spec, restore=True)  # a summary: no weights to read
    if not isinstance(model, torch.nn.Module):  # a runner: scikit-learn, Q-learning
        print(
            f"{type(model).__name__} (not a torch model; its size is known once fitted, "
            "and dlx train reports it as num_params):"
        )
        print(OmegaConf.to_yaml(cfg.model), end="")
        if cfg.info.graph:
            raise ConfigError("info.graph=true draws torch models; this model is a runner")
        return
    title = f"{type(model).__name__} on {dataset.name} {tuple(spec.input_shape)}"
    rows = summarize(model, example_input(spec))
    render(model, rows, title)
    if cfg.info.graph:
        from dlx.graph import write_graph

        path = Path(cfg.info.graph_file).expanduser()
        written, note = write_graph(model, example_input(spec), path, title)
        if note:
            sys.stderr.write(f"note: {note}\n")
        print(f"graph: {written}")


def main(argv: list[str]) -> None:
    from dlx.command import run_command

    run_command("info", info, argv)
