"""What `dlx train` prints for people, besides its log lines: the composed config as a tree
and the model's summary at the start, a table of the final metrics and the run dir at the
end. Each is an `extras.*` option: auto (only when stdout is a terminal), true or false.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dlx.core.errors import ConfigError

# Top-level keys shown first in the tree, in the order a reader follows a run.
ORDER = ("dataset", "model", "task", "optimizer", "scheduler", "trainer", "callbacks", "env")


def wanted(value: Any, option: str) -> bool:
    if value is None or value == "auto":
        return sys.stdout.isatty()
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{option}={value!r} must be true, false or auto")


def extra(cfg: Any, key: str) -> bool:
    extras = cfg.get("extras") or {}
    return wanted(extras.get(key, "auto"), f"extras.{key}")


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout)


def print_config_tree(cfg: Any) -> None:
    from omegaconf import DictConfig, OmegaConf
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("[bold]config[/bold]")
    keys = [k for k in ORDER if k in cfg] + [k for k in cfg if k not in ORDER]
    for key in (k for k in keys if cfg.get(k) is not None):
        node = cfg._get_node(key) if isinstance(cfg, DictConfig) else cfg[key]
        value = cfg.get(key)
        if isinstance(value, (DictConfig, dict, list)) or OmegaConf.is_list(value):
            try:
                text = OmegaConf.to_yaml(node, resolve=True)
            except Exception:  # an interpolation that only resolves inside Hydra
                text = OmegaConf.to_yaml(node)
            tree.add(f"[bold]{key}[/bold]").add(Syntax(text.rstrip(), "yaml", theme="ansi_dark"))
        else:
            tree.add(f"[bold]{key}[/bold]: {value}")
    _console().print(tree)


def print_model_summary(model: Any, spec: Any, title: str) -> None:
    import torch

    from dlx.core.data import example_input
    from dlx.summary import render, summarize

    device = next(iter(model.parameters()), torch.empty(0)).device
    # A summary is an eval-mode forward pass; it must not shift any random stream a run
    # (or its exact resume) depends on.
    with torch.random.fork_rng(devices=[]):
        rows = summarize(model, example_input(spec).to(device))
    render(model, rows, title)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


SHOWN = ("epochs", "best_epoch", "monitor", "num_params", "wall_time_s", "train_samples_per_s")
SHOWN_RUNNER = ("greedy_path", "reached_goal", "q_max", "cv/best_score", "converged")


def print_final_table(metrics: dict[str, Any], run_dir: Path | None) -> None:
    from rich.table import Table

    table = Table(title="final metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        metric = "/" in key and isinstance(value, (int, float)) and key not in SHOWN_RUNNER
        if metric or key in SHOWN or key in SHOWN_RUNNER:
            table.add_row(key, _format(value))
    console = _console()
    console.print(table)
    if run_dir is not None:
        # one line whatever its length, so that the path can be copied from the terminal
        console.print(f"run dir: {run_dir}", soft_wrap=True)
        plots = sorted(Path(run_dir).glob("**/plots"))
        if plots:
            console.print("plots: " + ", ".join(str(p) for p in plots), soft_wrap=True)
