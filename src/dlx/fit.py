"""A torch model's run from its config: the parts the config adds (`callbacks`), the
trainer, task, optimizer and learning-rate schedule, then `Trainer.fit`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.core.errors import ConfigError

log = logging.getLogger("dlx")


def train_torch(
    cfg: DictConfig,
    model: Any,
    data: Any,
    dataset_name: str,
    run_dir: Path | None,
    resume_hint: str,
    observer: Any = None,
) -> dict[str, Any]:
    from dlx.core.schemas import TrainerConfig
    from dlx.core.targets import instantiate
    from dlx.engine import lazy_dynamo
    from dlx.engine.frozen import precomputed
    from dlx.engine.loop import Trainer
    from dlx.engine.schedule import Schedule
    from dlx.engine.transfer import freeze, init_from

    lazy_dynamo.defer()  # torch.optim would import it (1-2 s) for nothing in an eager run
    check_classes(cfg, data)
    parts = config_parts(cfg, observer)
    trainer_cfg = TrainerConfig(**OmegaConf.to_container(cfg.trainer, resolve=True))
    config = OmegaConf.to_container(cfg, resolve=True)
    trainer = Trainer(
        trainer_cfg,
        callbacks=parts,
        run_dir=run_dir,
        seed=cfg.seed,
        config=config,  # type: ignore[arg-type]
        resume_hint=resume_hint,
    )
    if cfg.model.get("init_from"):
        init_from(model, cfg.model.init_from)
    if cfg.model.get("freeze"):
        freeze(model, list(cfg.model.freeze))
    model.to(trainer.device)
    task = instantiate(cfg.task, "task")
    optimizer = build_optimizer(cfg, model, trainer.device)
    sched = cfg.scheduler
    factory = (
        instantiate(sched.lr_scheduler, "scheduler.lr_scheduler", partial=True)
        if sched.lr_scheduler
        else None
    )
    log.info(
        "dlx train: model=%s dataset=%s (%d train / %s val / %s test) on %s, precision %s",
        type(model).__name__,
        dataset_name,
        len(data.train),
        len(data.val) if data.val is not None else 0,
        len(data.test) if data.test is not None else 0,
        trainer.device,
        trainer.cfg.precision,
    )
    if observer is not None:
        observer.start(model, data, dataset_name)
    schedule = Schedule(factory, sched.interval, sched.monitor)
    with precomputed(model, data, trainer.device) as fit_data:  # frozen input layers, once
        metrics = trainer.fit(model, optimizer, task, fit_data, schedule=schedule)
    if observer is not None:  # the test pass's classes: the figures need not predict again
        observer.predictions = trainer.predictions
    return metrics


def config_parts(cfg: DictConfig, observer: Any = None) -> list[Any]:
    """The config's `callbacks` built (in its order), then the loggers' part."""
    from dlx.core.targets import instantiate
    from dlx.engine.parts import Part

    parts = []
    for key, node in (cfg.get("callbacks") or {}).items():
        part = instantiate(node, f"callbacks.{key}")
        if not isinstance(part, Part):
            raise ConfigError(
                f"callbacks.{key}._target_ built a {type(part).__name__}, not a part of the "
                "loop (subclass dlx.engine.parts.Part)"
            )
        part.name = str(key)
        parts.append(part)
    if observer is not None and observer.loggers:
        from dlx.loggers.part import LoggerPart

        parts.append(LoggerPart(observer.loggers))
    return parts


def build_optimizer(cfg: DictConfig, model: Any, device: Any) -> Any:
    """The optimizer over the trainable parameters; `fused: null` (the default where the
    optimizer has the option) means one kernel for the whole update on a CPU or a GPU,
    instead of a loop over the tensors."""
    from dlx.core.targets import instantiate

    params = [p for p in model.parameters() if p.requires_grad]
    fused = cfg.optimizer.get("fused", False) is None and device.type in ("cpu", "cuda")
    fast = {"fused": True} if fused else {}
    return instantiate(cfg.optimizer, "optimizer", params=params, **fast)


def check_classes(cfg: DictConfig, data: Any) -> None:
    """A classifier needs two classes or more in its training split."""
    import torch

    if not _classifies(cfg):
        return
    y = data.train.y
    if y.is_floating_point() or y.ndim != 1:
        return
    classes, counts = torch.unique(y, return_counts=True)
    if len(classes) < 2:
        names = data.spec.class_names
        shown = ", ".join(
            f"{names[c] if c < len(names) else c}: {n}"
            for c, n in zip(classes.tolist(), counts.tolist(), strict=True)
        )
        raise ConfigError(
            f"the training split has one class only ({shown or 'no samples'}); a classifier "
            "needs two or more (check dataset.classes, dataset.limit or the data's labels)"
        )


def _classifies(cfg: DictConfig) -> bool:
    target = str(cfg.task.get("_target_", ""))
    return target.rsplit(".", 1)[-1] in ("Classification", "Binary", "PerceptronRule", "RBMTask")
