"""The one training loop for every torch model.

Plain code in the style of pytorch/examples and nanoGPT: data are tensors on the device,
each epoch draws a `randperm` and slices it into batches; metrics are summed on the device
and read once per epoch, so the loop adds no host sync per step. Everything a run writes
(metrics.csv, checkpoints) happens between epochs, outside the timed part.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx import __version__
from dlx.data.base import Data, Split
from dlx.engine.progress import make_bar
from dlx.engine.runtime import autocast_for, resolve_device
from dlx.engine.tasks import Task
from dlx.errors import ConfigError
from dlx.io import atomic_save, atomic_write_text

log = logging.getLogger("dlx")


@dataclass
class History:
    rows: list[dict[str, float]] = field(default_factory=list)

    def csv(self) -> str:
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


class Trainer:
    def __init__(
        self,
        max_epochs: int = 20,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        accelerator: str = "auto",
        precision: str = "32",
        compile: bool = False,
        deterministic: bool = False,
        progress: bool = True,
        log_every_n_steps: int = 50,
        limit_train_batches: int | None = None,
        limit_eval_batches: int | None = None,
        checkpoint: bool = True,
        run_dir: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        for name, value in (
            ("max_epochs", max_epochs),
            ("batch_size", batch_size),
            ("eval_batch_size", eval_batch_size),
            ("log_every_n_steps", log_every_n_steps),
            ("limit_train_batches", limit_train_batches),
            ("limit_eval_batches", limit_eval_batches),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"trainer.{name}={value} must be a positive integer")
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.device = resolve_device(accelerator)
        self.precision = str(precision)
        self.autocast = autocast_for(self.precision, self.device)
        self.compile = compile
        self.deterministic = deterministic
        self.progress = progress
        self.log_every_n_steps = log_every_n_steps
        self.limit_train_batches = limit_train_batches
        self.limit_eval_batches = limit_eval_batches
        self.checkpoint = checkpoint
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.seed = seed
        self.history = History()

    # -- the loop ---------------------------------------------------------------------------

    def fit(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        task: Task,
        data: Data,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Train for max_epochs, validating each epoch; test at the end. Returns metrics."""
        device = self.device
        model.to(device)
        data = data.to(device)
        net = torch.compile(model) if self.compile else model
        scaler = torch.amp.GradScaler(device.type) if self.precision == "16-mixed" else None
        # The data order has its own generator (on the CPU, so it is the same on any
        # device): a checkpoint can store it, and model init does not shift it.
        order = torch.Generator().manual_seed(self.seed)
        train, scale, bs = data.train, data.scale, self.batch_size
        n = len(train)
        steps = math.ceil(n / bs)
        if self.limit_train_batches:
            steps = min(steps, self.limit_train_batches)
        names = ("loss", *task.metric_names)
        bar = make_bar(self.progress, self.log_every_n_steps)
        epoch_times: list[float] = []
        samples_total = 0
        final: dict[str, Any] = {}
        try:
            for epoch in range(1, self.max_epochs + 1):
                model.train()
                bar.start_epoch(epoch, self.max_epochs, steps)
                sums = torch.zeros(len(names), device=device)
                seen = 0
                t0 = time.perf_counter()
                perm = torch.randperm(n, generator=order).to(device, non_blocking=True)
                for step in range(steps):
                    idx = perm[step * bs : (step + 1) * bs]
                    x = to_input(train.x.index_select(0, idx), scale)
                    x, target = task.prepare(x, train.y.index_select(0, idx))
                    with self.autocast:
                        out = net(x)
                        loss = task.loss(out, target)
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is None:
                        loss.backward()
                        optimizer.step()
                    else:
                        scaler.scale(loss).backward()
                        scaler.step(optimizer)
                        scaler.update()
                    b = idx.shape[0]
                    with torch.no_grad():
                        sums[0] += loss.detach() * b
                        sums[1:] += task.metric_sums(out.detach(), target)
                    seen += b
                    bar.advance(step, loss.item, b)
                epoch_stats = (sums / seen).tolist()  # the one host sync of the epoch
                elapsed = time.perf_counter() - t0
                bar.end_epoch()
                epoch_times.append(elapsed)
                samples_total += seen
                row: dict[str, float] = {"epoch": epoch}
                row.update({f"train/{k}": v for k, v in zip(names, epoch_stats, strict=True)})
                if data.val is not None:
                    row.update(self.evaluate(net, task, data.val, scale, prefix="val"))
                row["epoch_time_s"] = elapsed
                row["samples_per_s"] = seen / elapsed
                row["lr"] = optimizer.param_groups[0]["lr"]
                self.history.rows.append(row)
                log.info(format_row(row, self.max_epochs))
                self._write_epoch(model, optimizer, epoch, (epoch) * steps, config)
                final = row
        finally:
            bar.close()
        total, trainable = count_params(model)
        metrics: dict[str, Any] = {"num_params": total, "num_trainable_params": trainable}
        metrics.update({k: v for k, v in final.items() if "/" in k})
        if data.test is not None:
            metrics.update(self.evaluate(net, task, data.test, scale, prefix="test"))
        metrics["epochs"] = len(epoch_times)
        metrics["epoch_time_s"] = epoch_times
        metrics["train_samples_per_s"] = samples_total / max(sum(epoch_times), 1e-12)
        return metrics

    @torch.inference_mode()
    def evaluate(
        self, model: nn.Module, task: Task, split: Split, scale: float | None, prefix: str
    ) -> dict[str, float]:
        """Loss and task metrics over a split, as `{prefix}/{name}`."""
        was_training = model.training
        model.eval()
        names = ("loss", *task.metric_names)
        sums = torch.zeros(len(names), device=self.device)
        n, ebs, seen = len(split), self.eval_batch_size, 0
        batches = math.ceil(n / ebs)
        if self.limit_eval_batches:
            batches = min(batches, self.limit_eval_batches)
        for i in range(batches):
            x = to_input(split.x[i * ebs : (i + 1) * ebs], scale)
            x, target = task.prepare(x, split.y[i * ebs : (i + 1) * ebs])
            with self.autocast:
                out = model(x)
                loss = task.loss(out, target)
            b = x.shape[0]
            sums[0] += loss * b
            sums[1:] += task.metric_sums(out, target)
            seen += b
        model.train(was_training)
        values = (sums / max(seen, 1)).tolist()
        return {f"{prefix}/{k}": v for k, v in zip(names, values, strict=True)}

    # -- files --------------------------------------------------------------------------------

    def _write_epoch(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        epoch: int,
        step: int,
        config: dict[str, Any] | None,
    ) -> None:
        if self.run_dir is None:
            return
        atomic_write_text(self.history.csv(), self.run_dir / "metrics.csv")
        if self.checkpoint:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "config": config or {},
                "dlx_version": __version__,
            }
            atomic_save(state, self.run_dir / "checkpoints" / "last.pt")


def to_input(x: torch.Tensor, scale: float | None) -> torch.Tensor:
    """Stored samples -> model input: integer pixels become scaled floats, per batch."""
    if scale is None:  # token ids and other integer inputs go in as they are
        return x
    if x.is_floating_point() and scale == 1.0:
        return x
    return x.float() * scale


def format_row(row: dict[str, float], max_epochs: int) -> str:
    parts = [f"epoch {int(row['epoch'])}/{max_epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if "/" in k]
    parts.append(f"{row['epoch_time_s']:.2f}s ({row['samples_per_s']:,.0f} samples/s)")
    return "  ".join(parts)
