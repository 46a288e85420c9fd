"""The result of a fit, as metrics.json holds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from dlx.engine.parts.checkpoint import Checkpoint

if TYPE_CHECKING:
    from dlx.engine.parts import Loop


def final_metrics(trainer: Loop) -> dict[str, Any]:
    """What metrics.json says of a fit: the last epoch's metrics, the test split's, sizes
    and timings, the monitored metric and its best epoch, and what parts added."""
    rows, model = trainer.state.rows, trainer.model
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    metrics: dict[str, Any] = {"num_params": total, "num_trainable_params": trainable}
    if rows:
        metrics.update({k: v for k, v in rows[-1].items() if "/" in k})
    data = trainer.data
    if data.test is not None:
        test = trainer.evaluate(trainer.net, trainer.task, data.test, data.scale, "test", keep=True)
        metrics.update(test)
    metrics["epochs"] = len(rows)
    metrics["epoch_time_s"] = [r["epoch_time_s"] for r in rows]
    samples = sum(r["samples_per_s"] * r["epoch_time_s"] for r in rows)
    metrics["train_samples_per_s"] = samples / max(sum(metrics["epoch_time_s"]), 1e-12)
    metrics["num_threads"] = torch.get_num_threads()  # what the loop ran with (runtime.py)
    if trainer.startup_s is not None:
        metrics["startup_s"] = trainer.startup_s
    if trainer.compile_time_s is not None:
        metrics["compile_time_s"] = trainer.compile_time_s
    checkpoint = trainer.parts.get(Checkpoint)
    best = checkpoint.best if checkpoint is not None else None
    metrics["monitor"] = trainer.monitor.key
    metrics["best_epoch"] = best.best_epoch if best is not None else 0
    metrics.update(trainer.extra_metrics)
    return metrics
