"""Runs of several stages (`stages:` in an experiment, e.g. the book's transfer learning).

Each stage runs in turn in `<run dir>/<n>_<name>/` on the run's config with the stage's
`groups` swapped (e.g. {optimizer: adam}) and its `overrides` merged in; `model.init_from:
previous` starts a stage from the one before. Precedence, lowest first: the experiment, the
stage's own settings, the `debug` option (debug=smoke makes every stage small), what the
user typed (a group chosen on the command line is not swapped by a stage either).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dlx.compose import compose, pin, split_overrides
from dlx.core.errors import ConfigError


def stage_runs(
    cfg: DictConfig, run_dir: Path | None, overrides: list[str] | None = None
) -> list[tuple[str, DictConfig, Path | None]]:
    """(name, config, run dir) of each of `cfg.stages`, given the command line that
    composed `cfg` (`overrides`)."""
    groups, keys = split_overrides(cfg, list(overrides or []))
    debug = compose(f"debug/{groups['debug']}") if groups.get("debug") else None
    base = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "stages"])
    runs, previous = [], None
    for i, stage in enumerate(cfg.stages, 1):
        name = stage.get("name") or f"stage{i}"
        stage_cfg = base.copy()
        for group, option in (stage.get("groups") or {}).items():
            if group not in groups:  # the command line's choice stays
                stage_cfg[group] = compose("train", [f"{group}={option}"])[group]
        stage_cfg = OmegaConf.merge(stage_cfg, stage.get("overrides") or {})
        if debug is not None:
            stage_cfg = OmegaConf.merge(stage_cfg, debug)
        pin(stage_cfg, cfg, keys)
        if stage_cfg.model.get("init_from") == "previous":
            if previous is None:
                raise ConfigError(f"stage {name}: model.init_from=previous in the first stage")
            stage_cfg.model.init_from = str(previous)
        stage_dir = None if run_dir is None else run_dir / f"{i}_{name}"
        runs.append((name, stage_cfg, stage_dir))
        previous = None if stage_dir is None else stage_dir / "checkpoints" / "last.pt"
    return runs
