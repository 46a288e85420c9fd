"""What a run shows besides metrics.json: the console at start and end, the loggers during
training, the figures after it. `dlx.train` opens one Observer per run (per stage), hands
its loggers to the trainer, and calls `finish` with the final metrics.

Torch-free at import: `check_options` runs before anything heavy is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dlx.errors import ConfigError

log = logging.getLogger("dlx")


def check_options(cfg: Any) -> None:
    """The viz, extras and logger options, checked before any work."""
    from dlx.console import wanted
    from dlx.loggers import check_loggers

    check_loggers(cfg)
    for key, value in (cfg.get("extras") or {}).items():
        wanted(value, f"extras.{key}")
    viz = cfg.get("viz")
    if viz is None:
        return
    if not isinstance(viz.get("enabled", True), bool):
        raise ConfigError(f"viz.enabled={viz.get('enabled')!r} must be true or false")
    for key in ("samples", "feature_map_inputs", "max_filters", "dpi"):
        value = viz.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"viz.{key}={value!r} must be a positive integer")
    figures = viz.get("figures")
    if figures is not None:
        from dlx.viz.registry import check_names

        check_names(list(figures) if not isinstance(figures, str) else [figures], "viz.figures")


class Observer:
    def __init__(self, cfg: Any, run_dir: Path | None) -> None:
        from dlx.loggers import build_loggers

        self.cfg = cfg
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.loggers = build_loggers(cfg, self.run_dir)

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt) or getattr(exc, "exit_code", 0) > 128:
            status = "KILLED"  # Ctrl-C, or preempted by a signal (128 + signum)
        else:
            status = "FAILED"
        self.loggers.close(status)

    def start(self, model: Any, data: Any, dataset_name: str) -> None:
        """A torch model is about to train: its summary table, if wanted."""
        from dlx.console import extra, print_model_summary

        if extra(self.cfg, "model_summary"):
            title = f"{type(model).__name__} on {dataset_name} {tuple(data.spec.input_shape)}"
            print_model_summary(model, data.spec, title)

    def finish(self, metrics: dict[str, Any], model: Any = None, data: Any = None) -> None:
        """After training: the figures, then the loggers' final metrics and artifacts."""
        from dlx.loggers import is_main_process

        plots: list[Path] = []
        viz = self.cfg.get("viz") or {}
        if self.run_dir is not None and viz.get("enabled", True) and is_main_process():
            from dlx.viz import draw_run

            plots = draw_run(self.cfg, self.run_dir, metrics, model=model, data=data)
        if self.loggers:
            torch_model = model if _is_torch(model) else None
            example = None
            if torch_model is not None and data is not None:  # for a logger's model graph
                from dlx.info import example_input

                param = next(iter(torch_model.parameters()), None)
                example = example_input(data.spec)
                if param is not None:
                    example = example.to(param.device)
            self.loggers.log_final(metrics, plots, model=torch_model, example=example)


def _is_torch(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)
