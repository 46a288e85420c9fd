"""`dlx train`: compose the config, build data, model, task and optimizer, run the trainer."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from dlx.config import check_run, register_configs
from dlx.errors import ConfigError, reports_errors

log = logging.getLogger("dlx")


def run(cfg: DictConfig, run_dir: Path | None, resume_hint: str = "") -> dict[str, Any]:
    """Train as `cfg` says; write metrics.json (and csv, checkpoints) into run_dir."""
    import torch

    from dlx.engine.runtime import seed_everything
    from dlx.engine.schedule import Schedule
    from dlx.engine.trainer import Trainer
    from dlx.io import write_json
    from dlx.targets import instantiate

    t0 = time.perf_counter()
    seed_everything(cfg.seed, deterministic=cfg.trainer.deterministic)
    trainer = Trainer(
        **cfg.trainer,
        early_stopping=OmegaConf.to_container(cfg.callbacks.early_stopping),
        run_dir=run_dir,
        seed=cfg.seed,
        resume_hint=resume_hint,
    )
    check_run(cfg)
    dataset = instantiate(cfg.dataset, "dataset")
    data = dataset.load()
    model = instantiate(cfg.model, "model", spec=data.spec)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model._target_ built a {type(model).__name__}, not a torch module")
    model.to(trainer.device)
    task = instantiate(cfg.task, "task")
    optimizer = instantiate(cfg.optimizer, "optimizer", params=model.parameters())
    sched = cfg.scheduler
    schedule = Schedule(
        instantiate(sched.lr_scheduler, "scheduler.lr_scheduler", partial=True)
        if sched.lr_scheduler
        else None,
        sched.interval,
        sched.monitor,
    )
    log.info(
        "dlx train: model=%s dataset=%s (%d train / %s val / %s test) on %s, precision %s",
        type(model).__name__,
        dataset.name,
        len(data.train),
        len(data.val) if data.val is not None else 0,
        len(data.test) if data.test is not None else 0,
        trainer.device,
        trainer.precision,
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    metrics = trainer.fit(model, optimizer, task, data, config=config, schedule=schedule)  # type: ignore[arg-type]
    metrics["wall_time_s"] = time.perf_counter() - t0
    if run_dir is not None:
        write_json(metrics, run_dir / "metrics.json")
    summary = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("test/"))
    log.info("done: %s  ->  %s", summary or "trained", run_dir or "(no run dir)")
    return metrics


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
@reports_errors
def _hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    # What to type to continue this run after a preemption.
    kept = [o for o in hc.overrides.task if not o.startswith(("trainer.resume=", "hydra.run.dir="))]
    hint = " ".join(["dlx train", *kept, f"hydra.run.dir={run_dir}", "trainer.resume=auto"])
    metrics = run(cfg, run_dir, resume_hint=hint)
    # The value a sweeper (Optuna) optimises: the task's monitored metric.
    for key in ("val/acc", "test/acc", "val/loss", "test/loss"):
        if key in metrics:
            return float(metrics[key])
    return None


@reports_errors
def _precheck(argv: list[str]) -> None:
    from dlx.compose import compose
    from dlx.targets import check_targets

    cfg = compose("train", argv)
    check_run(cfg)
    check_targets(cfg)
    run_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")), None)
    check_writable(Path(run_dir or cfg.paths.output_dir).expanduser())


def check_writable(path: Path) -> None:
    """Fail early, in one line, when the run dir cannot be created or written."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write the run dir {path}: {probe} is not a writable folder; "
            "set hydra.run.dir (or DLX_OUTPUT_DIR) to a writable place"
        )


def main(argv: list[str]) -> None:
    register_configs()
    if not any(a.startswith("-") for a in argv):
        # A plain run: compose once up front so a bad override is one line on stderr
        # ("error: ..."), not Hydra's multi-line report. Sweeps (-m) and Hydra's own
        # flags (--help, --cfg) go straight to Hydra, which reports for them.
        _precheck(argv)
    sys.argv = ["dlx train", *argv]
    _hydra_main()
