"""`dlx info [overrides] [info.graph=true]`: the composed model's summary, without data
files or training; with info.graph=true also its architecture as a picture (see graph.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from dlx.compose import compose
from dlx.errors import ConfigError, reports_errors

INFO_KEYS = ("graph", "graph_file")


def example_input(spec, batch: int = 1):
    import torch

    if spec.vocab_size is not None:  # token ids
        return torch.ones((batch, *spec.input_shape), dtype=torch.long)
    return torch.zeros((batch, *spec.input_shape))


def split_info_args(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """`info.<key>=<value>` options are dlx info's own; the rest go to the config."""
    own: dict[str, str] = {}
    rest = []
    for arg in argv:
        if arg.startswith("info."):
            key, eq, value = arg[5:].partition("=")
            if not eq or key not in INFO_KEYS:
                raise ConfigError(
                    f"dlx info: unknown option {arg!r}; use info.graph=true and "
                    "info.graph_file=<name>.svg|png|pdf|dot"
                )
            own[key] = value
        else:
            rest.append(arg)
    graph = own.get("graph", "false").lower()
    if graph not in ("true", "false"):
        raise ConfigError(f"info.graph={own['graph']} must be true or false")
    return own, rest


@reports_errors
def main(argv: list[str]) -> None:
    own, argv = split_info_args(argv)
    cfg: DictConfig = compose("train", argv)
    from dlx.models import build_model
    from dlx.summary import render, summarize
    from dlx.targets import instantiate

    dataset = instantiate(cfg.dataset, "dataset")
    spec = dataset.spec  # no file is read for this
    model = build_model(cfg.model, spec)
    import torch

    if not isinstance(model, torch.nn.Module):  # a runner: scikit-learn, Q-learning
        from omegaconf import OmegaConf

        print(
            f"{type(model).__name__} (not a torch model; its size is known once fitted, "
            "and dlx train reports it as num_params):"
        )
        print(OmegaConf.to_yaml(cfg.model), end="")
        if own.get("graph", "false").lower() == "true":
            raise ConfigError("info.graph=true draws torch models; this model is a runner")
        return
    title = f"{type(model).__name__} on {dataset.name} {tuple(spec.input_shape)}"
    rows = summarize(model, example_input(spec))
    render(model, rows, title)
    if own.get("graph", "false").lower() == "true":
        from dlx.graph import write_graph

        path = Path(own.get("graph_file") or "model.svg").expanduser()
        written, note = write_graph(model, example_input(spec), path, title)
        if note:
            sys.stderr.write(f"note: {note}\n")
        print(f"graph: {written}")
