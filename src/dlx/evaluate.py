"""`dlx eval ckpt=<checkpoint | run dir> [split=test|val|train] [overrides]`.

Rebuilds the model and data set from the config stored in the checkpoint, with what the
command line changes applied (a different `dataset.root`, `dataset.classes`,
`dataset=<option>`, `trainer.accelerator` ...), evaluates one split and writes
`metrics.json` to its own run dir (`outputs/eval/<date>/<time>`, or `hydra.run.dir=`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.core.errors import ConfigError

log = logging.getLogger("dlx")

# The trainer settings that apply to evaluation.
EVAL_TRAINER_KEYS = (
    "accelerator", "precision", "eval_batch_size", "limit_eval_batches", "num_workers",
)  # fmt: skip


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    from dlx import guard
    from dlx.compose import split_overrides, stored_with_overrides
    from dlx.core.checks import check_values
    from dlx.core.io import atomic_write_text, write_json
    from dlx.core.schemas import TrainerConfig
    from dlx.core.targets import instantiate
    from dlx.engine.checkpoint import load_checkpoint, load_model_state
    from dlx.engine.loop import Trainer
    from dlx.models import build_model
    from dlx.trained import checkpoint_file

    t0 = time.perf_counter()
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    for key in split_overrides(cfg, overrides)[1]:
        group, _, leaf = key.lstrip("~").partition(".")
        if group == "trainer" and leaf not in EVAL_TRAINER_KEYS:
            raise ConfigError(
                f"dlx eval: trainer.{leaf} does not apply to evaluation; use one of "
                + ", ".join(f"trainer.{k}" for k in EVAL_TRAINER_KEYS)
            )
    path = checkpoint_file(cfg.ckpt)
    ckpt = load_checkpoint(path)
    if not ckpt.get("config"):
        raise ConfigError(f"{path} carries no config; dlx eval needs a dlx checkpoint")
    ecfg = stored_with_overrides(ckpt["config"], cfg, overrides, own=("ckpt", "split"))
    check_values(ecfg)
    guard.check_config(ecfg)  # the checkpoint's config is data from disk: its targets too
    run_dir = Path(hc.runtime.output_dir)
    trainer = Trainer(
        TrainerConfig(**{k: ecfg.trainer[k] for k in EVAL_TRAINER_KEYS if k in ecfg.trainer}),
        progress=False,
        checkpoint=False,
    )
    data = instantiate(ecfg.dataset, "dataset").load()
    split = data.splits().get(cfg.split)
    if split is None:
        raise ConfigError(
            f"split={cfg.split}: the data has no such split"
            + (" (set dataset.val_split)" if cfg.split == "val" else "")
        )
    model = build_model(ecfg.model, data.spec, restore=True)
    load_model_state(model, ckpt["model"], path)
    model.to(trainer.device)
    task = instantiate(ecfg.task, "task")
    metrics: dict[str, Any] = trainer.evaluate(
        model, task, split.to(trainer.device), data.scale, prefix=cfg.split
    )
    metrics["num_params"] = sum(p.numel() for p in model.parameters())
    metrics["samples"] = len(split)
    metrics["checkpoint"] = str(path.resolve())
    metrics["checkpoint_epoch"] = ckpt.get("epoch")
    metrics["wall_time_s"] = time.perf_counter() - t0
    write_json(metrics, run_dir / "metrics.json")
    atomic_write_text(OmegaConf.to_yaml(ecfg), run_dir / "config.yaml")
    shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "/" in k)
    print(f"dlx eval: {shown}  ({len(split)} samples)  ->  {run_dir}")
    return metrics


def main(argv: list[str]) -> None:
    from dlx.command import run_command

    run_command("eval", evaluate, argv)
