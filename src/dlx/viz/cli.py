"""`dlx viz run_dir=<dir>`: redraw a finished run's figures into `<dir>/plots/`.

Reads the run as it was left: the checkpoint's config (or `.hydra/config.yaml`),
metrics.json, metrics.csv, `checkpoints/last.pt` (`ckpt=best` or a path for another one,
loaded with weights_only=True) and a scikit-learn run's predictions.npz / model.npz; the
data set is loaded again from its config (`dataset.root=...` if it moved). A staged run's
figures go into each stage's folder; a multirun's sweep dir gets `plots/sweep.png`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlx.core.errors import ConfigError

log = logging.getLogger("dlx")


def run_dirs(run_dir: Path) -> list[Path]:
    """The folders that hold a trained model: a staged run's stage folders, else itself."""
    stages = sorted(
        (p.parent for p in run_dir.glob("*/checkpoints") if p.parent.name[:1].isdigit()),
        key=lambda p: int(p.name.split("_", 1)[0]) if p.name.split("_", 1)[0].isdigit() else 0,
    )
    return stages or [run_dir]


def viz(cfg: DictConfig) -> list[Path]:
    from hydra.core.hydra_config import HydraConfig

    from dlx.compose import stored_with_overrides
    from dlx.observe import check_options
    from dlx.viz import draw
    from dlx.viz.run import RunView
    from dlx.viz.sweep import is_sweep_dir, plot_sweep, sweep_rows

    check_options(cfg)
    run_dir = Path(cfg.run_dir).expanduser()
    if not run_dir.is_dir():
        raise ConfigError(f"dlx viz: run_dir={run_dir} is not a folder")
    if is_sweep_dir(run_dir):
        path = plot_sweep(run_dir, sweep_rows(run_dir))
        print(f"dlx viz: {path}")
        return [path]
    overrides = list(HydraConfig.get().overrides.task)

    def with_overrides(stored: dict[str, Any]) -> DictConfig:
        return stored_with_overrides(stored, cfg, overrides, own=("run_dir", "ckpt"))

    written: list[Path] = []
    for folder in run_dirs(run_dir):
        view = RunView.from_dir(folder, cfg.ckpt, with_overrides)
        names = (view.cfg.get("viz") or {}).get("figures")
        paths, skipped = draw(view, None if names is None else list(names))
        written += paths
        where = folder / "plots"
        shown = ", ".join(p.stem for p in paths)
        print(f"dlx viz: {len(paths)} figure{'s' * (len(paths) != 1)} in {where}: {shown}")
        if skipped:
            print(f"  not drawn: {_reasons(skipped)}")
        if not paths:  # every run has some figure; none means its data or model is missing
            raise ConfigError(f"dlx viz: no figure drawn for {folder} ({_reasons(skipped)})")
    return written


def _reasons(skipped: dict[str, str]) -> str:
    """`a, b (why); c (why)`: figures skipped for one reason (an unusable file) share it."""
    names: dict[str, list[str]] = {}
    for name, why in skipped.items():
        names.setdefault(why, []).append(name)
    return "; ".join(f"{', '.join(n)} ({why})" for why, n in names.items())


def main(argv: list[str]) -> None:
    from dlx.command import run_command

    run_command("viz", viz, argv)
