"""What a run shows besides metrics.json: the console at start and end, the loggers during
training, the figures after it. `dlx.train` opens one Observer per run (per stage), hands
its loggers to the trainer, and calls `finish` with the final metrics.

Torch-free at import: `check_options` runs before anything heavy is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("dlx")


def check_options(cfg: Any) -> None:
    """The logger and figure options (their types and ranges are the schemas'), before
    any work."""
    from dlx.loggers import check_loggers

    check_loggers(cfg)
    figures = (cfg.get("viz") or {}).get("figures")
    if figures is not None:
        from dlx.viz.registry import check_names

        check_names(list(figures) if not isinstance(figures, str) else [figures], "viz.figures")


class Observer:
    def __init__(self, cfg: Any, run_dir: Path | None) -> None:
        from dlx.loggers import build_loggers

        self.cfg = cfg
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.loggers = build_loggers(cfg, self.run_dir)
        self.predictions: dict[str, Any] = {}  # a split's classes, from the test pass (fit.py)

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
        """After training (metrics.json is written by then): the figures, then the loggers'
        final metrics and artifacts. A failure here (a full disk, a missing font, a logger's
        server) is one warning: it never costs the run its result."""
        from dlx.core.io import is_main_process

        plots: list[Path] = []
        viz = self.cfg.get("viz") or {}
        if self.run_dir is not None and viz.get("enabled", True) and is_main_process():
            from dlx.viz import draw_run

            plots = _warn_on_failure("figures", draw_run, self.cfg, self.run_dir, metrics,
                                     model=model, data=data,
                                     predictions=self.predictions) or []  # fmt: skip
        if self.loggers:
            torch_model = model if _is_torch(model) else None
            example = None
            if torch_model is not None and data is not None:  # for a logger's model graph
                from dlx.core.data import example_input

                param = next(iter(torch_model.parameters()), None)
                example = example_input(data.spec)
                if param is not None:
                    example = example.to(param.device)
            _warn_on_failure("loggers", self.loggers.log_final, metrics, plots,
                             model=torch_model, example=example)  # fmt: skip


def _warn_on_failure(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        log.warning("%s after training failed (%s: %s); metrics.json holds the result",
                    what, type(err).__name__, " ".join(str(err).split()))  # fmt: skip
        return None


def _is_torch(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)
