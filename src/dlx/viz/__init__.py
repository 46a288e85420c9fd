"""The chapter's figures, drawn from a run into `<run dir>/plots/*.png`.

`draw(view)` draws every registered figure that applies to a run (see registry.py);
`draw_run` does it after training with the objects still in memory; `dlx viz` (cli.py)
does it from a finished run's directory; `plot_sweep` (sweep.py) draws a multirun's
monitored metric against each swept parameter.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dlx.core.errors import DlxError
from dlx.viz.registry import Skip, figures

log = logging.getLogger("dlx")

PLOTS = "plots"


def draw(view: Any, names: list[str] | None = None) -> tuple[list[Path], dict[str, str]]:
    """Draw the named figures (None: all that apply); returns (PNG paths, {skipped: why})."""
    from dlx.viz.style import save_png

    registry = figures()
    written: list[Path] = []
    skipped: dict[str, str] = {}
    for name in names or list(registry):
        try:
            drawn = registry[name](view)
        except Skip as why:
            skipped[name] = str(why)
            continue
        except DlxError as err:  # e.g. the data set is not where the run found it
            skipped[name] = str(err)
            continue
        except Exception as err:  # a figure must not fail a finished training run
            log.warning("figure %s failed: %s: %s", name, type(err).__name__, err)
            skipped[name] = f"failed ({type(err).__name__}: {err})"
            continue
        for stem, fig in (drawn if isinstance(drawn, dict) else {name: drawn}).items():
            written.append(save_png(fig, view.run_dir / PLOTS / f"{stem}.png", view.options["dpi"]))
    if written:
        log.info(
            "figures: %s -> %s",
            ", ".join(p.stem for p in written),
            view.run_dir / PLOTS,
        )
    if skipped:
        # Asked for by name: say why each was not drawn. Otherwise most of the registry does
        # not apply to any one run, and listing it every time is noise (debug level).
        level = logging.INFO if names else logging.DEBUG
        log.log(level, "figures not drawn: %s", "; ".join(f"{k} ({v})" for k, v in skipped.items()))
    return written, skipped


def draw_run(
    cfg: Any,
    run_dir: Path,
    metrics: dict[str, Any],
    model: Any = None,
    data: Any = None,
    predictions: dict[str, Any] | None = None,
) -> list[Path]:
    """After training, in the training process: the run's figures from what is in memory
    (`predictions`: a split's classes the test pass already computed)."""
    from dlx.viz.run import RunView

    viz = cfg.get("viz") or {}
    names = viz.get("figures")
    names = None if names is None else ([names] if isinstance(names, str) else list(names))
    view = RunView(cfg, run_dir, metrics, model=model, data=data, predictions=predictions)
    return draw(view, names)[0]
