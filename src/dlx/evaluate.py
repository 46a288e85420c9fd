"""`dlx eval ckpt=<path> [split=test|val] [dataset.<key>=...] [trainer.<key>=...]`.

Rebuilds the model and data set from the config stored in the checkpoint, applies the
given overrides (a different `dataset.root`, `dataset.classes`, `dataset=<option>` ...),
evaluates one split and writes `metrics.json` to its own run dir
(`outputs/eval/<date>/<time>`, or `hydra.run.dir=`).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.errors import ConfigError, reports_errors

log = logging.getLogger("dlx")

USAGE = """usage: dlx eval ckpt=<path> [split=test|val] [overrides...]

Evaluate a checkpoint on the test split (or split=val) of the data it was trained on.
Overrides change the stored config: dataset=<option>, dataset.<key>=<value> (root, limit,
classes, val_split, ...), trainer.<key>=<value> (accelerator, precision, eval_batch_size,
limit_eval_batches); hydra.run.dir=<dir> sets where metrics.json goes.
"""

EVAL_TRAINER_KEYS = ("accelerator", "precision", "eval_batch_size", "limit_eval_batches")


def parse_args(argv: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {"split": "test", "dataset": None, "run_dir": None, "ckpt": None}
    dotted: list[str] = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq:
            raise ConfigError(f"dlx eval: {arg!r} is not key=value (dlx eval --help)")
        if key in ("ckpt", "split", "dataset"):
            args[key] = value
        elif key in ("hydra.run.dir", "run_dir"):
            args["run_dir"] = value
        elif key.startswith(("dataset.", "trainer.")):
            dotted.append(arg)
        else:
            raise ConfigError(
                f"dlx eval: unknown option {key!r}; use ckpt=, split=, dataset.<key>=, "
                "trainer.<key>= or hydra.run.dir="
            )
    if not args["ckpt"]:
        raise ConfigError(
            "dlx eval needs ckpt=<path to a checkpoint> (e.g. .../checkpoints/best.pt)"
        )
    if args["split"] not in ("test", "val"):
        raise ConfigError(f"dlx eval: split={args['split']} must be test or val")
    args["dotted"] = dotted
    return args


def eval_config(saved: dict[str, Any], args: dict[str, Any]) -> DictConfig:
    """The checkpoint's config with the command line's changes applied."""
    cfg = OmegaConf.create(saved)
    if args["dataset"]:
        from dlx.compose import compose

        cfg.dataset = compose("train", [f"dataset={args['dataset']}"]).dataset
    OmegaConf.set_struct(cfg, True)
    for item in args["dotted"]:
        key, _, value = item.partition("=")
        group, _, leaf = key.partition(".")
        if group == "trainer" and leaf not in EVAL_TRAINER_KEYS:
            raise ConfigError(
                f"dlx eval: {key} does not apply to evaluation; use one of "
                + ", ".join(f"trainer.{k}" for k in EVAL_TRAINER_KEYS)
            )
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            options = ", ".join(f"{group}.{k}" for k in cfg[group] if k != "_target_")
            raise ConfigError(f"dlx eval: {key} is not an option here (options: {options})")
        OmegaConf.update(cfg, key, OmegaConf.from_dotlist([f"v={value}"]).v, merge=False)
    from dlx.guard import check_config

    check_config(cfg)  # the checkpoint's config is data from disk: its targets are checked
    return cfg


def evaluate(argv: list[str]) -> dict[str, Any]:
    from dlx.engine.checkpoint import load_checkpoint, load_model_state
    from dlx.engine.trainer import Trainer, count_params
    from dlx.io import atomic_write_text, write_json
    from dlx.models import build_model
    from dlx.targets import instantiate

    args = parse_args(argv)
    t0 = time.perf_counter()
    ckpt = load_checkpoint(args["ckpt"])
    if not ckpt.get("config"):
        raise ConfigError(f"{args['ckpt']} carries no config; dlx eval needs a dlx checkpoint")
    cfg = eval_config(ckpt["config"], args)
    paths = cfg.get("paths") or {}
    run_dir = Path(
        args["run_dir"]
        or Path(
            paths.get("output_dir", "outputs"), "eval", datetime.now().strftime("%Y-%m-%d/%H-%M-%S")
        )
    ).expanduser()
    from dlx.train import check_writable

    check_writable(run_dir)
    trainer = Trainer(
        **{k: cfg.trainer[k] for k in EVAL_TRAINER_KEYS}, progress=False, checkpoint=False
    )
    dataset = instantiate(cfg.dataset, "dataset")
    data = dataset.load()
    split = data.test if args["split"] == "test" else data.val
    if split is None:
        raise ConfigError(
            f"split={args['split']}: the data has no such split"
            + (" (set dataset.val_split)" if args["split"] == "val" else "")
        )
    model = build_model(cfg.model, data.spec)
    load_model_state(model, ckpt["model"], args["ckpt"])
    model.to(trainer.device)
    task = instantiate(cfg.task, "task")
    metrics: dict[str, Any] = trainer.evaluate(
        model, task, split.to(trainer.device), data.scale, prefix=args["split"]
    )
    metrics["num_params"] = count_params(model)[0]
    metrics["samples"] = len(split)
    metrics["checkpoint"] = str(Path(args["ckpt"]).resolve())
    metrics["checkpoint_epoch"] = ckpt.get("epoch")
    metrics["wall_time_s"] = time.perf_counter() - t0
    write_json(metrics, run_dir / "metrics.json")
    atomic_write_text(OmegaConf.to_yaml(cfg), run_dir / "config.yaml")
    shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "/" in k)
    print(f"dlx eval: {shown}  ({len(split)} samples)  ->  {run_dir}")
    return metrics


@reports_errors
def main(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(USAGE)
        return
    evaluate(argv)
